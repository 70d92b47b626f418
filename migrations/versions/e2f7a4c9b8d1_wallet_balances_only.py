"""running balances for user wallets only

Only a user wallet has a floor to guard, so only a wallet keeps a running balance; the
balance of earnings, the platform's revenue and the outside world's account is the sum of
their entries. No transfer writes those rows any more, so concurrent settlements sharing an
astrologer and the platform no longer queue on them (on PostgreSQL they did, and two
workers ended fewer sessions a second than one). Their cached column goes to 0.

Revision ID: e2f7a4c9b8d1
Revises: d8b3e5f1a2c6
Create Date: 2026-12-03 22:40:00

"""

from alembic import op

revision = "e2f7a4c9b8d1"
down_revision = "d8b3e5f1a2c6"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("UPDATE accounts SET balance_paise = 0 WHERE kind != 'user_wallet'")


def downgrade():
    op.execute(
        "UPDATE accounts SET balance_paise = (SELECT COALESCE(SUM(CASE WHEN "
        "entries.direction = 'credit' THEN entries.amount_paise ELSE -entries.amount_paise "
        "END), 0) FROM entries WHERE entries.account_id = accounts.id) "
        "WHERE kind != 'user_wallet'"
    )
