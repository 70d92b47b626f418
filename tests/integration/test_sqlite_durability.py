"""SQLite's write transactions return only once durable: by the group commit's shared
fsync (synchronous=NORMAL), or with it off by an fsync of their own (synchronous=FULL)."""

import shutil

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, text

from consult import group_commit, metrics, statements
from consult.db import db, write_transaction
from consult.statements import Statement
from helpers.databases import in_process_app


@pytest.mark.parametrize(
    ("grouped", "synchronous", "fsyncs"), [(True, "1", 2), (False, "2", 0)], ids=["on", "off"]
)
def test_each_sqlite_write_transaction_waits_for_an_fsync_of_the_wal(
    migrated_sqlite, tmp_path, grouped, synchronous, fsyncs
):
    shutil.copy(migrated_sqlite, tmp_path / "consult.db")
    app = in_process_app(f"sqlite:///{tmp_path / 'consult.db'}", SQLITE_GROUP_COMMIT=grouped)
    with app.app_context():
        assert str(db.session.execute(text("PRAGMA synchronous")).scalar()) == synchronous
        db.session.rollback()
        before = metrics.WAL_FSYNCS._value.get()
        for n in range(2):
            with write_transaction() as session:
                session.execute(text("CREATE TABLE IF NOT EXISTS probe (n INTEGER)"))
                session.execute(text("INSERT INTO probe VALUES (:n)"), {"n": n})
        assert metrics.WAL_FSYNCS._value.get() - before == fsyncs
        # The lean transaction of statements alone (a chat message, an end) waits the same.
        probe = Statement(insert(Table("probe", MetaData(), Column("n", Integer))))
        for n in range(2):
            with statements.transaction():
                probe.run({"n": n})
        assert metrics.WAL_FSYNCS._value.get() - before == 2 * fsyncs


def test_the_wal_is_checkpointed_by_the_group_commit_not_inside_a_commit(migrated_sqlite, tmp_path):
    """SQLite's own checkpoint runs inside the commit that crosses its mark and stalls the
    whole process; with group commit the serving connections never checkpoint, and every
    CHECKPOINT_EVERY commits one runs on a connection of its own (a thread under gevent).
    In WAL mode only a checkpoint writes the database file itself."""
    database = tmp_path / "consult.db"
    shutil.copy(migrated_sqlite, database)
    app = in_process_app(f"sqlite:///{database}", SQLITE_GROUP_COMMIT=True)
    with app.app_context():
        assert db.session.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
        db.session.rollback()

        def commits(count: int) -> None:
            for n in range(count):
                with write_transaction() as session:
                    session.execute(text("CREATE TABLE IF NOT EXISTS probe (n INTEGER)"))
                    session.execute(text("INSERT INTO probe VALUES (:n)"), {"n": n})

        commits(1)
        before = database.read_bytes()
        commits(group_commit.CHECKPOINT_EVERY - 2)
        assert database.read_bytes() == before  # everything is still in the WAL
        commits(1)  # the commit that reaches the mark: a checkpoint follows it
        assert database.read_bytes() != before
        assert db.session.execute(text("SELECT count(*) FROM probe")).scalar() == (
            group_commit.CHECKPOINT_EVERY
        )
