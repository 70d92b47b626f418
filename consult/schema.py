"""The database schema: migrations applied in order, and the platform's own ledger accounts."""

from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from flask_migrate import upgrade

from . import ledger
from .db import db

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_schema(app: Flask) -> None:
    """Bring the schema up to date (safe to run again) and open the platform's accounts."""
    with app.app_context(), _migration_lock():
        upgrade(directory=str(MIGRATIONS))
        for kind in (ledger.PLATFORM_REVENUE, ledger.EXTERNAL_PAYMENTS):
            ledger.open_account(kind)
        db.session.commit()


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
