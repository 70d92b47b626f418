"""analytics: ended sessions found by (status, ended_at), a range however long the history

Revision ID: 9d2f4b6c8e11
Revises: 7c4e9a1f3b20
Create Date: 2026-12-03 14:00:00

"""

from alembic import op

revision = "9d2f4b6c8e11"
down_revision = "7c4e9a1f3b20"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_consultations_status_ended_at", "consultations", ["status", "ended_at"])


def downgrade():
    op.drop_index("ix_consultations_status_ended_at", table_name="consultations")
