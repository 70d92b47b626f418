"""Consult: paid, per-minute chat consultations between users and astrologers."""

from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from . import config
from .db import configure_sqlite, db
from .policy import Policy
from .realtime import Hub, LocalHub
from .wallet import DemoPaymentProvider, PaymentProvider

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Services:
    """What the use cases need from the deployment, built once per app."""

    hub: Hub
    policy: Policy
    payments: PaymentProvider


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    config.load(app, test_config)
    if app.config["DATABASE_URL"].startswith("sqlite"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 15}})
    else:
        app.config.setdefault(
            "SQLALCHEMY_ENGINE_OPTIONS",
            {"pool_size": 20, "max_overflow": 40, "pool_pre_ping": True},
        )
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine)

    hub = _make_hub(app)
    app.extensions["consult"] = Services(
        hub=hub, policy=Policy.from_config(app.config), payments=DemoPaymentProvider()
    )

    from . import cli, web

    web.init_app(app)
    cli.init_app(app)
    return app


def _make_hub(app: Flask) -> Hub:
    from . import presence

    return LocalHub(on_presence=presence.listener(app))


def create_schema(app: Flask) -> None:
    """Create any missing tables and the platform's own ledger accounts."""
    from . import accounts, audit, chat, consultations, idempotency, ledger, scheduler  # noqa: F401

    with app.app_context():
        db.create_all()
        for kind in (ledger.PLATFORM_REVENUE, ledger.EXTERNAL_PAYMENTS):
            ledger.open_account(kind)
        db.session.commit()
