"""SQLite's write transactions return only once durable: by the group commit's shared
fsync (synchronous=NORMAL), or with it off by an fsync of their own (synchronous=FULL)."""

import shutil

import pytest
from sqlalchemy import text

from consult import metrics
from consult.db import db, write_transaction
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
