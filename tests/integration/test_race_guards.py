"""Defence in depth, in process with threads: the database stops a double charge even
without the compare-and-set in front of it, and the control shows the double charge is
real without either guard; an accept racing the request timeout; a keyed end that lost
its race replays its answer. (The same races against a real server: e2e/test_races.py.)
"""

import threading
import uuid
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import bindparam, func, select, update

from consult import consultations, ledger, ledger_audit, wallet
from consult.clock import utcnow
from consult.consultations import ACTIVE, Consultation, settlement
from consult.db import db
from consult.errors import Conflict
from consult.statements import Statement
from helpers import PASSWORD
from helpers.books import assert_books_balance
from helpers.hub import FakeHub
from helpers.inprocess import be_present

RATE = 6000  # a rupee a second


@pytest.fixture
def services_(app):
    return app.extensions["consult"]


def _people(app, services_, balance=100_000):
    from consult import accounts

    n = uuid.uuid4().hex[:8]
    now = utcnow()
    user = accounts.create_user(f"u{n}", PASSWORD, role="user", now=now)
    astrologer = accounts.create_user(
        f"a{n}", PASSWORD, role="astrologer", now=now, rate_paise_per_minute=RATE
    )
    wallet.recharge(user.id, balance, at=now, provider=services_.payments, hub=services_.hub)
    return user, astrologer


def _live(user, astrologer, services_, at):
    c = consultations.request_consultation(
        user, astrologer.id, at=at, hub=services_.hub, policy=services_.policy
    )
    be_present(user.id, astrologer.id, hub=services_.hub)
    return consultations.accept(astrologer, c.id, at=at, hub=services_.hub).id


def without_the_compare_and_set(monkeypatch):
    """Patch both guards in front of the settlement away: the status check (the consultation
    always loads as active) and the compare-and-set (its UPDATE no longer asks for active).
    Returns counters of how far each ender got."""
    reached = Counter()
    real_locked, real_post = settlement._locked_row, ledger.post_transfer

    def locked_but_always_active(consultation_id):
        row = real_locked(consultation_id)
        if row is not None:  # as if each ender had read it before anyone ended
            row = SimpleNamespace(**{**row._asdict(), "status": ACTIVE})
        return row

    def counting_post(kind, moves, **kw):
        if kind == "settlement":  # only an ender the compare-and-set let through gets here
            reached["settlement attempted"] += 1
        return real_post(kind, moves, **kw)

    cas = settlement._COMPARE_AND_SET.core
    assert "status" in str(cas.whereclause)  # the guard this takes away is there
    monkeypatch.setattr(settlement, "_locked_row", locked_but_always_active)
    monkeypatch.setattr(
        settlement,
        "_COMPARE_AND_SET",
        Statement(update(cas.table).where(cas.table.c.id == bindparam("row_id"))),
    )
    monkeypatch.setattr(ledger, "post_transfer", counting_post)
    return reached


def _end_from_threads(app, session_id, enders, hub, policy, started):
    outcomes, errors = [], []
    barrier = threading.Barrier(len(enders))

    def end(i, who):
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                outcome = consultations.end_session(
                    session_id,
                    reason=consultations.USER_REQUESTED
                    if who.role == "user"
                    else consultations.ASTROLOGER_ENDED,
                    at=started + timedelta(seconds=60 + i),
                    hub=hub,
                    policy=policy,
                    actor_id=who.id,
                )
                outcomes.append(outcome.already_ended)
            except Exception as error:  # collected and asserted by the caller
                errors.append(repr(error))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=end, args=(i, w)) for i, w in enumerate(enders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes, errors


def test_without_the_compare_and_set_the_unique_settlement_still_stops_a_double_charge(
    app, services_, monkeypatch
):
    user, astrologer = _people(app, services_)
    started = utcnow() - timedelta(minutes=5)
    session_id = _live(user, astrologer, services_, started)
    hub = FakeHub()
    reached = without_the_compare_and_set(monkeypatch)

    outcomes, errors = _end_from_threads(
        app, session_id, [user, astrologer] * 6, hub, services_.policy, started
    )

    assert errors == []
    # Every ender got past the status check and the (missing) compare-and-set, and tried
    # to post a settlement: only the database's unique constraint was left to stop them.
    assert reached["settlement attempted"] == 12
    assert sorted(outcomes) == [False] + [True] * 11
    assert hub.count("consult:ended") == 1
    db.session.rollback()
    settled = db.session.get(Consultation, session_id)
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(ledger.Transfer)
            .where(ledger.Transfer.consultation_id == session_id)
        )
        == 1
    )
    assert consultations.wallet_balance(user.id) == 100_000 - settled.total_cost_paise
    assert_books_balance()


def test_without_either_guard_the_double_charge_is_real_and_reconciliation_names_it(
    app, services_, monkeypatch
):
    """The control for the test above: take the unique constraint's hold away too (the
    settlement no longer names its session) and the same race charges the user again."""
    user, astrologer = _people(app, services_)
    started = utcnow() - timedelta(minutes=5)
    session_id = _live(user, astrologer, services_, started)
    without_the_compare_and_set(monkeypatch)
    real_post = ledger.post_transfer

    def anonymous_settlement(kind, moves, **kw):
        return real_post(kind, moves, **{**kw, "consultation_id": None})

    monkeypatch.setattr(ledger, "post_transfer", anonymous_settlement)
    outcomes, errors = _end_from_threads(
        app, session_id, [user, astrologer] * 2, FakeHub(), services_.policy, started
    )
    assert errors == []
    assert outcomes.count(False) > 1  # more than one "winner": charged more than once
    db.session.rollback()
    rules = {p.rule for p in ledger_audit.problems()}
    assert {"settled_once", "settlement_names_session"} <= rules


def test_an_accept_racing_the_request_timeout_either_starts_or_expires_never_both(
    app, services_, monkeypatch
):
    """The scheduler's expiry has read the request as waiting; the astrologer's accept lands
    before expiry writes. Either the accept wins (active, billed) or the expiry does (the
    accept is refused): never an 'expired' session that was started. (Found on PostgreSQL
    by the soak: expiry read without a row lock, and overwrote the accept.)"""
    from consult import audit

    user, astrologer = _people(app, services_)
    asked = utcnow() - timedelta(seconds=services_.policy.request_timeout_seconds + 1)
    c = consultations.request_consultation(
        user, astrologer.id, at=asked, hub=services_.hub, policy=services_.policy
    )
    accepted, refused = [], []

    def accept_now():
        with app.app_context():
            try:
                accepted.append(
                    consultations.accept(
                        db.session.get(type(astrologer), astrologer.id),
                        c.id,
                        at=utcnow(),
                        hub=services_.hub,
                    ).status
                )
            except Conflict as error:
                refused.append(error.message)
            finally:
                db.session.remove()

    real_record = audit.record
    racer = threading.Thread(target=accept_now)

    def record_then_let_the_accept_in(consultation_id, kind, **kw):
        real_record(consultation_id, kind, **kw)
        if kind == "expired" and not racer.is_alive() and not (accepted or refused):
            racer.start()
            racer.join(1.5)  # PostgreSQL: it commits now; SQLite: it waits for our lock

    monkeypatch.setattr(audit, "record", record_then_let_the_accept_in)
    expired = consultations.expire_stale(now=utcnow(), hub=services_.hub, policy=services_.policy)
    racer.join(20)
    assert len(accepted) + len(refused) == 1, (accepted, refused)
    db.session.rollback()
    final = db.session.get(Consultation, c.id)
    if accepted:  # the astrologer was told the session is active: it must be
        assert (final.status, c.id in expired) == ("active", False), (final.status, expired)
    else:
        assert final.status == "expired" and final.started_at is None
    assert_books_balance()


def test_an_end_retried_with_its_key_after_losing_the_race_replays_its_answer(
    app, client, services_, monkeypatch
):
    """The user's keyed end found the session active, then the astrologer's end committed
    first, so the user got `alreadyEnded: true`. A retry with the same key must get that
    same answer, not "No active session found to end"."""
    from consult import accounts

    user, astrologer = _people(app, services_)
    _live(user, astrologer, services_, utcnow())
    token = accounts.issue_token(user, now=utcnow(), ttl_seconds=600)
    real_end_by_party = consultations.end_by_party

    def astrologer_first(caller, consultation_id, **kw):
        monkeypatch.setattr(settlement, "end_by_party", real_end_by_party)  # once only
        real_end_by_party(
            db.session.get(type(astrologer), astrologer.id),
            consultation_id,
            at=utcnow(),
            hub=services_.hub,
            policy=services_.policy,
        )
        return real_end_by_party(caller, consultation_id, **kw)

    monkeypatch.setattr(settlement, "end_by_party", astrologer_first)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "lost-race"}
    first = client.post("/api/sessions/end", json={}, headers=headers)
    assert first.status_code == 200 and first.get_json()["alreadyEnded"] is True
    assert first.get_json()["reason"] == "astrologer_ended"
    again = client.post("/api/sessions/end", json={}, headers=headers)
    assert (again.status_code, again.get_json()) == (200, first.get_json())
    assert_books_balance()


def test_the_status_check_alone_would_let_a_second_end_through(app, services_, monkeypatch):
    """Why the compare-and-set is there: with only the (patched) status check, a second
    sequential end reaches the settlement and only the database refuses it."""
    user, astrologer = _people(app, services_)
    started = utcnow() - timedelta(minutes=2)
    session_id = _live(user, astrologer, services_, started)
    hub = FakeHub()

    def end(reason: str, seconds: int):
        """End the session for `reason`, `seconds` after it started."""
        at = started + timedelta(seconds=seconds)
        return consultations.end_session(
            session_id, reason=reason, at=at, hub=hub, policy=services_.policy
        )

    first = end("user_requested", 30)
    reached = without_the_compare_and_set(monkeypatch)
    second = end("astrologer_ended", 90)
    assert reached["settlement attempted"] == 1
    assert second.already_ended is True
    assert second.consultation.total_cost_paise == first.consultation.total_cost_paise == 3000
    assert second.consultation.end_reason == "user_requested"
    assert hub.count("consult:ended") == 1
    assert_books_balance()


def test_many_ends_sharing_an_astrologer_and_the_platform_settle_without_a_deadlock(app, services_):
    """Every settlement credits the astrologer's earnings and the platform's revenue. On
    PostgreSQL their balances' UPDATE once took those rows in whatever order it found them,
    and concurrent ends deadlocked (bench/scale: 46 of 200 ends at 50/s); now only the
    user's wallet keeps a running balance, and no settlement writes a shared row."""
    from consult import accounts

    started = utcnow() - timedelta(minutes=5)
    astrologers = [
        accounts.create_user(
            f"a{uuid.uuid4().hex[:8]}",
            PASSWORD,
            role="astrologer",
            now=started,
            rate_paise_per_minute=RATE,
        )
        for _ in range(2)
    ]
    errors = []
    for _round in range(3):  # each round's updates move the rows' versions around
        _end_all_at_once(app, services_, astrologers, started, errors)
    assert errors == []
    db.session.rollback()
    assert_books_balance()


def _end_all_at_once(app, services_, astrologers, started, errors):
    sessions = []
    for i in range(16):
        user, _ = _people(app, services_)
        sessions.append((user, _live(user, astrologers[i % 2], services_, started)))
    barrier = threading.Barrier(len(sessions))

    def end(user, session_id):
        with app.app_context():
            try:
                barrier.wait(10)
                consultations.end_session(
                    session_id,
                    reason=consultations.USER_REQUESTED,
                    at=utcnow(),
                    hub=FakeHub(),
                    policy=services_.policy,
                    actor_id=user.id,
                )
            except Exception as error:  # collected and asserted below
                errors.append(repr(error))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=end, args=s) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
