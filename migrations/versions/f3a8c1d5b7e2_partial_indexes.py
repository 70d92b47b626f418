"""partial indexes: an end writes no page of an index that would only list it as empty

Each index an end touches is a page of the WAL at every commit (4 KB written, copied again
at the checkpoint). Most active sessions have no *_left_at and no scheduled end, and a
session's events and settlements name no subject and refund nothing, yet every (status,
due time) index held every session, and the subject and refund indexes every row. They
now hold only the rows that have a value (and, for the due times, are active): an end
wrote 23 pages of the WAL and now writes 18.

Revision ID: f3a8c1d5b7e2
Revises: e2f7a4c9b8d1
Create Date: 2026-12-04 17:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "f3a8c1d5b7e2"
down_revision = "e2f7a4c9b8d1"
branch_labels = None
depends_on = None

DUE_ONLY_SOMETIMES = ("user_left_at", "astrologer_left_at", "ends_at")
SPARSE = (("session_events", "subject_id"), ("transfers", "refund_of_id"))


def _where(condition: str) -> dict:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade():
    for column in DUE_ONLY_SOMETIMES:
        op.drop_index(f"ix_consultations_status_{column}", table_name="consultations")
        op.create_index(
            f"ix_consultations_active_{column}",
            "consultations",
            ["status", column],  # the status first: the planner then never prefers its own index
            **_where(f"status = 'active' AND {column} IS NOT NULL"),
        )
    for table, column in SPARSE:
        op.drop_index(f"ix_{table}_{column}", table_name=table)
        op.create_index(f"ix_{table}_{column}", table, [column], **_where(f"{column} IS NOT NULL"))


def downgrade():
    for table, column in SPARSE:
        op.drop_index(f"ix_{table}_{column}", table_name=table)
        op.create_index(f"ix_{table}_{column}", table, [column])
    for column in DUE_ONLY_SOMETIMES:
        op.drop_index(f"ix_consultations_active_{column}", table_name="consultations")
        op.create_index(f"ix_consultations_status_{column}", "consultations", ["status", column])
