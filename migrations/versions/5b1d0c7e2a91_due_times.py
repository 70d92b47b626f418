"""due times: the scheduler finds due sessions through indexes instead of scanning

Revision ID: 5b1d0c7e2a91
Revises: 43cf1e5f8f49
Create Date: 2026-12-03 12:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "5b1d0c7e2a91"
down_revision = "43cf1e5f8f49"
branch_labels = None
depends_on = None

DUE_COLUMNS = ("funded_until", "user_left_at", "astrologer_left_at")


def upgrade():
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("funded_until", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("warned_for", sa.DateTime(), nullable=True))
    # (status, due time): "active and due by now" is one range of each index, however long
    # the history grows. The scheduler fills funded_until of older live sessions at start.
    for column in DUE_COLUMNS:
        op.create_index(f"ix_consultations_status_{column}", "consultations", ["status", column])


def downgrade():
    for column in DUE_COLUMNS:
        op.drop_index(f"ix_consultations_status_{column}", table_name="consultations")
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.drop_column("warned_for")
        batch_op.drop_column("funded_until")
