"""people and audit search: suspended accounts, an astrologer's bio, events about a person

An audit event is about a session (`consultation_id`) or about a person (`subject_id`, the
account an admin changed or suspended), never about nothing. The audit search filters by
actor, person, kind, reason, request id and time, newest first: an index for each.

Revision ID: b4e7d2a9c1f3
Revises: 9d2f4b6c8e11
Create Date: 2026-12-03 15:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "b4e7d2a9c1f3"
down_revision = "9d2f4b6c8e11"
branch_labels = None
depends_on = None

ABOUT_SOMETHING = "consultation_id IS NOT NULL OR subject_id IS NOT NULL"


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suspended_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("signed_out_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("bio", sa.String(1000), nullable=True))
    with op.batch_alter_table("session_events", schema=None) as batch_op:
        batch_op.alter_column("consultation_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("subject_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_session_events_subject_id_users", "users", ["subject_id"], ["id"]
        )
        batch_op.create_check_constraint(op.f("ck_session_events_about_something"), ABOUT_SOMETHING)
        batch_op.create_index("ix_session_events_subject_id", ["subject_id"])
        batch_op.create_index("ix_session_events_actor_id", ["actor_id"])
        batch_op.create_index("ix_session_events_request_id", ["request_id"])
        batch_op.create_index("ix_session_events_at", ["at"])
        # "Every end", "every refund": one kind, newest first, is one range of this index.
        batch_op.create_index("ix_session_events_kind_id", ["kind", "id"])
        batch_op.create_index("ix_session_events_reason_id", ["reason", "id"])


def downgrade():
    with op.batch_alter_table("session_events", schema=None) as batch_op:
        for name in ("reason_id", "kind_id", "at", "request_id", "actor_id", "subject_id"):
            batch_op.drop_index(f"ix_session_events_{name}")
        batch_op.drop_constraint(op.f("ck_session_events_about_something"), type_="check")
        batch_op.drop_constraint("fk_session_events_subject_id_users", type_="foreignkey")
        batch_op.drop_column("subject_id")
    # Events about people alone cannot stay in a table whose every row names a session.
    op.execute("DELETE FROM session_events WHERE consultation_id IS NULL")
    with op.batch_alter_table("session_events", schema=None) as batch_op:
        batch_op.alter_column("consultation_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("bio")
        batch_op.drop_column("signed_out_at")
        batch_op.drop_column("suspended_at")
