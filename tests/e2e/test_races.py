"""Races and retries against a real server subprocess (its own database per module): many
hands on one session, recharges racing ends and the funded end, idempotency keys. (The
guards themselves, patched away in process: integration/test_race_guards.py.)
"""

import uuid
from collections import Counter, defaultdict

from helpers.books import assert_books_balance, ended_events_of, query, settlements_of
from helpers.server import (
    PlainBrowser,
    make_account,
    register_user,
    run_together,
    start_session,
    wait_until,
)
from helpers.sockets import delivered

RATE = 6000  # a rupee a second


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
    page = PlainBrowser(server).sign_in(user.user["username"])
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
    delivered(server, user_ws, user_tab, astro_ws)
    for ws in (user_ws, user_tab, astro_ws):
        assert ws.count("consult:ended") == 0
    by_user = astro_ws.count("session:ended-by-user")
    assert by_user == (1 if settled["endReason"] == "user_requested" else 0)
    assert settlements_of(server, sid) == 1
    assert ended_events_of(server, sid) == 1

    for key, api in (("K-user", user), ("K-astro", astrologer)):  # a later retry: the same
        again = api.post(f"/api/sessions/{sid}/end", headers={"Idempotency-Key": key})
        assert again.status_code == 200 and again.json() == by_group[key][0]
    for ws in (user_ws, user_tab, astro_ws):
        ws.close()
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
