"""Consult: paid, per-minute chat consultations between users and astrologers."""

from pathlib import Path

from flask import Flask
from flask_migrate import Migrate
from sqlalchemy.engine import make_url

from . import (  # noqa: F401 -- the models
    accounts,
    audit,
    chat,
    cli,
    config,
    feedback,
    idempotency,
    ledger,
    scheduler,
    services,
    statements,
    web,
)
from .db import configure_sqlite, db
from .schema import MIGRATIONS, create_schema
from .services import Services, start_background

__all__ = ["Services", "create_app", "create_schema", "start_background"]

ROOT = Path(__file__).resolve().parent.parent
migrate = Migrate()


def create_app(test_config: dict | None = None) -> Flask:
    """The app: from its configuration (or, in tests, from `test_config` alone)."""
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    config.load(app, test_config)
    url = make_url(app.config["DATABASE_URL"])
    if url.get_backend_name() == "sqlite":
        options = {"connect_args": {"timeout": 15}}
        if url.database not in (None, "", ":memory:"):  # a file: a pool of connections
            # LIFO: the connection that just committed serves the next transaction, its
            # page cache still good; any other one rereads every page another one wrote.
            options["pool_use_lifo"] = True
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", options)
    else:
        app.config.setdefault(
            "SQLALCHEMY_ENGINE_OPTIONS",
            {"pool_size": 20, "max_overflow": 40, "pool_pre_ping": True},
        )
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine, app.config["SQLITE_GROUP_COMMIT"])
            if url.database not in (None, "", ":memory:"):
                statements.keep_a_connection(db.engine)
    services.install(app)
    web.init_app(app)
    cli.init_app(app)
    return app
