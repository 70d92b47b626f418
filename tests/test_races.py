"""Races and retries: many hands on one session, recharges racing ends and the funded end,
idempotency keys, and proof that the database stops a double charge even without the
compare-and-set in front of it.

The server tests run against a real server subprocess (its own database per module); the
defence-in-depth tests run in process, with threads, and patch the guards away.
"""

import threading
import uuid
from collections import Counter, defaultdict
from datetime import timedelta
from types import SimpleNamespace

import pytest
from fault_helpers import (
    Browser,
    assert_books_balance,
    ended_events_of,
    hang_up,
    make_account,
    query,
    settlements_of,
)
from sqlalchemy import func, select
from support import register_user, start_session, wait_until

from consult import consultations, ledger, ledger_audit, wallet
from consult.clock import utcnow
from consult.consultations import ACTIVE, Consultation, settlement
from consult.db import db
from consult.errors import Conflict

RATE = 6000  # a rupee a second


def run_together(calls, timeout=30):
    """Start every call at once (a barrier) and return their results in order."""
    start = threading.Barrier(len(calls))
    results = [None] * len(calls)
    errors = []

    def run(i):
        try:
            start.wait(timeout=10)
            results[i] = calls[i]()
        except Exception as error:  # reported below with its call
            errors.append((i, error))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a call hung"
    assert errors == [], errors
    return results


def wallet_of(api) -> int:
    r = api.get("/api/wallet")
    assert r.status_code == 200, r.text
    return r.json()["balancePaise"]


# ---------------------------------------------------------------- many enders, one session


def test_every_way_of_ending_at_once_settles_once_with_one_answer(server):
    user = make_account(server, "user", balance=50_000)
    astrologer = make_account(server, "astrologer", rate=RATE)
    user_ws, user_tab, astro_ws = user.socket(), user.socket(), astrologer.socket()
    for ws in (user_ws, user_tab, astro_ws):
        ws.wait_for("session:state")
    page = Browser(server).sign_in(user.user["username"])
    session = start_session(user, astrologer)
    sid = session["id"]
    wait_until(
        lambda: user.get("/api/billing/status").json()["elapsedSeconds"] >= 1,
        message="a second to be billed",
    )

    # (group, who, call): an unkeyed call is a group of its own; one key is one group.
    calls = []
    for i in range(4):
        calls.append((f"u{i}", "user", lambda: user.post(f"/api/sessions/{sid}/end")))
        calls.append((f"v{i}", "user", lambda: user.post("/api/sessions/end", {"sessionId": sid})))
        calls.append(
            (f"a{i}", "astrologer", lambda: astrologer.post(f"/api/sessions/{sid}/end", {}))
        )
    for key, who, api in (("K-user", "user", user), ("K-astro", "astrologer", astrologer)):
        for _ in range(4):
            calls.append(
                (
                    key,
                    who,
                    lambda api=api, key=key: api.post(
                        f"/api/sessions/{sid}/end", headers={"Idempotency-Key": key}
                    ),
                )
            )
    for i, (who, ws) in enumerate(
        (("user", user_ws), ("user", user_tab), ("astrologer", astro_ws))
    ):
        for j in range(2):
            calls.append(
                (
                    f"ws{i}{j}",
                    who,
                    lambda ws=ws, r=f"{i}{j}": ws.send(
                        "endSession", {"sessionId": sid}, requestId=r
                    ),
                )
            )
    calls.append(("page", "user", lambda: page.post(f"/sessions/{sid}/end")))
    results = run_together([call for _, _, call in calls])

    answers = []  # (group, who, body)
    for (group, who, _), result in zip(calls, results, strict=True):
        if group == "page":
            assert result.status_code == 302, result.text
            continue
        if result is None:  # a socket frame: its answer comes back on its socket
            ws = {"ws0": user_ws, "ws1": user_tab, "ws2": astro_ws}[group[:3]]
            frame = ws.wait_for("endSession:result", where=lambda d: True)
            answers.append((group, who, frame["data"]))
        else:
            assert result.status_code == 200, result.text
            answers.append((group, who, result.json()))

    by_group = defaultdict(list)
    for group, _, body in answers:
        by_group[group].append(body)
    for group, bodies in by_group.items():  # retries with one key get one answer
        assert all(b == bodies[0] for b in bodies), (group, bodies)
    winners = {group for group, _, body in answers if body["alreadyEnded"] is False}
    page_won = not winners
    assert len(winners) <= 1, winners
    settled = user.get(f"/api/sessions/{sid}").json()
    after = wallet_of(user)
    assert after == 50_000 - settled["totalCostPaise"]
    for _, who, body in answers:
        assert (body["sessionId"], body["reason"], body["endedAt"]) == (
            sid,
            settled["endReason"],
            settled["endedAt"],
        )
        assert (body["durationSeconds"], body["totalCostPaise"]) == (
            settled["durationSeconds"],
            settled["totalCostPaise"],
        )
        assert body["balancePaise"] == (after if who == "user" else None)
    assert settled["endReason"] in ("user_requested", "astrologer_ended")
    assert settled["totalCostPaise"] == settled["durationSeconds"] * RATE // 60 > 0
    if page_won:
        assert settled["endReason"] == "user_requested"

    for ws in (user_ws, user_tab, astro_ws):  # one consult:ended per socket, no more
        ws.wait_for("consult:ended", where=lambda d: d["sessionId"] == sid)
        assert ws.count("consult:ended", settle=0.3) == 0
    by_user = astro_ws.count("session:ended-by-user", settle=0.1)
    assert by_user == (1 if settled["endReason"] == "user_requested" else 0)
    assert settlements_of(server, sid) == 1
    assert ended_events_of(server, sid) == 1

    for key, api in (("K-user", user), ("K-astro", astrologer)):  # a later retry: the same
        again = api.post(f"/api/sessions/{sid}/end", headers={"Idempotency-Key": key})
        assert again.status_code == 200 and again.json() == by_group[key][0]
    for ws in (user_ws, user_tab, astro_ws):
        hang_up(ws)
    assert_books_balance(server)


# ---------------------------------------------------------------- money racing money


def test_recharges_racing_ends_never_let_a_wallet_go_negative(server):
    """Four sessions with about three funded seconds each; at the brink, recharges and ends
    from both sides arrive together. Whatever order they land in, the books hold."""
    rounds = []
    for _ in range(4):
        user = make_account(server, "user", balance=300)  # 3 s at RATE
        astrologer = make_account(server, "astrologer", rate=RATE)
        rounds.append((user, astrologer, start_session(user, astrologer)))
    wait_until(
        lambda: all(
            u.get("/api/billing/status").json().get("elapsedSeconds", 99) >= 2 for u, _, _ in rounds
        ),
        timeout=10,
        message="two of the three funded seconds to pass",
    )
    calls, recharges = [], []
    for user, astrologer, session in rounds:
        sid = session["id"]
        for n in range(8):
            key = uuid.uuid4().hex
            recharges.append(user)
            calls.append(
                lambda u=user, k=key, n=n: (
                    u,
                    40 + n,
                    u.post("/api/wallet/recharge", {"amountPaise": 40 + n, "idempotencyKey": k}),
                )
            )
        calls += [lambda u=user, s=sid: (u, 0, u.post(f"/api/sessions/{s}/end"))] * 2
        calls += [lambda a=astrologer, s=sid: (a, 0, a.post(f"/api/sessions/{s}/end"))] * 2
    results = run_together(calls)

    credited = Counter()
    for api, amount, r in results:
        assert r.status_code in (200, 404), r.text
        body = r.json()
        if "balancePaise" in body and body["balancePaise"] is not None:
            assert body["balancePaise"] >= 0, body
        if amount:
            assert r.status_code == 200
            credited[api.id] += amount
    for user, _, session in rounds:
        settled = wait_until(
            lambda u=user, s=session: (x := u.get(f"/api/sessions/{s['id']}").json())["status"]
            == "ended"
            and x,
            message="every session to end",
        )
        assert settled["totalCostPaise"] <= 300 + credited[user.id]
        assert wallet_of(user) == 300 + credited[user.id] - settled["totalCostPaise"] >= 0
        assert settlements_of(server, session["id"]) == 1
    assert_books_balance(server)


def test_recharges_in_the_last_second_race_the_funded_end(server):
    """No end request at all: the scheduler ends at the funded end while recharges pour in
    around it. Every recharge that was answered counts, and the cost never exceeds them."""
    user = make_account(server, "user", balance=200)  # 2 s at RATE
    astrologer = make_account(server, "astrologer", rate=RATE)
    session = start_session(user, astrologer)
    wait_until(
        lambda: user.get("/api/billing/status").json().get("fundedSecondsLeft", 0) <= 1,
        timeout=10,
        message="the last funded second",
    )
    keys = [uuid.uuid4().hex for _ in range(12)]
    results = run_together(
        [
            lambda k=k: user.post("/api/wallet/recharge", {"amountPaise": 20, "idempotencyKey": k})
            for k in keys
        ]
    )
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    settled = wait_until(
        lambda: (x := user.get(f"/api/sessions/{session['id']}").json())["status"] == "ended" and x,
        timeout=15,
        message="the funded end",
    )
    assert settled["endReason"] == "insufficient_balance"
    total_in = 200 + 20 * len(keys)
    assert settled["totalCostPaise"] <= total_in
    assert wallet_of(user) == total_in - settled["totalCostPaise"] >= 0
    assert_books_balance(server)


# ---------------------------------------------------------------- idempotency keys


def test_a_recharge_retried_with_its_key_replays_the_first_answer(server):
    user = register_user(server, 1_000)
    first = user.post(
        "/api/wallet/recharge", {"amountPaise": 500}, headers={"Idempotency-Key": "r1"}
    )
    assert first.status_code == 200 and first.json() == {"balancePaise": 1_500}
    user.post("/api/wallet/recharge", {"amountPaise": 100})  # something else happens meanwhile
    for again in (
        user.post("/api/wallet/recharge", {"amountPaise": 500}, headers={"Idempotency-Key": "r1"}),
        user.post("/api/wallet/recharge", {"amountPaise": 500, "idempotencyKey": "r1"}),
    ):
        assert again.status_code == 200
        assert again.json() == first.json()  # the first answer, not today's balance
    assert wallet_of(user) == 1_600
    # Keys are per user: another user's "r1" is their own.
    other = register_user(server, 0)
    r = other.post("/api/wallet/recharge", {"amountPaise": 500}, headers={"Idempotency-Key": "r1"})
    assert r.status_code == 200 and r.json() == {"balancePaise": 500}
    assert_books_balance(server)


def test_a_key_reused_for_a_different_request_is_refused_with_422(server):
    user = register_user(server, 20_000)
    astrologer = make_account(server, "astrologer", rate=RATE)
    assert user.post("/api/wallet/recharge", {"amountPaise": 500, "idempotencyKey": "k"}).ok
    for different in (
        lambda: user.post("/api/wallet/recharge", {"amountPaise": 501, "idempotencyKey": "k"}),
        lambda: user.post(
            "/api/wallet/recharge", {"amountPaise": 999}, headers={"Idempotency-Key": "k"}
        ),
    ):
        r = different()
        assert r.status_code == 422, r.text
        assert "Idempotency" in r.json()["error"] and "different request" in r.json()["error"]
    assert wallet_of(user) == 20_500

    session = start_session(user, astrologer)
    end_key = {"Idempotency-Key": "e"}
    first = user.post(f"/api/sessions/{session['id']}/end", headers=end_key)
    assert first.status_code == 200 and first.json()["alreadyEnded"] is False
    again = user.post(f"/api/sessions/{session['id']}/end", headers=end_key)
    assert again.status_code == 200 and again.json() == first.json()
    for path, body in (
        (f"/api/sessions/{session['id']}/end", {"reason": "user_requested"}),  # another body
        ("/api/sessions/end", {"sessionId": session["id"]}),  # another route
    ):
        r = user.post(path, body, headers=end_key)
        assert r.status_code == 422, (path, r.text)
        assert "different request" in r.json()["error"]
    r = user.post("/api/wallet/recharge", {"amountPaise": 500}, headers=end_key)
    assert r.status_code == 422  # an end's key is not a recharge's
    assert wallet_of(user) == 20_500 - first.json()["totalCostPaise"]
    assert settlements_of(server, session["id"]) == 1
    assert_books_balance(server)


def test_concurrent_recharges_with_one_key_credit_once(server):
    user = register_user(server, 0)
    same = run_together(
        [
            lambda: user.post(
                "/api/wallet/recharge", {"amountPaise": 2_500}, headers={"Idempotency-Key": "once"}
            )
        ]
        * 20
    )
    assert [r.status_code for r in same] == [200] * 20
    assert {r.json()["balancePaise"] for r in same} == {2_500}
    assert wallet_of(user) == 2_500

    # The same key with different amounts at once: one is credited, the others refused.
    mixed = run_together(
        [
            lambda n=n: user.post(
                "/api/wallet/recharge", {"amountPaise": 100 + n % 2, "idempotencyKey": "mixed"}
            )
            for n in range(10)
        ]
    )
    won = [r for r in mixed if r.status_code == 200]
    assert {r.status_code for r in mixed} <= {200, 422}
    assert len({r.json()["balancePaise"] for r in won}) == 1
    assert wallet_of(user) in (2_600, 2_601)
    [(recharges,)] = query(
        server,
        "SELECT count(DISTINCT e.transfer_id) FROM entries e JOIN accounts a "
        "ON a.id = e.account_id WHERE a.kind = 'user_wallet' AND a.owner_id = :u",
        u=user.id,
    )
    assert recharges == 2  # twenty-nine requests, two keys: two transfers
    assert_books_balance(server)


def test_concurrent_ends_with_one_key_get_one_answer(server):
    user = make_account(server, "user", balance=10_000)
    astrologer = make_account(server, "astrologer", rate=RATE)
    session = start_session(user, astrologer)
    path = f"/api/sessions/{session['id']}/end"
    answers = run_together([lambda: user.post(path, headers={"Idempotency-Key": "one-end"})] * 12)
    assert {r.status_code for r in answers} == {200}
    bodies = [r.json() for r in answers]
    assert all(b == bodies[0] for b in bodies), sorted(b["alreadyEnded"] for b in bodies)
    assert bodies[0]["alreadyEnded"] is False  # the replays of the first: it settled
    assert settlements_of(server, session["id"]) == 1
    assert_books_balance(server)


# ================================================================ in process: defence in depth


@pytest.fixture
def services_(app):
    return app.extensions["consult"]


def _people(app, services_, balance=100_000):
    from consult import accounts

    n = uuid.uuid4().hex[:8]
    now = utcnow()
    user = accounts.create_user(f"u{n}", "password1", role="user", now=now)
    astrologer = accounts.create_user(
        f"a{n}", "password1", role="astrologer", now=now, rate_paise_per_minute=RATE
    )
    wallet.recharge(user.id, balance, at=now, provider=services_.payments, hub=services_.hub)
    return user, astrologer


def _live(user, astrologer, services_, at):
    c = consultations.request_consultation(
        user, astrologer.id, at=at, hub=services_.hub, policy=services_.policy
    )
    return consultations.accept(astrologer, c.id, at=at, hub=services_.hub).id


class CountingHub:
    def __init__(self):
        self.ended = 0
        self._lock = threading.Lock()

    def publish(self, user_ids, event):
        if event.name == "consult:ended":
            with self._lock:
                self.ended += 1

    def broadcast(self, event):
        pass

    def gone_since(self, user_id):
        return None


def without_the_compare_and_set(monkeypatch):
    """Patch both guards in front of the settlement away: the status check (the consultation
    always loads as active) and the compare-and-set (its UPDATE no longer asks for active).
    Returns counters of how far each ender got."""
    reached = Counter()
    real_locked, real_update, real_post = (
        settlement._locked_row,
        settlement.update,
        ledger.post_transfer,
    )

    def locked_but_always_active(consultation_id):
        row = real_locked(consultation_id)
        if row is not None:  # as if each ender had read it before anyone ended
            row = SimpleNamespace(**{**row._mapping, "status": ACTIVE})
        return row

    class UpdateWithoutStatus:
        def __init__(self, target):
            self.statement, self.target = real_update(target), target

        def where(self, *clauses):
            if self.target is Consultation:
                clauses = [c for c in clauses if "status" not in str(c)]
                reached["cas bypassed"] += 1
            return self.statement.where(*clauses)

    def counting_post(kind, moves, **kw):
        if kind == "settlement":
            reached["settlement attempted"] += 1
        return real_post(kind, moves, **kw)

    monkeypatch.setattr(settlement, "_locked_row", locked_but_always_active)
    monkeypatch.setattr(settlement, "update", UpdateWithoutStatus)
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
    hub = CountingHub()
    reached = without_the_compare_and_set(monkeypatch)

    outcomes, errors = _end_from_threads(
        app, session_id, [user, astrologer] * 6, hub, services_.policy, started
    )

    assert errors == []
    # Every ender got past the status check and the (missing) compare-and-set, and tried
    # to post a settlement: only the database's unique constraint was left to stop them.
    assert reached["cas bypassed"] == 12
    assert reached["settlement attempted"] == 12
    assert sorted(outcomes) == [False] + [True] * 11
    assert hub.ended == 1
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
    assert ledger_audit.problems() == []


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
        app, session_id, [user, astrologer] * 2, CountingHub(), services_.policy, started
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
    assert ledger_audit.problems() == []


def test_an_end_retried_with_its_key_after_losing_the_race_replays_its_answer(
    app, services_, monkeypatch
):
    """The user's keyed end found the session active, then the astrologer's end committed
    first, so the user got `alreadyEnded: true`. A retry with the same key must get that
    same answer, not "No active session found to end"."""
    from helpers_inprocess import isolated_client

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
    client = isolated_client(app)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "lost-race"}
    first = client.post("/api/sessions/end", json={}, headers=headers)
    assert first.status_code == 200 and first.get_json()["alreadyEnded"] is True
    assert first.get_json()["reason"] == "astrologer_ended"
    again = client.post("/api/sessions/end", json={}, headers=headers)
    assert (again.status_code, again.get_json()) == (200, first.get_json())
    assert ledger_audit.problems() == []


def test_the_status_check_alone_would_let_a_second_end_through(app, services_, monkeypatch):
    """Why the compare-and-set is there: with only the (patched) status check, a second
    sequential end reaches the settlement and only the database refuses it."""
    user, astrologer = _people(app, services_)
    started = utcnow() - timedelta(minutes=2)
    session_id = _live(user, astrologer, services_, started)
    hub = CountingHub()
    first = consultations.end_session(
        session_id,
        reason="user_requested",
        at=started + timedelta(seconds=30),
        hub=hub,
        policy=services_.policy,
    )
    reached = without_the_compare_and_set(monkeypatch)
    second = consultations.end_session(
        session_id,
        reason="astrologer_ended",
        at=started + timedelta(seconds=90),
        hub=hub,
        policy=services_.policy,
    )
    assert reached["settlement attempted"] == 1
    assert second.already_ended is True
    assert second.consultation.total_cost_paise == first.consultation.total_cost_paise == 3000
    assert second.consultation.end_reason == "user_requested"
    assert hub.ended == 1
    assert ledger_audit.problems() == []
