"""Money and audit records are append-only in the database itself (issue 13 part 5): raw
SQL cannot change or remove a ledger entry, a transfer or an audit event, on SQLite and
PostgreSQL alike, and a refused change leaves the books as they were."""

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from consult import audit, ledger_audit
from consult.clock import utcnow
from consult.db import db
from helpers.inprocess import balance_of, end_as, live_session, make_astrologer, make_user

CHANGES = [
    "UPDATE entries SET amount_paise = amount_paise + 100",
    "DELETE FROM entries",
    "UPDATE transfers SET memo = 'nothing happened'",
    "DELETE FROM transfers",
    "UPDATE session_events SET reason = 'user_requested'",
    "DELETE FROM session_events",
]


@pytest.fixture
def settled(app):
    user = make_user("asha", balance=10_000)
    session_id = live_session(user, make_astrologer("guru"))
    end_as(user, session_id, utcnow())
    db.session.rollback()


@pytest.mark.parametrize("statement", CHANGES)
def test_raw_sql_cannot_change_or_remove_a_money_or_audit_record(settled, statement):
    table = statement.split()[1 if statement.startswith("UPDATE") else 2]
    before = db.session.execute(text(f"SELECT * FROM {table} ORDER BY id")).all()
    assert before, f"no {table} to change"
    with pytest.raises(DatabaseError, match="append-only"):
        db.session.execute(text(statement))
    db.session.rollback()
    assert db.session.execute(text(f"SELECT * FROM {table} ORDER BY id")).all() == before
    assert ledger_audit.check().ok


def test_money_events_keep_the_idempotency_key_and_the_wallet_either_side(app, client, boss):
    user, guru = make_user("ravi", balance=10_000), make_astrologer("tara", rate=6000)
    session_id = live_session(user, guru, started_at=utcnow() - timedelta(seconds=30))
    r = client.post(
        "/api/sessions/end", headers={**user.auth, "Idempotency-Key": "end-ravi-1"}, json={}
    )
    cost = r.get_json()["totalCostPaise"]
    assert cost >= 3_000
    r = client.post(
        f"/api/admin/sessions/{session_id}/refund",
        json={"amountPaise": 1_000, "note": "goodwill"},
        headers={**boss.auth, "Idempotency-Key": "refund-ravi-1"},
    )
    assert r.status_code == 200, r.get_json()
    db.session.rollback()
    events = {e.kind: e for e in audit.trail(session_id)}
    ended, refunded = events["ended"], events["refunded"]
    assert (ended.idempotency_key, ended.wallet_before_paise, ended.wallet_after_paise) == (
        "end-ravi-1",
        10_000,
        10_000 - cost,
    )
    assert (refunded.idempotency_key, refunded.wallet_before_paise) == (
        "refund-ravi-1",
        10_000 - cost,
    )
    assert refunded.wallet_after_paise == 10_000 - cost + 1_000 == balance_of(user)
