"""Statements run on the driver's cursor behave as the session's executions did: in the
session's transaction, with the column types' conversions both ways, the driver's errors
raised as SQLAlchemy's, and the engine's listeners hearing each one. A lean transaction
(statements alone, without the session) keeps the same promises."""

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.exc import IntegrityError

from consult import accounts, statements
from consult.audit import SessionEvent
from consult.clock import utcnow
from consult.db import db, write_transaction
from consult.ledger import Account, Transfer
from consult.statements import Statement
from helpers import PASSWORD

_transfers, _accounts, _events = Transfer.__table__, Account.__table__, SessionEvent.__table__
INSERT_TRANSFER = Statement(insert(_transfers).returning(_transfers.c.id))
TRANSFER = Statement(
    select(_transfers.c.created_at, _transfers.c.memo).where(_transfers.c.id == bindparam("id"))
)


def _transfer(**values) -> dict:
    return {"kind": "recharge", "memo": "test", "created_at": utcnow()} | values


def test_values_go_in_and_come_back_through_the_column_types(app):
    at = datetime(2026, 12, 4, 7, 30, 15, 123456, tzinfo=UTC)
    with write_transaction():
        transfer_id = INSERT_TRANSFER.run(_transfer(created_at=at, memo="₹ in, ₹ out")).scalar_one()
    db.session.rollback()
    row = TRANSFER.run({"id": transfer_id}).one()
    assert row.created_at == at and row.created_at.tzinfo is not None  # UTCDateTime's
    assert row.memo == "₹ in, ₹ out"
    # The session's own read of the same row agrees.
    assert db.session.get(Transfer, transfer_id).created_at == at


def test_a_naive_instant_is_refused_as_the_session_refuses_it(app):
    with pytest.raises(ValueError, match="naive datetimes are not stored"), write_transaction():
        INSERT_TRANSFER.run(_transfer(created_at=datetime(2026, 12, 4)))


def test_statements_share_the_sessions_transaction(app):
    with pytest.raises(RuntimeError), write_transaction():
        transfer_id = INSERT_TRANSFER.run(_transfer()).scalar_one()
        assert db.session.get(Transfer, transfer_id) is not None  # the same transaction
        raise RuntimeError("roll it all back")
    db.session.rollback()
    assert TRANSFER.run({"id": transfer_id}).one_or_none() is None


def test_a_constraint_violation_is_sqlalchemys_integrity_error_and_changes_nothing(app):
    user = accounts.create_user("stmt-user", PASSWORD, role="user", now=utcnow())
    session_id = _a_consultation(user.id)
    with write_transaction():
        INSERT_TRANSFER.run(_transfer(kind="settlement", consultation_id=session_id))
    with pytest.raises(IntegrityError), write_transaction():  # one settlement per consultation
        INSERT_TRANSFER.run(_transfer(kind="settlement", consultation_id=session_id))
    db.session.rollback()
    settlements = select(Transfer).where(Transfer.consultation_id == session_id)
    assert len(db.session.scalars(settlements).all()) == 1


def _a_consultation(user_id: int) -> int:
    from consult.consultations import Consultation

    astrologer = accounts.create_user(
        "stmt-astro", PASSWORD, role="astrologer", now=utcnow(), rate_paise_per_minute=100
    )
    with write_transaction():
        consultation = Consultation(
            user_id=user_id,
            astrologer_id=astrologer.id,
            rate_paise_per_minute=100,
            status="cancelled",
            requested_at=utcnow() - timedelta(minutes=1),
        )
        db.session.add(consultation)
    return consultation.id


def test_the_engines_listeners_hear_every_execution(app):
    heard = []

    def listen(_conn, _cursor, statement, parameters, _context, executemany):
        heard.append((statement.split()[0], executemany))

    entries = Statement(insert(db.metadata.tables["entries"]))
    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        with (
            pytest.raises(IntegrityError),
            write_transaction(),
        ):  # no such transfer or account: the keys refuse
            row = {"transfer_id": 0, "account_id": 0, "direction": "debit", "amount_paise": 1}
            entries.run_many([row, row | {"direction": "credit"}])
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)
    assert ("INSERT", True) in heard


def test_a_column_only_the_engine_would_fill_is_refused(app):
    with (
        pytest.raises(ValueError, match="accounts.balance_paise has a default"),
        write_transaction(),
    ):
        Statement(insert(_accounts)).run({"kind": "user_wallet", "owner_id": None})
    # Named, it goes through: the statement sets exactly the columns it is given.
    rows = Statement(update(_accounts).where(_accounts.c.id == bindparam("account"))).run(
        {"account": -1, "balance_paise": 0}
    )
    assert rows.rowcount == 0
    db.session.rollback()


# ---------------------------------------------------------------- the lean transaction


def test_a_lean_transaction_commits_and_the_session_then_sees_it(app):
    db.session.scalar(select(Transfer.id).limit(1))  # the session holds a read transaction
    with statements.transaction():
        transfer_id = INSERT_TRANSFER.run(_transfer(memo="lean")).scalar_one()
    # The session's earlier transaction ended: its next read is fresh, not a stale snapshot.
    assert db.session.get(Transfer, transfer_id).memo == "lean"


def test_a_lean_transaction_rolls_back_whole_on_any_error(app):
    with pytest.raises(RuntimeError, match="roll it all back"), statements.transaction():
        transfer_id = INSERT_TRANSFER.run(_transfer()).scalar_one()
        assert TRANSFER.run({"id": transfer_id}).one() is not None  # inside, it is there
        raise RuntimeError("roll it all back")
    assert TRANSFER.run({"id": transfer_id}).one_or_none() is None
    db.session.rollback()


def test_a_constraint_violation_in_a_lean_transaction_is_an_integrity_error(app):
    user = accounts.create_user("lean-user", PASSWORD, role="user", now=utcnow())
    session_id = _a_consultation(user.id)
    with statements.transaction():
        INSERT_TRANSFER.run(_transfer(kind="settlement", consultation_id=session_id))
    with pytest.raises(IntegrityError), statements.transaction():
        INSERT_TRANSFER.run(_transfer(kind="refund", memo="kept?"))
        INSERT_TRANSFER.run(_transfer(kind="settlement", consultation_id=session_id))
    settlements = select(Transfer).where(Transfer.consultation_id == session_id)
    assert len(db.session.scalars(settlements).all()) == 1
    assert db.session.scalar(select(Transfer).where(Transfer.memo == "kept?")) is None


def test_the_session_used_inside_a_lean_transaction_is_refused_and_nothing_stays(app):
    """On SQLite it would run on another connection and wait for the lock this one holds;
    anywhere, outside this transaction. So it raises, and the block rolls back."""
    with pytest.raises(RuntimeError, match="inside a lean transaction"), statements.transaction():
        transfer_id = INSERT_TRANSFER.run(_transfer()).scalar_one()
        db.session.get(Transfer, transfer_id)
    db.session.rollback()
    assert TRANSFER.run({"id": transfer_id}).one_or_none() is None


def test_lean_transactions_do_not_nest(app):
    outer = statements.transaction()
    with pytest.raises(RuntimeError, match="do not nest"), outer, statements.transaction():
        pass


def test_the_engines_listeners_hear_a_lean_transaction_begin_and_run(app):
    heard = []

    def listen(conn, _cursor, statement, _parameters, _context, _executemany):
        heard.append((conn, statement.split()[0]))

    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        with statements.transaction():
            INSERT_TRANSFER.run(_transfer())
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)
    expected = ["INSERT"] if db.engine.dialect.name == "postgresql" else ["BEGIN", "INSERT"]
    assert [name for _conn, name in heard] == expected
    assert all(conn is None for conn, _name in heard)  # no SQLAlchemy connection behind them


def _checkouts(engine) -> list:
    """The DB-API connections the engine's pool hands out from now on."""
    taken = []
    event.listen(
        engine.pool, "checkout", lambda dbapi_connection, *_: taken.append(dbapi_connection)
    )
    return taken


# Only SQLite keeps one: PostgreSQL's pool pings a connection at checkout.
@pytest.mark.sqlite_only
def test_lean_transactions_on_sqlite_keep_their_connection_instead_of_the_pools(app):
    """The pool's checkout and check-in were 7 % of a chat message's CPU (statements._Kept)."""
    with statements.transaction():
        INSERT_TRANSFER.run(_transfer())
    taken = _checkouts(db.engine)
    for _ in range(3):
        with statements.transaction():
            INSERT_TRANSFER.run(_transfer())
    assert taken == []  # the kept connection served all three
    assert db.engine.pool.checkedout() == 1  # and it is only the one


def test_a_failed_lean_transaction_gives_its_connection_back_to_the_pool(app):
    with statements.transaction():
        INSERT_TRANSFER.run(_transfer())
    with pytest.raises(IntegrityError), statements.transaction():
        INSERT_TRANSFER.run(_transfer(kind=None))
    assert db.engine.pool.checkedout() == 0  # none kept after a failure, none leaked
    with statements.transaction():  # and the next one works
        transfer_id = INSERT_TRANSFER.run(_transfer(memo="after")).scalar_one()
    assert TRANSFER.run({"id": transfer_id}).one().memo == "after"


@pytest.mark.sqlite_only
def test_disposing_of_the_engine_closes_the_kept_connection(app):
    taken = _checkouts(db.engine)
    with statements.transaction():
        INSERT_TRANSFER.run(_transfer())
    [kept] = taken
    db.engine.dispose()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        kept.execute("SELECT 1")
    with statements.transaction():  # a fresh one from the new pool
        transfer_id = INSERT_TRANSFER.run(_transfer(memo="fresh")).scalar_one()
    assert TRANSFER.run({"id": transfer_id}).one().memo == "fresh"


@pytest.mark.sqlite_only
def test_a_connection_in_use_when_the_engine_is_disposed_of_is_closed_when_it_comes_back(app):
    taken = _checkouts(db.engine)
    with statements.transaction():
        INSERT_TRANSFER.run(_transfer(memo="during"))
        db.engine.dispose()  # another greenlet's, say, while this one is mid-transaction
    [lent] = taken
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        lent.execute("SELECT 1")
    assert db.session.scalar(select(Transfer.memo).where(Transfer.memo == "during")) == "during"
