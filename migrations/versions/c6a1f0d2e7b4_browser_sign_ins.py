"""browser sign-ins: a sign-out closes the cookie's sign-in on the server

A browser's session cookie is signed, not stored: a copy taken before signing out would
stay good. Each sign-in now has a row, named by a digest of the random marker in the
cookie, closed at sign-out. Cookies from before this revision name no row: their browsers
sign in once more.

Revision ID: c6a1f0d2e7b4
Revises: b4e7d2a9c1f3
Create Date: 2026-12-03 16:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "c6a1f0d2e7b4"
down_revision = "b4e7d2a9c1f3"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "browser_sign_ins",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("signed_in_at", sa.DateTime(), nullable=False),
        sa.Column("signed_out_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_browser_sign_ins_user_id", "browser_sign_ins", ["user_id"])


def downgrade():
    op.drop_index("ix_browser_sign_ins_user_id", table_name="browser_sign_ins")
    op.drop_table("browser_sign_ins")
