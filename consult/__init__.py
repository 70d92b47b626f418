"""Consult: paid, per-minute chat consultations between users and astrologers."""

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from flask_migrate import Migrate

from . import config
from .db import configure_sqlite, db
from .policy import Policy
from .realtime import Hub, LocalHub
from .wallet import DemoPaymentProvider, PaymentProvider

ROOT = Path(__file__).resolve().parent.parent
migrate = Migrate()


@dataclass
class Services:
    """What the use cases need from the deployment, built once per app."""

    hub: Hub
    policy: Policy
    payments: PaymentProvider
    scheduler: object | None = None  # set where the clock runs (app.py, gunicorn workers)


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
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine)

    hub = _make_hub(app)
    app.extensions["consult"] = Services(
        hub=hub, policy=Policy.from_config(app.config), payments=DemoPaymentProvider()
    )

    from . import (  # noqa: F401 -- models
        accounts,
        audit,
        chat,
        cli,
        consultations,
        idempotency,
        ledger,
        scheduler,
        web,
    )

    web.init_app(app)
    cli.init_app(app)
    return app


def _make_hub(app: Flask) -> Hub:
    from . import presence

    listener = presence.listener(app)
    if app.config.get("REDIS_URL"):
        from .redis_hub import RedisHub

        return RedisHub(
            app.config["REDIS_URL"], on_presence=listener, prefix=app.config["REDIS_PREFIX"]
        )
    return LocalHub(on_presence=listener)


@contextmanager
def _migration_lock():
    """On PostgreSQL, instances starting together migrate one after another."""
    if db.engine.dialect.name != "postgresql":
        yield
        return
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_advisory_lock(724100)")
        try:
            yield
        finally:
            conn.exec_driver_sql("SELECT pg_advisory_unlock(724100)")


def create_schema(app: Flask) -> None:
    """Bring the schema up to date (migrations) and create the platform's own ledger accounts."""
    from flask_migrate import upgrade

    from . import ledger

    with app.app_context(), _migration_lock():
        upgrade(directory=str(ROOT / "migrations"))
        for kind in (ledger.PLATFORM_REVENUE, ledger.EXTERNAL_PAYMENTS):
            ledger.open_account(kind)
        db.session.commit()
