"""The migrations build the schema the models declare: a model's new index or column
without its migration (or the other way round) fails here, on each backend."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from consult.db import db


def test_the_migrated_database_matches_the_models(app):
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), db.metadata) == []


def test_the_sparse_indexes_are_partial(app):
    """Alembic does not compare an index's WHERE: read it back from the database."""
    inspector = inspect(db.engine)
    partial = {
        index["name"]: index.get("dialect_options", {})
        for table in ("consultations", "session_events", "transfers")
        for index in inspector.get_indexes(table)
    }
    for name in (
        "ix_consultations_active_user_left_at",
        "ix_consultations_active_astrologer_left_at",
        "ix_consultations_active_ends_at",
        "ix_session_events_subject_id",
        "ix_transfers_refund_of_id",
    ):
        where = partial[name].get(f"{db.engine.dialect.name}_where")
        assert where is not None and "IS NOT NULL" in str(where).upper(), (name, partial[name])
