"""The JSON API's sessions: requesting, answering (accept, decline, cancel) and reading them,
through the Flask test client: statuses, bodies and error texts."""

from datetime import timedelta

from consult.clock import utcnow
from helpers.contract import NOT_FOUND, SESSION_FIELDS, conforming, instant
from helpers.inprocess import (
    RATE,
    accept_session,
    add_money,
    balance_of,
    error_of,
    live_session,
    make_astrologer,
    make_user,
    request_session,
    session_row,
)

# ---------------------------------------------------------------- requesting


def test_a_user_requests_a_session_and_gets_201_requested(client, alice, guru):
    response = client.post("/api/sessions", json={"astrologerId": guru.id}, headers=alice.auth)
    assert response.status_code == 201
    session = conforming(response)
    assert session.keys() >= SESSION_FIELDS
    assert session["userId"] == alice.id
    assert session["astrologerId"] == guru.id
    assert session["astrologerName"] == "Guru Dev"
    assert session["status"] == "requested"
    assert session["ratePaisePerMinute"] == RATE
    assert isinstance(session["id"], int)
    instant(session["requestedAt"])
    for unknown in ("startedAt", "endedAt", "endReason", "durationSeconds", "totalCostPaise"):
        assert session[unknown] is None
    assert balance_of(alice) == 100_000  # asking costs nothing


def test_request_needs_a_balance_of_one_minute(client, guru):
    poor = make_user("poor", balance=RATE - 1)
    response = client.post("/api/sessions", json={"astrologerId": guru.id}, headers=poor.auth)
    assert response.status_code == 402
    error_of(response)
    assert client.get("/api/sessions", headers=poor.auth).get_json() == []
    add_money(poor.id, 1)  # exactly one minute is enough
    response = client.post("/api/sessions", json={"astrologerId": guru.id}, headers=poor.auth)
    assert response.status_code == 201


def test_a_second_live_session_answers_409(client, alice, guru):
    other = make_astrologer("moon", rate=1000)
    first = client.post("/api/sessions", json={"astrologerId": guru.id}, headers=alice.auth)
    again = client.post("/api/sessions", json={"astrologerId": other.id}, headers=alice.auth)
    assert again.status_code == 409
    error_of(again)
    accept_session(guru, first.get_json()["id"])
    while_active = client.post("/api/sessions", json={"astrologerId": other.id}, headers=alice.auth)
    assert while_active.status_code == 409
    assert len(client.get("/api/sessions", headers=alice.auth).get_json()) == 1


def test_requesting_an_unknown_astrologer_answers_404(client, alice):
    for astrologer_id in (9999, alice.id, "1", None):
        response = client.post(
            "/api/sessions", json={"astrologerId": astrologer_id}, headers=alice.auth
        )
        assert response.status_code == 404, astrologer_id
        error_of(response)
    assert client.get("/api/sessions", headers=alice.auth).get_json() == []


def test_astrologers_and_admins_cannot_request_sessions(client, guru, boss):
    other = make_astrologer("moon", rate=1000)
    for caller in (guru, boss):
        response = client.post(
            "/api/sessions", json={"astrologerId": other.id}, headers=caller.auth
        )
        assert response.status_code == 403
        error_of(response)
    assert client.get("/api/sessions", headers=other.auth).get_json() == []


# ---------------------------------------------------------------- answering


def test_the_astrologer_accepts_and_billing_starts(client, alice, guru):
    session_id = request_session(alice, guru)
    response = client.post(f"/api/sessions/{session_id}/accept", headers=guru.auth)
    assert response.status_code == 200
    session = conforming(response)
    assert session.keys() >= SESSION_FIELDS
    assert session["status"] == "active"
    assert instant(session["startedAt"]) >= instant(session["requestedAt"])
    assert session["endedAt"] is None


def test_the_astrologer_declines(client, alice, guru):
    session_id = request_session(alice, guru)
    response = client.post(f"/api/sessions/{session_id}/decline", headers=guru.auth)
    assert response.status_code == 200
    assert response.get_json()["status"] == "declined"
    assert response.get_json()["startedAt"] is None
    assert balance_of(alice) == 100_000


def test_the_user_cancels_while_requested(client, alice, guru):
    session_id = request_session(alice, guru)
    response = client.post(f"/api/sessions/{session_id}/cancel", headers=alice.auth)
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    # A new request is possible again.
    again = client.post("/api/sessions", json={"astrologerId": guru.id}, headers=alice.auth)
    assert again.status_code == 201


def test_another_astrologer_cannot_answer_the_request(client, alice, guru):
    other = make_astrologer("moon", rate=1000)
    session_id = request_session(alice, guru)
    for action in ("accept", "decline"):
        response = client.post(f"/api/sessions/{session_id}/{action}", headers=other.auth)
        assert response.status_code == 404, action
        assert response.get_json() == NOT_FOUND
    assert session_row(session_id).status == "requested"


def test_another_user_cannot_cancel_the_request(client, alice, guru):
    bob = make_user("bob")
    session_id = request_session(alice, guru)
    response = client.post(f"/api/sessions/{session_id}/cancel", headers=bob.auth)
    assert response.status_code == 404
    assert response.get_json() == NOT_FOUND
    assert session_row(session_id).status == "requested"


def test_answering_an_unknown_session_answers_404(client, alice, guru):
    for action, caller in (("accept", guru), ("decline", guru), ("cancel", alice)):
        response = client.post(f"/api/sessions/9999/{action}", headers=caller.auth)
        assert response.status_code == 404, action
        assert response.get_json() == NOT_FOUND


def test_answering_a_session_no_longer_waiting_answers_409(client, guru):
    cases = [
        ("accept", "accept"),
        ("accept", "decline"),
        ("accept", "cancel"),
        ("decline", "accept"),
        ("decline", "cancel"),
        ("cancel", "accept"),
        ("cancel", "cancel"),
    ]
    for n, (first, then) in enumerate(cases):
        user = make_user(f"user{n}", balance=10_000)
        by = {"accept": guru, "decline": guru, "cancel": user}
        session_id = request_session(user, guru)
        answered = client.post(f"/api/sessions/{session_id}/{first}", headers=by[first].auth)
        assert answered.status_code == 200
        status = session_row(session_id).status
        response = client.post(f"/api/sessions/{session_id}/{then}", headers=by[then].auth)
        assert response.status_code == 409, (first, then)
        error_of(response)
        assert session_row(session_id).status == status


def test_the_wrong_role_cannot_answer(client, alice, guru):
    session_id = request_session(alice, guru)
    assert client.post(f"/api/sessions/{session_id}/accept", headers=alice.auth).status_code == 403
    assert client.post(f"/api/sessions/{session_id}/cancel", headers=guru.auth).status_code == 403
    assert session_row(session_id).status == "requested"


# ---------------------------------------------------------------- reading sessions


def test_sessions_are_listed_newest_first_and_filter_by_status(client, alice, guru):
    bob = make_user("bob", balance=100_000)
    cancelled = request_session(alice, guru)
    client.post(f"/api/sessions/{cancelled}/cancel", headers=alice.auth)
    declined = request_session(alice, guru)
    client.post(f"/api/sessions/{declined}/decline", headers=guru.auth)
    waiting = request_session(alice, guru)
    bobs = request_session(bob, guru)

    mine = client.get("/api/sessions", headers=alice.auth).get_json()
    assert [s["id"] for s in mine] == [waiting, declined, cancelled]
    assert [s["status"] for s in mine] == ["requested", "declined", "cancelled"]
    assert all(s.keys() >= SESSION_FIELDS for s in mine)

    only = client.get("/api/sessions?status=declined", headers=alice.auth).get_json()
    assert [s["id"] for s in only] == [declined]
    assert client.get("/api/sessions?status=ended", headers=alice.auth).get_json() == []

    desk = client.get("/api/sessions", headers=guru.auth).get_json()
    assert [s["id"] for s in desk] == [bobs, waiting, declined, cancelled]
    requested = client.get("/api/sessions?status=requested", headers=guru.auth).get_json()
    assert [s["id"] for s in requested] == [bobs, waiting]


def test_no_active_session_answers_404(client, alice, guru):
    request_session(alice, guru)  # requested is not active
    for caller in (alice, guru):
        response = client.get("/api/sessions/active", headers=caller.auth)
        assert response.status_code == 404
        assert response.get_json() == {"error": "No active session found"}


def test_the_active_session_is_found_by_both_parties(client, alice, guru):
    session_id = live_session(alice, guru)
    for caller in (alice, guru):
        response = client.get("/api/sessions/active", headers=caller.auth)
        assert response.status_code == 200
        assert response.get_json()["id"] == session_id
        assert response.get_json()["status"] == "active"


def test_an_astrologer_with_several_gets_the_most_recently_accepted(client, alice, guru):
    bob = make_user("bob", balance=100_000)
    now = utcnow()
    older_request = request_session(alice, guru, at=now - timedelta(seconds=60))
    newer_request = request_session(bob, guru, at=now - timedelta(seconds=30))
    accept_session(guru, newer_request, at=now - timedelta(seconds=10))
    accept_session(guru, older_request, at=now - timedelta(seconds=5))
    response = client.get("/api/sessions/active", headers=guru.auth)
    assert response.get_json()["id"] == older_request


def test_parties_and_admins_read_a_session_and_its_messages(client, alice, guru, boss):
    session_id = live_session(alice, guru)
    client.post(f"/api/sessions/{session_id}/messages", json={"text": "hello"}, headers=alice.auth)
    for caller in (alice, guru, boss):
        session = client.get(f"/api/sessions/{session_id}", headers=caller.auth)
        assert session.status_code == 200
        assert session.get_json()["id"] == session_id
        assert session.get_json().keys() >= SESSION_FIELDS
        messages = client.get(f"/api/sessions/{session_id}/messages", headers=caller.auth)
        assert messages.status_code == 200
        assert [m["text"] for m in messages.get_json()] == ["hello"]


def test_strangers_cannot_read_a_session_or_its_messages(client, alice, guru):
    session_id = live_session(alice, guru)
    bob = make_user("bob")
    moon = make_astrologer("moon", rate=1000)
    for caller in (bob, moon):
        for url in (f"/api/sessions/{session_id}", f"/api/sessions/{session_id}/messages"):
            response = client.get(url, headers=caller.auth)
            assert response.status_code == 404
            assert response.get_json() == NOT_FOUND
    for url in ("/api/sessions/9999", "/api/sessions/9999/messages"):
        assert client.get(url, headers=alice.auth).get_json() == NOT_FOUND
