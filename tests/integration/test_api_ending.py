"""The JSON API's End Session: the whole seconds used, charged once however often and by
whom, reasons only the server gives, idempotency keys; the live bill; the ledger after a
day of sessions."""

from consult import ledger
from consult.clock import utcnow
from helpers.books import assert_books_balance
from helpers.contract import END_FIELDS, NOT_FOUND, conforming, instant, whole_seconds
from helpers.inprocess import (
    RATE,
    balance_of,
    error_of,
    listen,
    make_astrologer,
    make_user,
    request_session,
    session_row,
    settlement_count,
    started_ago,
)

# ---------------------------------------------------------------- ending


def test_ending_without_an_active_session_answers_404(client, alice, guru):
    response = client.post("/api/sessions/end", headers=alice.auth)
    assert response.status_code == 404
    assert response.get_json() == {"error": "No active session found to end"}
    response = client.post("/api/sessions/end", json={}, headers=guru.auth)
    assert response.get_json() == {"error": "No active session found to end"}


def ends_by_body_and_by_path(client, caller, session_id: int) -> tuple:
    """The same end asked for both ways: the id in the body, and in the path."""
    by_body = client.post("/api/sessions/end", json={"sessionId": session_id}, headers=caller.auth)
    by_path = client.post(f"/api/sessions/{session_id}/end", headers=caller.auth)
    return by_body, by_path


def test_a_requested_session_cannot_be_ended(client, alice, guru):
    session_id = request_session(alice, guru)
    for caller in (alice, guru):
        for response in ends_by_body_and_by_path(client, caller, session_id):
            assert response.status_code == 409, caller.role
            assert response.get_json() == {"error": "Session is not active"}
    assert session_row(session_id).status == "requested"


def test_the_user_ends_and_pays_for_the_whole_seconds_used(client, alice, guru):
    session_id = started_ago(alice, guru, 90)
    guru_hears = listen(guru)
    before = utcnow()
    response = client.post("/api/sessions/end", headers=alice.auth)
    after = utcnow()
    assert response.status_code == 200
    body = conforming(response)
    assert body.keys() == END_FIELDS
    assert before <= instant(body["endedAt"]) <= after  # billing stopped at the request
    session = client.get(f"/api/sessions/{session_id}", headers=alice.auth).get_json()
    seconds = whole_seconds(session["startedAt"], body["endedAt"])
    assert 90 <= seconds < 100
    assert body == {
        "sessionId": session_id,
        "reason": "user_requested",
        "endedAt": body["endedAt"],
        "durationSeconds": seconds,
        "totalCostPaise": seconds * RATE // 60,
        "balancePaise": 100_000 - seconds * RATE // 60,
        "alreadyEnded": False,
    }
    assert session["status"] == "ended"
    assert session["endReason"] == "user_requested"
    assert session["endedAt"] == body["endedAt"]
    assert session["durationSeconds"] == seconds
    assert session["totalCostPaise"] == body["totalCostPaise"]
    assert client.get("/api/wallet", headers=alice.auth).get_json() == {
        "balancePaise": body["balancePaise"]
    }
    assert guru_hears.named("session:ended-by-user") == [
        {"sessionId": session_id, "userId": alice.id, "reason": "user_requested"}
    ]
    [ended] = guru_hears.named("consult:ended")
    assert ended["reason"] == "user_requested"
    assert ended["totalCostPaise"] == body["totalCostPaise"]


def test_the_second_end_answers_the_same_figures_and_charges_nothing(client, alice, guru):
    session_id = started_ago(alice, guru, 30)
    alice_hears = listen(alice)
    first = client.post(f"/api/sessions/{session_id}/end", headers=alice.auth).get_json()
    balance = balance_of(alice)
    second = client.post(f"/api/sessions/{session_id}/end", headers=alice.auth)
    assert second.status_code == 200
    assert second.get_json() == {**first, "alreadyEnded": True}
    by_body = client.post("/api/sessions/end", json={"sessionId": session_id}, headers=alice.auth)
    assert by_body.status_code == 200
    assert by_body.get_json() == {**first, "alreadyEnded": True}
    assert balance_of(alice) == balance == 100_000 - first["totalCostPaise"]
    assert settlement_count() == 1
    assert len(alice_hears.named("consult:ended")) == 1
    assert_books_balance()


def test_the_astrologer_ends_with_astrologer_ended_whatever_the_body_says(client, alice, guru):
    session_id = started_ago(alice, guru, 60)
    alice_hears, guru_hears = listen(alice), listen(guru)
    response = client.post(
        f"/api/sessions/{session_id}/end", json={"reason": "user_requested"}, headers=guru.auth
    )
    assert response.status_code == 200
    body = conforming(response)
    assert body.keys() == END_FIELDS
    assert body["reason"] == "astrologer_ended"
    assert body["balancePaise"] is None
    assert body["alreadyEnded"] is False
    assert body["totalCostPaise"] == body["durationSeconds"] * RATE // 60 > 0
    assert balance_of(alice) == 100_000 - body["totalCostPaise"]
    assert [e["reason"] for e in alice_hears.named("consult:ended")] == ["astrologer_ended"]
    assert guru_hears.named("session:ended-by-user") == []
    # The user asking afterwards sees their balance; the astrologer again sees none.
    for_user = client.post(f"/api/sessions/{session_id}/end", headers=alice.auth).get_json()
    assert for_user["balancePaise"] == 100_000 - body["totalCostPaise"]
    assert for_user["reason"] == "astrologer_ended"
    again = client.post(f"/api/sessions/{session_id}/end", headers=guru.auth).get_json()
    assert again == {**body, "alreadyEnded": True}


def test_the_astrologer_ends_the_active_session_without_naming_it(client, alice, guru):
    session_id = started_ago(alice, guru, 5)
    response = client.post("/api/sessions/end", json={"reason": "system_error"}, headers=guru.auth)
    assert response.status_code == 200
    assert response.get_json()["sessionId"] == session_id
    assert response.get_json()["reason"] == "astrologer_ended"
    assert response.get_json()["balancePaise"] is None


def test_a_user_cannot_choose_the_end_reason(client, guru):
    for n, reason in enumerate(["system_error", "insufficient_balance", "astrologer_ended", 7]):
        user = make_user(f"user{n}", balance=10_000)
        session_id = started_ago(user, guru, 5)
        response = client.post(
            "/api/sessions/end", json={"sessionId": session_id, "reason": reason}, headers=user.auth
        )
        assert response.status_code == 200
        assert response.get_json()["reason"] == "user_requested", reason
        assert session_row(session_id).end_reason == "user_requested"


def test_ending_someone_else_s_session_answers_404(client, alice, guru):
    session_id = started_ago(alice, guru, 5)
    bob = make_user("bob", balance=100_000)
    moon = make_astrologer("moon", rate=1000)
    for caller in (bob, moon):
        for response in ends_by_body_and_by_path(client, caller, session_id):
            assert response.status_code == 404, caller.role
            assert response.get_json() == NOT_FOUND
    assert session_row(session_id).status == "active"


def test_ending_a_session_that_does_not_exist_answers_404(client, alice, guru):
    started_ago(alice, guru, 5)
    for session_id in (9999, "abc", 1.5, True):
        response = client.post(
            "/api/sessions/end", json={"sessionId": session_id}, headers=alice.auth
        )
        assert response.status_code == 404, session_id
        assert response.get_json() == NOT_FOUND
    assert client.post("/api/sessions/9999/end", headers=alice.auth).get_json() == NOT_FOUND


def test_an_end_retried_with_the_same_idempotency_key_replays_the_answer(client, alice, guru):
    session_id = started_ago(alice, guru, 20)
    headers = {**alice.auth, "Idempotency-Key": "end-1"}
    first = client.post(f"/api/sessions/{session_id}/end", headers=headers)
    second = client.post(f"/api/sessions/{session_id}/end", headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json()
    assert first.get_json()["alreadyEnded"] is False
    assert settlement_count() == 1


def test_an_end_of_the_active_session_retried_with_its_key_replays_the_answer(client, alice, guru):
    started_ago(alice, guru, 20)
    headers = {**alice.auth, "Idempotency-Key": "end-2"}
    first = client.post("/api/sessions/end", json={}, headers=headers)
    second = client.post("/api/sessions/end", json={}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json()
    assert second.get_json()["alreadyEnded"] is False
    assert settlement_count() == 1
    # Without the key, the same call now finds nothing to end.
    assert client.post("/api/sessions/end", json={}, headers=alice.auth).status_code == 404


def test_an_end_key_reused_for_another_request_answers_422(client, alice, guru):
    session_id = started_ago(alice, guru, 20)
    headers = {**alice.auth, "Idempotency-Key": "end-3"}
    client.post(f"/api/sessions/{session_id}/end", headers=headers)
    response = client.post("/api/wallet/recharge", json={"amountPaise": 100}, headers=headers)
    assert response.status_code == 422
    error_of(response)


def test_admins_cannot_end_sessions(client, alice, guru, boss):
    session_id = started_ago(alice, guru, 5)
    response = client.post(f"/api/sessions/{session_id}/end", headers=boss.auth)
    assert response.status_code in (403, 404)
    assert session_row(session_id).status == "active"


# ---------------------------------------------------------------- billing status


def test_billing_status_shows_the_live_bill_to_both_parties(client, alice, guru):
    session_id = started_ago(alice, guru, 100)
    user_view = client.get("/api/billing/status", headers=alice.auth)
    assert user_view.status_code == 200
    bill = user_view.get_json()
    assert {"sessionId", "elapsedSeconds", "costPaise", "balancePaise", "fundedSecondsLeft"} <= (
        bill.keys()
    )
    assert bill["sessionId"] == session_id
    assert 100 <= bill["elapsedSeconds"] < 110
    assert bill["costPaise"] == bill["elapsedSeconds"] * RATE // 60
    assert bill["balancePaise"] == 100_000 - bill["costPaise"]
    assert bill["fundedSecondsLeft"] == 100_000 * 60 // RATE - bill["elapsedSeconds"]

    astrologer_view = client.get(f"/api/billing/status?sessionId={session_id}", headers=guru.auth)
    assert astrologer_view.status_code == 200
    bill = astrologer_view.get_json()
    assert bill["sessionId"] == session_id
    assert bill["balancePaise"] is None
    assert bill["costPaise"] == bill["elapsedSeconds"] * RATE // 60


def test_billing_status_without_a_live_session_answers_404(client, alice, guru):
    assert client.get("/api/billing/status", headers=alice.auth).status_code == 404
    session_id = started_ago(alice, guru, 5)
    bob = make_user("bob")
    for url, caller in (
        (f"/api/billing/status?sessionId={session_id}", bob),
        ("/api/billing/status?sessionId=nope", alice),
        ("/api/billing/status?sessionId=9999", alice),
    ):
        response = client.get(url, headers=caller.auth)
        assert response.status_code == 404
        error_of(response)
    client.post("/api/sessions/end", headers=alice.auth)
    ended = client.get(f"/api/billing/status?sessionId={session_id}", headers=alice.auth)
    assert ended.status_code == 404


# ---------------------------------------------------------------- the ledger


def test_the_ledger_balances_after_a_day_of_sessions(client, alice, guru):
    bob = make_user("bob")
    moon = make_astrologer("moon", rate=3550)
    key = {"Idempotency-Key": "bob-topup"}
    for _ in range(2):
        client.post(
            "/api/wallet/recharge", json={"amountPaise": 50_000}, headers={**bob.auth, **key}
        )
    client.post("/api/wallet/recharge", json={"amountPaise": 12_345}, headers=alice.auth)

    by_user = started_ago(alice, guru, 125)
    client.post(f"/api/sessions/{by_user}/messages", json={"text": "hi"}, headers=alice.auth)
    first = client.post("/api/sessions/end", headers=alice.auth).get_json()
    client.post(f"/api/sessions/{by_user}/end", headers=guru.auth)  # too late: already ended

    by_astrologer = started_ago(bob, moon, 61)
    second = client.post(f"/api/sessions/{by_astrologer}/end", headers=moon.auth).get_json()

    declined = request_session(bob, guru)
    client.post(f"/api/sessions/{declined}/decline", headers=guru.auth)
    cancelled = request_session(alice, moon)
    client.post(f"/api/sessions/{cancelled}/cancel", headers=alice.auth)

    assert first["totalCostPaise"] > 0 and second["totalCostPaise"] > 0
    assert balance_of(alice) == 112_345 - first["totalCostPaise"] == first["balancePaise"]
    assert balance_of(bob) == 50_000 - second["totalCostPaise"]
    assert settlement_count() == 2
    earned = sum(
        ledger.balance(account)
        for account in (
            ledger.earnings_of(guru.id),
            ledger.earnings_of(moon.id),
            ledger.open_account(ledger.PLATFORM_REVENUE),
        )
    )
    assert earned == first["totalCostPaise"] + second["totalCostPaise"]
    assert_books_balance()
