"""second wave: spend limits and scheduled ends, availability, ratings, reports, refunds

Revision ID: 7c4e9a1f3b20
Revises: 5b1d0c7e2a91
Create Date: 2026-12-03 13:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "7c4e9a1f3b20"
down_revision = "5b1d0c7e2a91"
branch_labels = None
depends_on = None

OPEN = sa.text("status = 'open'")


def upgrade():
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_spend_paise", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("ends_at", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("refunded_paise", sa.Integer(), nullable=False, server_default="0")
        )
    # The scheduled end is a due time like the others: one range of its own index.
    op.create_index("ix_consultations_status_ends_at", "consultations", ["status", "ends_at"])
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("availability", sa.String(8), nullable=False, server_default="online")
        )
        batch_op.add_column(sa.Column("max_sessions", sa.Integer(), nullable=True))
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        # A refund names its session here (consultation_id stays one settlement per session).
        batch_op.add_column(sa.Column("refund_of_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_transfers_refund_of_id_consultations", "consultations", ["refund_of_id"], ["id"]
        )
        batch_op.create_index("ix_transfers_refund_of_id", ["refund_of_id"])
    op.create_table(
        "ratings",
        sa.Column(
            "consultation_id", sa.Integer(), sa.ForeignKey("consultations.id"), primary_key=True
        ),
        sa.Column("astrologer_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("comment", sa.String(1000), nullable=True),
        sa.Column("first_rated_at", sa.DateTime(), nullable=False),
        sa.Column("rated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("stars BETWEEN 1 AND 5", name=op.f("ck_ratings_stars")),
    )
    op.create_index("ix_ratings_astrologer_id", "ratings", ["astrologer_id"])
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "consultation_id", sa.Integer(), sa.ForeignKey("consultations.id"), nullable=False
        ),
        sa.Column("reporter_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("category", sa.String(24), nullable=False),
        sa.Column("text", sa.String(2000), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("refund_paise", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'refunded', 'rejected')", name=op.f("ck_reports_status")
        ),
    )
    op.create_index("ix_reports_consultation_id", "reports", ["consultation_id"])
    op.create_index("ix_reports_status_created_at", "reports", ["status", "created_at"])
    # One open report per session, in the database itself.
    op.create_index(
        "uq_reports_one_open_per_session",
        "reports",
        ["consultation_id"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )


def downgrade():
    op.drop_table("reports")
    op.drop_table("ratings")
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_transfers_refund_of_id")
        batch_op.drop_constraint("fk_transfers_refund_of_id_consultations", type_="foreignkey")
        batch_op.drop_column("refund_of_id")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("max_sessions")
        batch_op.drop_column("availability")
    op.drop_index("ix_consultations_status_ends_at", table_name="consultations")
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.drop_column("refunded_paise")
        batch_op.drop_column("ends_at")
        batch_op.drop_column("max_spend_paise")
        batch_op.drop_column("max_minutes")
