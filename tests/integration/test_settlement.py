"""The settlement service: one end, one charge, whoever ends and however often (a real database)."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from consult import accounts, audit, consultations, ledger, scheduler, wallet
from consult.clock import utcnow
from consult.consultations import ENDED, Consultation
from consult.db import db
from consult.errors import Conflict, NotFound, PaymentRequired
from consult.realtime import LocalHub
from helpers import PASSWORD
from helpers.books import assert_books_balance
from helpers.hub import FakeHub
from helpers.inprocess import Listener
from helpers.server import wait_until

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def hub():
    return FakeHub()


@pytest.fixture
def policy(app):
    return app.extensions["consult"].policy


@pytest.fixture
def people(app, hub):
    def make(balance=50_000, rate=2000):
        n = len(db.session.scalars(select(accounts.User)).all())
        user = accounts.create_user(f"user{n}", PASSWORD, role="user", now=T0)
        astrologer = accounts.create_user(
            f"astro{n}", PASSWORD, role="astrologer", now=T0, rate_paise_per_minute=rate
        )
        if balance:
            wallet.recharge(
                user.id, balance, at=T0, provider=app.extensions["consult"].payments, hub=hub
            )
        return user, astrologer

    return make


def live(user, astrologer, hub, policy, at=T0):
    c = consultations.request_consultation(user, astrologer.id, at=at, hub=hub, policy=policy)
    return consultations.accept(astrologer, c.id, at=at, hub=hub)


def end(c, hub, policy, seconds, reason=consultations.USER_REQUESTED, actor=None, **kw):
    return consultations.end_session(
        c.id,
        reason=reason,
        at=T0 + timedelta(seconds=seconds),
        hub=hub,
        policy=policy,
        actor_id=actor,
        **kw,
    )


def test_end_charges_the_policy_cost_and_moves_it_to_astrologer_and_platform(people, hub, policy):
    user, astrologer = people(balance=50_000, rate=3500)
    c = live(user, astrologer, hub, policy)
    outcome = end(c, hub, policy, 125.9, actor=user.id)
    assert outcome.already_ended is False
    settled = outcome.consultation
    assert settled.billed_seconds == 125
    assert settled.total_cost_paise == 125 * 3500 // 60 == 7291
    assert consultations.wallet_balance(user.id) == 50_000 - 7291 == settled.balance_after_paise
    # The platform keeps 20 % (the default commission), rounded down to the paisa.
    assert ledger.balance(ledger.earnings_of(astrologer.id)) == 7291 - 1458 == 5833
    assert ledger.balance(ledger.open_account(ledger.PLATFORM_REVENUE)) == 1458
    assert_books_balance()


def test_the_compare_and_set_refuses_a_settlement_read_before_another_end_won(people, hub, policy):
    """The real guard, not a patched one: a settlement working from a row read while the
    session was active loses to the end that committed first, and its transaction moves
    nothing."""
    from consult.consultations import settlement
    from consult.db import write_transaction

    user, astrologer = people(balance=50_000, rate=6000)
    c = live(user, astrologer, hub, policy)
    with write_transaction():
        read_while_active = settlement._locked_row(c.id)
    assert read_while_active.status == consultations.ACTIVE
    end(c, hub, policy, 30, actor=user.id)  # the user's end wins: 30 s, 3,000 paise
    with pytest.raises(settlement._LostRace), write_transaction():
        settlement._settle(
            read_while_active,
            consultations.ASTROLOGER_ENDED,
            T0 + timedelta(seconds=90),
            policy,
            astrologer.id,
            None,
        )
    db.session.expire_all()
    settled = db.session.get(Consultation, c.id)
    assert (settled.end_reason, settled.total_cost_paise) == (consultations.USER_REQUESTED, 3000)
    assert consultations.wallet_balance(user.id) == 47_000
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(ledger.Transfer)
            .where(ledger.Transfer.consultation_id == c.id)
        )
        == 1
    )
    assert_books_balance()


def test_second_end_charges_nothing_and_notifies_nobody(people, hub, policy):
    user, astrologer = people()
    c = live(user, astrologer, hub, policy)
    first = end(c, hub, policy, 30, actor=user.id)
    second = end(c, hub, policy, 90, reason=consultations.ASTROLOGER_ENDED, actor=astrologer.id)
    assert second.already_ended is True
    assert second.consultation.total_cost_paise == first.consultation.total_cost_paise == 1000
    assert second.consultation.end_reason == consultations.USER_REQUESTED
    assert consultations.wallet_balance(user.id) == 49_000
    assert len(hub.named("consult:ended")) == 1
    assert len(hub.named("session:ended-by-user")) == 1
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(ledger.Transfer)
            .where(ledger.Transfer.kind == "settlement")
        )
        == 1
    )
    assert_books_balance()


def test_ended_event_goes_to_both_parties_and_ended_by_user_only_to_the_astrologer(
    people, hub, policy
):
    user, astrologer = people()
    c = live(user, astrologer, hub, policy)
    end(c, hub, policy, 10, actor=user.id)
    [(ids, ended)] = hub.named("consult:ended")
    assert ids == tuple(sorted((user.id, astrologer.id)))
    assert ended.data == {
        "sessionId": c.id,
        "reason": "user_requested",
        "timestamp": "2026-03-01T10:00:10Z",
        "durationSeconds": 10,
        "totalCostPaise": 333,
    }
    [(ids, by_user)] = hub.named("session:ended-by-user")
    assert ids == (astrologer.id,)


def test_astrologer_end_sends_no_ended_by_user(people, hub, policy):
    user, astrologer = people()
    c = live(user, astrologer, hub, policy)
    end(c, hub, policy, 10, reason=consultations.ASTROLOGER_ENDED, actor=astrologer.id)
    assert hub.named("session:ended-by-user") == []


def test_a_late_end_is_billed_only_up_to_the_funded_end(people, hub, policy):
    user, astrologer = people(balance=2_500, rate=2000)  # funds 75 seconds
    c = live(user, astrologer, hub, policy)
    outcome = end(c, hub, policy, 400, reason=consultations.INSUFFICIENT_BALANCE)
    assert outcome.consultation.billed_seconds == 75
    assert outcome.consultation.ended_at == T0 + timedelta(seconds=75)
    assert outcome.consultation.total_cost_paise == 2500
    assert consultations.wallet_balance(user.id) == 0
    assert_books_balance()


def test_the_scheduler_finds_the_funded_end_and_a_recharge_moves_it(app, people, hub, policy):
    user, astrologer = people(balance=2_000, rate=2000)  # 60 funded seconds
    c = live(user, astrologer, hub, policy)
    assert consultations.due_ends(now=T0 + timedelta(seconds=59), policy=policy) == []
    assert consultations.due_ends(now=T0 + timedelta(seconds=60), policy=policy) == [
        (c.id, consultations.INSUFFICIENT_BALANCE, T0 + timedelta(seconds=60))
    ]
    wallet.recharge(
        user.id,
        2_000,
        at=T0 + timedelta(seconds=30),
        provider=app.extensions["consult"].payments,
        hub=hub,
    )
    assert consultations.due_ends(now=T0 + timedelta(seconds=60), policy=policy) == []
    assert consultations.due_ends(now=T0 + timedelta(seconds=120), policy=policy) == [
        (c.id, consultations.INSUFFICIENT_BALANCE, T0 + timedelta(seconds=120))
    ]


def test_the_next_due_time_is_the_earliest_still_to_come(people, hub, policy):
    user, astrologer = people(balance=2_000, rate=2000)  # funds run out at T0 + 60 s
    live(user, astrologer, hub, policy)
    assert consultations.next_due(now=T0, policy=policy) == T0 + timedelta(seconds=60)
    away, other = people(balance=50_000, rate=2000)  # funded for 1,500 s
    live(away, other, hub, policy)
    consultations.party_left(away.id, at=T0 + timedelta(seconds=10), hub=hub)
    grace_over = T0 + timedelta(seconds=10 + policy.disconnect_grace_seconds)
    assert grace_over < T0 + timedelta(seconds=60)
    assert consultations.next_due(now=T0 + timedelta(seconds=10), policy=policy) == grace_over
    # What is due already is the tick's to end; the next one to come is named.
    assert consultations.next_due(now=grace_over, policy=policy) == T0 + timedelta(seconds=60)
    later = consultations.next_due(now=T0 + timedelta(seconds=60), policy=policy)
    assert later == T0 + timedelta(seconds=1_500)


def test_the_scheduler_wakes_between_ticks_for_a_funded_end(app, people, hub, policy):
    """A minute between ticks, and funds that run out in a second: the end comes then."""
    user, astrologer = people(balance=2_000, rate=2000)  # 60 funded seconds
    session_id = live(user, astrologer, hub, policy, at=utcnow() - timedelta(seconds=59)).id
    clock = scheduler.Scheduler(app, interval=60, alone=True)
    clock.tick(utcnow())  # the first tick takes the lease; nothing is due yet
    assert _status_and_reason(session_id) == (consultations.ACTIVE, None)
    clock.start()
    try:
        ended = wait_until(
            lambda: _status_and_reason(session_id) == (ENDED, "insufficient_balance"),
            timeout=15,
            message="the funded end, long before the next tick",
        )
    finally:
        clock.stop()
    assert ended


def _status_and_reason(consultation_id):
    row = db.session.execute(
        select(Consultation.status, Consultation.end_reason).where(
            Consultation.id == consultation_id
        )
    ).one()
    db.session.remove()
    return tuple(row)


def test_a_disconnect_pauses_billing_and_the_grace_ends_it_at_the_disconnect(people, hub, policy):
    user, astrologer = people()
    c = live(user, astrologer, hub, policy)
    consultations.party_left(user.id, at=T0 + timedelta(seconds=40), hub=hub)
    grace = policy.disconnect_grace_seconds
    assert consultations.due_ends(now=T0 + timedelta(seconds=40 + grace - 1), policy=policy) == []
    [(cid, reason, _)] = consultations.due_ends(
        now=T0 + timedelta(seconds=40 + grace), policy=policy
    )
    assert (cid, reason) == (c.id, consultations.USER_DISCONNECTED)
    outcome = end(c, hub, policy, 40 + grace, reason=reason)
    assert outcome.consultation.billed_seconds == 40
    assert outcome.consultation.ended_at == T0 + timedelta(seconds=40)


def test_a_reconnect_within_grace_resumes_billing_without_charging_the_gap(people, hub, policy):
    user, astrologer = people()
    c = live(user, astrologer, hub, policy)
    consultations.party_left(user.id, at=T0 + timedelta(seconds=10), hub=hub)
    consultations.party_returned(user.id, at=T0 + timedelta(seconds=25), hub=hub)
    assert consultations.due_ends(now=T0 + timedelta(seconds=200), policy=policy) == []
    outcome = end(c, hub, policy, 70, actor=user.id)
    assert outcome.consultation.billed_seconds == 55  # 70 s less the 15 s gap


def test_when_the_astrologer_vanishes_the_user_stops_paying(people, hub, policy):
    user, astrologer = people()
    c = live(user, astrologer, hub, policy)
    consultations.party_left(astrologer.id, at=T0 + timedelta(seconds=20), hub=hub)
    grace = policy.disconnect_grace_seconds
    [(cid, reason, _)] = consultations.due_ends(
        now=T0 + timedelta(seconds=20 + grace), policy=policy
    )
    assert reason == consultations.ASTROLOGER_DISCONNECTED
    assert end(c, hub, policy, 20 + grace, reason=reason).consultation.billed_seconds == 20


def test_a_user_gone_before_the_accept_is_paused_from_the_start(people, hub, policy):
    user, astrologer = people()
    hub.away[user.id] = T0 - timedelta(seconds=5)
    c = live(user, astrologer, hub, policy)
    assert c.user_left_at == T0
    assert (
        end(c, hub, policy, 100, reason=consultations.USER_DISCONNECTED).consultation.billed_seconds
        == 0
    )


def test_a_party_who_never_connected_is_away_from_the_accept_until_they_arrive(people, policy):
    # A real hub that nobody has ever connected to knows no "gone since" for anyone: being
    # offline, not having left, is what pauses billing (docs/websocket.md, "Presence and billing").
    hub = LocalHub()
    user, astrologer = people()
    hub.attach(Listener(user.id))  # only the user has the app open
    c = live(user, astrologer, hub, policy)
    assert (c.user_left_at, c.astrologer_left_at) == (None, T0)
    paused = audit.trail(c.id)[-1]
    assert (paused.kind, paused.actor_id, paused.detail) == (
        "paused",
        astrologer.id,
        "astrologer_left_at",
    )
    consultations.party_returned(astrologer.id, at=T0 + timedelta(seconds=30), hub=hub)
    assert end(c, hub, policy, 100, actor=user.id).consultation.billed_seconds == 70


def test_when_neither_party_is_connected_the_grace_ends_it_unbilled(people, policy):
    hub = LocalHub()
    user, astrologer = people()
    c = live(user, astrologer, hub, policy)
    assert (c.user_left_at, c.astrologer_left_at) == (T0, T0)
    grace = policy.disconnect_grace_seconds
    assert consultations.due_ends(now=T0 + timedelta(seconds=grace - 1), policy=policy) == []
    [(cid, reason, _)] = consultations.due_ends(now=T0 + timedelta(seconds=grace), policy=policy)
    outcome = end(c, hub, policy, grace, reason=reason)
    assert (cid, outcome.consultation.billed_seconds, outcome.consultation.total_cost_paise) == (
        c.id,
        0,
        0,
    )
    assert consultations.wallet_balance(user.id) == 50_000


class ArrivesDuringTheAccept(LocalHub):
    """A hub where the user's socket attaches just after the accept asked about them."""

    def __init__(self, user_id: int):
        super().__init__()
        self.user_id, self.asked = user_id, False

    def online(self, user_id: int) -> bool:
        if user_id == self.user_id and not self.asked:
            self.asked = True
            self.attach(Listener(user_id))  # its presence callback finds nothing active yet
            return False
        return super().online(user_id)


def test_a_socket_attaching_while_the_accept_commits_does_not_leave_its_party_paused(
    people, policy
):
    user, astrologer = people()
    hub = ArrivesDuringTheAccept(user.id)
    hub.attach(Listener(astrologer.id))
    c = live(user, astrologer, hub, policy)
    settled = db.session.get(Consultation, c.id)
    assert (settled.user_left_at, settled.paused_micros) == (None, 0)
    assert end(c, hub, policy, 50, actor=user.id).consultation.billed_seconds == 50


def test_crash_recovery_settles_up_to_the_last_known_alive_moment(people, hub, policy):
    user, astrologer = people()
    c = live(user, astrologer, hub, policy)
    ended = consultations.recover_after_crash(
        last_alive=T0 + timedelta(seconds=42), hub=hub, policy=policy
    )
    assert ended == [c.id]
    settled = db.session.get(Consultation, c.id)
    assert (settled.end_reason, settled.billed_seconds) == (consultations.SYSTEM_ERROR, 42)
    assert settled.ended_at == T0 + timedelta(seconds=42)


def test_requests_need_a_minute_of_balance_and_one_live_session(people, hub, policy):
    user, astrologer = people(balance=1_999, rate=2000)
    with pytest.raises(PaymentRequired):
        consultations.request_consultation(user, astrologer.id, at=T0, hub=hub, policy=policy)
    user2, astrologer2 = people(balance=2_000, rate=2000)
    consultations.request_consultation(user2, astrologer2.id, at=T0, hub=hub, policy=policy)
    with pytest.raises(Conflict):
        consultations.request_consultation(user2, astrologer2.id, at=T0, hub=hub, policy=policy)


def test_unanswered_requests_expire_without_charge(people, hub, policy):
    user, astrologer = people()
    c = consultations.request_consultation(user, astrologer.id, at=T0, hub=hub, policy=policy)
    later = T0 + timedelta(seconds=policy.request_timeout_seconds)
    assert consultations.expire_stale(now=later, hub=hub, policy=policy) == [c.id]
    assert db.session.get(Consultation, c.id).status == consultations.EXPIRED
    assert consultations.wallet_balance(user.id) == 50_000
    with pytest.raises(Conflict):
        consultations.accept(astrologer, c.id, at=later, hub=hub)


def test_a_stranger_cannot_end_or_even_see_a_session(people, hub, policy):
    user, astrologer = people()
    stranger, other_astrologer = people()
    c = live(user, astrologer, hub, policy)
    for outsider in (stranger, other_astrologer):
        with pytest.raises(NotFound, match="Session not found"):
            consultations.end_by_party(outsider, c.id, at=T0, hub=hub, policy=policy)
    assert db.session.get(Consultation, c.id).status == consultations.ACTIVE


def test_every_end_is_in_the_audit_trail_with_reason_actor_and_cost(people, hub, policy):
    user, astrologer = people()
    c = live(user, astrologer, hub, policy)
    end(c, hub, policy, 30, actor=user.id, request_id="req-42")
    kinds = [(e.kind, e.reason, e.actor_id, e.cost_paise) for e in audit.trail(c.id)]
    assert kinds == [
        ("requested", None, user.id, None),
        ("accepted", None, astrologer.id, None),
        ("ended", "user_requested", user.id, 1000),
    ]
    assert audit.trail(c.id)[-1].request_id == "req-42"


def test_audit_events_cannot_be_changed(people, hub, policy):
    user, astrologer = people()
    c = live(user, astrologer, hub, policy)
    event = audit.trail(c.id)[0]
    event.kind = "forged"
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.commit()
    db.session.rollback()


def test_twenty_concurrent_ends_settle_exactly_once(app, people, hub, policy):
    user, astrologer = people(balance=100_000)
    c = live(user, astrologer, hub, policy)
    outcomes, errors = [], []
    barrier = threading.Barrier(20)

    def ender(i):
        with app.app_context():
            try:
                barrier.wait()
                who = user if i % 2 else astrologer
                outcome = consultations.end_by_party(
                    who, c.id, at=T0 + timedelta(seconds=60 + i), hub=hub, policy=policy
                )
                outcomes.append((outcome.already_ended, outcome.consultation.total_cost_paise))
            except Exception as error:  # collected and asserted below
                errors.append(error)

    threads = [threading.Thread(target=ender, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(a for a, _ in outcomes) == [False] + [True] * 19
    assert len({cost for _, cost in outcomes}) == 1
    assert len(hub.named("consult:ended")) == 1
    db.session.rollback()  # leave the test's read snapshot to see the threads' writes
    settled = db.session.get(Consultation, c.id)
    assert consultations.wallet_balance(user.id) == 100_000 - settled.total_cost_paise
    assert_books_balance()


def test_the_database_refuses_a_second_settlement_transfer(people, hub, policy):
    user, astrologer = people()
    c = live(user, astrologer, hub, policy)
    end(c, hub, policy, 10, actor=user.id)
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        ledger.post_transfer(
            "settlement",
            [],
            wallet=ledger.wallet_of(user.id).id,
            at=T0,
            memo="again",
            consultation_id=c.id,
        )
    db.session.rollback()


def test_only_the_wallet_keeps_a_running_balance(people, hub, policy):
    """An end writes the wallet's row and no other account's: the astrologer's earnings and
    the platform's revenue are the sums of their entries (no shared row to queue on)."""
    user, astrologer = people(balance=10_000, rate=6000)
    end(live(user, astrologer, hub, policy), hub, policy, 90, actor=user.id)  # ₹60/min: ₹90
    earnings, platform = (
        ledger.earnings_of(astrologer.id),
        ledger.open_account(ledger.PLATFORM_REVENUE),
    )
    rows = dict(
        db.session.execute(
            select(ledger.Account.id, ledger.Account.balance_paise).where(
                ledger.Account.id.in_([earnings.id, platform.id])
            )
        ).all()
    )
    assert rows == {earnings.id: 0, platform.id: 0}
    assert ledger.balance(earnings) == 9000 - 1800
    assert ledger.balance(platform.id) == 1800
    assert ledger.balance(ledger.wallet_of(user.id)) == 1000


def test_a_transfer_moves_its_wallet_in_every_move(people):
    user, astrologer = people()
    with pytest.raises(ValueError, match="moves its wallet"):
        ledger.post_transfer(
            "settlement",
            [
                ledger.Move(
                    ledger.earnings_of(astrologer.id).id,
                    ledger.account_id(ledger.PLATFORM_REVENUE),
                    1,
                )
            ],
            wallet=ledger.wallet_of(user.id).id,
            at=T0,
            memo="x",
        )
    db.session.rollback()


def test_a_wallet_cannot_go_negative(people, hub):
    user, _ = people(balance=100)
    w = ledger.wallet_of(user.id)
    with pytest.raises(PaymentRequired):
        ledger.post_transfer(
            "settlement",
            [ledger.Move(w.id, ledger.account_id(ledger.PLATFORM_REVENUE), 101)],
            wallet=w.id,
            at=T0,
            memo="x",
        )
    db.session.rollback()
    assert consultations.wallet_balance(user.id) == 100
