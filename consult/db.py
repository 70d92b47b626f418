"""The database handle, its column types, the models' status questions, and the write
transaction every use case runs in."""

import contextvars
import weakref
from contextlib import contextmanager
from datetime import UTC

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from .group_commit import WalSync

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)


NAIVE = "naive datetimes are not stored; pass an aware UTC instant"


class UTCDateTime(TypeDecorator):
    """Store instants as naive UTC and hand them back timezone-aware, on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(NAIVE)
        return value.astimezone(UTC).replace(tzinfo=None)

    def bind_processor(self, dialect):
        """On SQLite, the instant as SQLAlchemy's DATETIME stores it, in one step.

        Composed, `process_bind_param` and SQLite's DATETIME formatting cost ~7 µs an
        instant here (an end binds six); this writes the same text (naive UTC, microseconds
        always) for a third of that. The unit tests hold the two to the same answers.
        """
        if dialect.name == "sqlite":
            return _sqlite_text
        return super().bind_processor(dialect)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


def _sqlite_text(value):
    """An aware instant as SQLite's DATETIME text: "YYYY-MM-DD HH:MM:SS.ffffff", in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(NAIVE)
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]  # less its "+00:00"


def status_is(status: str) -> property:
    """A model's `is_...` question about its `status`: `is_open = status_is(OPEN)`."""
    return property(lambda row: row.status == status, doc=f"Whether the status is {status!r}.")


# SQLite: a transaction that reads then writes must take the write lock first
# (BEGIN IMMEDIATE), or two of them can deadlock into "database is locked".
_immediate = contextvars.ContextVar("begin_immediate", default=False)


# The group commit of each SQLite engine that has one (see group_commit.py).
_wal_syncs: "weakref.WeakKeyDictionary[object, WalSync]" = weakref.WeakKeyDictionary()


def configure_sqlite(engine, group_commit: bool = True) -> None:
    """Turn on WAL and let write transactions begin IMMEDIATE (SQLAlchemy's documented hook).

    With `group_commit` (and a database file), commits skip their own fsync and share one
    in `write_transaction`; without, each commit fsyncs (`synchronous=FULL`).
    """
    database = engine.url.database
    grouped = group_commit and database not in (None, "", ":memory:")
    if grouped:
        _wal_syncs[engine] = WalSync(database)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={'NORMAL' if grouped else 'FULL'}")
        if grouped:  # the group commit checkpoints, off the event loop
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _immediate.get() else "BEGIN")


@contextmanager
def write_transaction():
    """Run a use case in one transaction that holds the write lock from its first statement.

    Commits on success and rolls back on any error, so a failed use case changes nothing.
    It returns only once the commit is durable, so nothing it answers or announces
    afterwards can be lost (on SQLite, through the group commit's shared fsync).
    """
    session = db.session
    session.rollback()  # end any read transaction, so the next BEGIN is ours
    token = _immediate.set(True)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        _immediate.reset(token)
    wait_durable(session.get_bind())


def wait_durable(engine) -> None:
    """Return once what this engine has committed is on disk: at once where every commit
    fsyncs (PostgreSQL, SQLite without group commit), after the shared fsync otherwise."""
    wal_sync = _wal_syncs.get(engine)
    if wal_sync is not None:
        wal_sync.wait()
