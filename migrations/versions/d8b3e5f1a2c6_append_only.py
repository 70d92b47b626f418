"""append-only: the database itself refuses to change or remove money and audit records

Ledger entries, transfers and audit events are only ever inserted. The models refuse
updates already; these triggers make the database refuse them too, whoever writes (a
script, a console, a bug in raw SQL). TRUNCATE, an operator's reset of a whole database,
is not a row change and stays possible on PostgreSQL.

Money audit events (an end, a refund) also keep the idempotency key they were asked with
and the user's wallet before and after.

Revision ID: d8b3e5f1a2c6
Revises: c6a1f0d2e7b4
Create Date: 2026-12-03 17:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "d8b3e5f1a2c6"
down_revision = "c6a1f0d2e7b4"
branch_labels = None
depends_on = None

TABLES = ("entries", "transfers", "session_events")


def upgrade():
    # First the columns: on SQLite a change that rebuilds a table would drop its triggers.
    op.add_column("session_events", sa.Column("idempotency_key", sa.String(200), nullable=True))
    op.add_column("session_events", sa.Column("wallet_before_paise", sa.Integer(), nullable=True))
    op.add_column("session_events", sa.Column("wallet_after_paise", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION consult_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only: rows are never changed or removed', "
            "TG_TABLE_NAME; END $$"
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION consult_append_only()"
            )
        return
    for table in TABLES:
        for change in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_append_only_{change.lower()} BEFORE {change} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: rows are never changed "
                "or removed'); END"
            )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION consult_append_only()")
    else:
        for table in TABLES:
            for change in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_append_only_{change}")
    with op.batch_alter_table("session_events", schema=None) as batch_op:
        for column in ("wallet_after_paise", "wallet_before_paise", "idempotency_key"):
            batch_op.drop_column(column)
