"""Databases for a test: a migrated SQLite file or a PostgreSQL schema of its own, and the
configuration of an in-process test app."""

import os
import uuid
from contextlib import contextmanager
from urllib.parse import quote

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# The make-good refunds a silent astrologer's session and an early walk-out; the tests of
# the settlement's own arithmetic turn it off, and the make-good's tests turn it on.
NO_MAKE_GOOD = {"MAKE_GOOD_SECONDS": 0, "MAKE_GOOD_SILENT_ASTROLOGER": "false"}
# A test server signs up, recharges and chats from one address far faster than people do;
# the rate limits' own tests set theirs (test_rate_limits.py).
ROOMY_LIMITS = {
    "SIGNUP_LIMIT": "100000 per hour",
    "RECHARGE_LIMIT": "100000 per hour",
    "SESSION_REQUEST_LIMIT": "100000 per hour",
    "MESSAGE_LIMIT": "100000 per hour",
    "REPORT_LIMIT": "100000 per hour",
    "SOCKET_FRAMES_PER_SECOND": 10000,
    "SOCKETS_PER_USER": 1000,
}


def in_process_app(database_url: str, **settings):
    """The app as the in-process tests run it: built from this configuration alone (and
    `settings`)."""
    from consult import create_app

    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test",
            "MIN_SESSION_SECONDS": 60,
            **NO_MAKE_GOOD,
            **settings,
        }
    )


@contextmanager
def postgres_schema(admin_url: str):
    """A fresh schema, dropped afterwards; the URL makes it the connection's search path."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{admin_url}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def database(backend: str, folder, request):
    """An empty database of the backend for a server to migrate: a SQLite file in `folder`
    or a PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'consult.db'}"
    else:
        with postgres_schema(request.getfixturevalue("postgres")) as url:
            yield url


def empty_postgres(url: str) -> None:
    """Empty every table of a migrated schema (faster than migrating a new one)."""
    from sqlalchemy import create_engine, text

    from consult.db import db

    tables = ", ".join(t.name for t in db.metadata.sorted_tables)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
