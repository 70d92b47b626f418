"""The JSON API of API.md, through the Flask test client: statuses, bodies and error texts."""

from datetime import datetime, timedelta

import pytest

from consult import accounts, ledger
from consult.clock import utcnow
from consult.web.security import login_throttle
from helpers import PASSWORD
from helpers.books import assert_books_balance
from helpers.contract import END_FIELDS, SESSION_FIELDS
from helpers.inprocess import (
    accept_session,
    add_money,
    balance_of,
    isolated_client,
    listen,
    live_session,
    login,
    make_admin,
    make_astrologer,
    make_user,
    request_session,
    services,
    session_row,
    settlement_count,
    user_obj,
)

AUTH_REQUIRED = {"error": "Authentication required"}
NOT_FOUND = {"error": "Session not found"}
RATE = 6000  # ₹60 a minute: a rupee a second


@pytest.fixture
def alice(app):
    return make_user("alice", balance=100_000)


@pytest.fixture
def guru(app):
    return make_astrologer("guru", rate=RATE, name="Guru Dev")


def parse(moment: str) -> datetime:
    assert moment.endswith(("Z", "+00:00")), moment
    return datetime.fromisoformat(moment)


def whole_seconds(start: str, end: str) -> int:
    return (parse(end) - parse(start)) // timedelta(seconds=1)


def error_of(response) -> str:
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str), response.data
    return body["error"]


# ---------------------------------------------------------------- auth


def test_token_answers_the_token_and_the_user(client, alice):
    response = client.post("/api/auth/token", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body["token"], str) and body["token"]
    assert body["user"] == {"id": alice.id, "username": "alice", "role": "user"}
    me = client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.get_json() == {"id": alice.id, "username": "alice", "role": "user"}


def test_token_with_bad_credentials_answers_401(client, alice):
    for credentials in (
        {"username": "alice", "password": "wrong-password"},
        {"username": "nobody", "password": PASSWORD},
        {"username": "alice"},
        {"username": 5, "password": PASSWORD},
    ):
        response = client.post("/api/auth/token", json=credentials)
        assert response.status_code == 401, credentials
        assert "token" not in response.get_json()
        error_of(response)


def test_register_creates_a_user_and_answers_201_with_a_token(client, app):
    response = client.post(
        "/api/auth/register",
        json={"username": "newbie", "password": "long-enough", "role": "admin"},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["user"]["username"] == "newbie"
    assert body["user"]["role"] == "user"  # sign-up makes users only, whatever is asked
    me = client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.get_json() == body["user"]
    wallet = client.get("/api/wallet", headers={"Authorization": f"Bearer {body['token']}"})
    assert wallet.get_json() == {"balancePaise": 0}


def test_register_with_a_taken_username_answers_409(client, alice):
    for username in ("alice", "ALICE"):
        response = client.post(
            "/api/auth/register", json={"username": username, "password": "another-password"}
        )
        assert response.status_code == 409, username
        error_of(response)
    # The first account keeps its password.
    token = client.post("/api/auth/token", json={"username": "alice", "password": PASSWORD})
    assert token.status_code == 200


def test_register_with_invalid_input_answers_400(client):
    for body in (
        {},
        {"username": "newbie"},
        {"password": "long-enough"},
        {"username": "newbie", "password": "short"},
        {"username": "x", "password": "long-enough"},
        {"username": "no spaces!", "password": "long-enough"},
        {"username": 42, "password": "long-enough"},
        {"username": "newbie", "password": 12345678},
    ):
        response = client.post("/api/auth/register", json=body)
        assert response.status_code == 400, body
        error_of(response)
    assert (
        client.post("/api/auth/token", json={"username": "newbie", "password": "short"}).status_code
        == 401
    )


def test_tokens_survive_a_restart(client, app, alice):
    token = client.post(
        "/api/auth/token", json={"username": "alice", "password": PASSWORD}
    ).get_json()["token"]
    from consult import create_app
    from consult.db import db

    restarted = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": app.config["DATABASE_URL"],
            "SECRET_KEY": "a-different-secret",
        }
    )
    try:
        response = isolated_client(restarted).get(
            "/api/wallet", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200
        assert response.get_json() == {"balancePaise": 100_000}
    finally:
        with restarted.app_context():
            db.engine.dispose()


def test_an_expired_token_is_refused(client, alice):
    token = accounts.issue_token(
        user_obj(alice), now=utcnow() - timedelta(hours=2), ttl_seconds=3600
    )
    response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.get_json() == AUTH_REQUIRED


def test_the_token_lifetime_is_configurable(client, app, alice):
    app.config["TOKEN_TTL_SECONDS"] = 0  # tokens that are born expired
    response = client.post("/api/auth/token", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    token = response.get_json()["token"]
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


AUTH_ROUTES = [
    ("GET", "/api/me"),
    ("GET", "/api/wallet"),
    ("POST", "/api/wallet/recharge"),
    ("POST", "/api/sessions"),
    ("GET", "/api/sessions"),
    ("GET", "/api/sessions/active"),
    ("GET", "/api/sessions/{id}"),
    ("GET", "/api/sessions/{id}/messages"),
    ("POST", "/api/sessions/{id}/messages"),
    ("POST", "/api/sessions/{id}/accept"),
    ("POST", "/api/sessions/{id}/decline"),
    ("POST", "/api/sessions/{id}/cancel"),
    ("POST", "/api/sessions/end"),
    ("POST", "/api/sessions/{id}/end"),
    ("GET", "/api/billing/status"),
]
BAD_CREDENTIALS = [
    {},
    {"Authorization": "Bearer not-a-real-token"},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQx"},
]


def test_every_protected_route_answers_401_without_a_valid_credential(client, alice, guru):
    session_id = live_session(alice, guru)
    body = {"amountPaise": 100, "astrologerId": guru.id, "text": "hi", "sessionId": session_id}
    wrong = []
    for method, path in AUTH_ROUTES:
        url = path.format(id=session_id)
        for headers in BAD_CREDENTIALS:
            response = client.open(url, method=method, headers=headers, json=body)
            if response.status_code != 401 or response.get_json() != AUTH_REQUIRED:
                wrong.append((method, url, headers, response.status_code, response.data))
    assert wrong == []
    # ...and nothing happened on the way.
    assert balance_of(alice) == 100_000
    assert session_row(session_id).status == "active"
    assert client.get("/api/sessions/active", headers=alice.auth).status_code == 200


def test_too_many_bad_sign_ins_answer_429_with_retry_after(client, app):
    victim = make_user("throttled-person", token=False)
    login_throttle.reset("127.0.0.1", victim.username)  # the throttle outlives one app
    limit = app.config["LOGIN_ATTEMPTS_PER_WINDOW"]
    for _ in range(limit):
        response = client.post(
            "/api/auth/token", json={"username": victim.username, "password": "guess-guess"}
        )
        assert response.status_code == 401
    response = client.post(
        "/api/auth/token", json={"username": victim.username, "password": "guess-guess"}
    )
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    error_of(response)
    # While throttled, even the right password is not tried.
    right = client.post("/api/auth/token", json={"username": victim.username, "password": PASSWORD})
    assert right.status_code == 429


def test_a_signed_in_browser_needs_the_csrf_token_for_api_posts(client, alice):
    _, csrf = login(client, alice)
    assert client.get("/api/me").get_json()["id"] == alice.id
    refused = client.post("/api/wallet/recharge", json={"amountPaise": 500})
    assert refused.status_code == 400
    error_of(refused)
    assert balance_of(alice) == 100_000
    accepted = client.post(
        "/api/wallet/recharge", json={"amountPaise": 500}, headers={"X-CSRF-Token": csrf}
    )
    assert accepted.status_code == 200
    assert accepted.get_json() == {"balancePaise": 100_500}


def test_a_bearer_request_needs_no_csrf_token_even_with_a_cookie(client, alice):
    login(client, alice)
    response = client.post("/api/wallet/recharge", json={"amountPaise": 500}, headers=alice.auth)
    assert response.status_code == 200
    assert response.get_json() == {"balancePaise": 100_500}


# ---------------------------------------------------------------- astrologers and wallet


def test_astrologers_are_listed_to_anyone_with_their_rates(client, alice, guru):
    other = make_astrologer("moon", rate=3550, name="Moon Reader")
    make_admin("boss")
    response = client.get("/api/astrologers")
    assert response.status_code == 200
    listed = response.get_json()
    assert [a["id"] for a in listed] == [guru.id, other.id]
    for entry, who, rate in ((listed[0], guru, RATE), (listed[1], other, 3550)):
        assert {"id", "username", "name", "ratePaisePerMinute", "online"} <= entry.keys()
        assert entry["username"] == who.username
        assert entry["name"] == who.name
        assert entry["ratePaisePerMinute"] == rate
        assert entry["online"] is False  # nobody has a socket open
    signed_in = client.get("/api/astrologers", headers=alice.auth)
    assert signed_in.get_json() == listed


def test_online_follows_the_astrologer_s_connections(client, guru):
    listener = listen(guru)
    assert client.get("/api/astrologers").get_json()[0]["online"] is True
    services().hub.detach(listener)
    assert client.get("/api/astrologers").get_json()[0]["online"] is False


def test_wallet_shows_the_balance(client, alice):
    response = client.get("/api/wallet", headers=alice.auth)
    assert response.status_code == 200
    assert response.get_json() == {"balancePaise": 100_000}


def test_only_users_have_a_wallet(client, guru):
    assert client.get("/api/wallet", headers=guru.auth).status_code == 403
    response = client.post("/api/wallet/recharge", json={"amountPaise": 100}, headers=guru.auth)
    assert response.status_code == 403


def test_recharge_adds_to_the_balance(client, alice):
    response = client.post("/api/wallet/recharge", json={"amountPaise": 2_550}, headers=alice.auth)
    assert response.status_code == 200
    assert response.get_json() == {"balancePaise": 102_550}
    assert client.get("/api/wallet", headers=alice.auth).get_json() == {"balancePaise": 102_550}


def test_recharge_refuses_an_amount_that_is_not_a_positive_whole_number(client, alice):
    for body in [{"amountPaise": a} for a in (0, -100, 1.5, 100.0, "100", True, None, [100])] + [
        {}
    ]:
        response = client.post("/api/wallet/recharge", json=body, headers=alice.auth)
        assert response.status_code == 400, body
        error_of(response)
    assert balance_of(alice) == 100_000


def test_recharge_retried_with_the_same_idempotency_header_credits_once(client, alice):
    headers = {**alice.auth, "Idempotency-Key": "pay-1"}
    first = client.post("/api/wallet/recharge", json={"amountPaise": 1_000}, headers=headers)
    add_money(alice.id, 5)  # the balance moves meanwhile; the replay still answers the first
    second = client.post("/api/wallet/recharge", json={"amountPaise": 1_000}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json() == {"balancePaise": 101_000}
    assert balance_of(alice) == 101_005


def test_recharge_retried_with_the_same_idempotency_field_credits_once(client, alice):
    body = {"amountPaise": 1_000, "idempotencyKey": "pay-2"}
    first = client.post("/api/wallet/recharge", json=body, headers=alice.auth)
    second = client.post("/api/wallet/recharge", json=body, headers=alice.auth)
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json() == {"balancePaise": 101_000}
    assert balance_of(alice) == 101_000


def test_recharge_key_reused_for_another_amount_answers_422(client, alice):
    headers = {**alice.auth, "Idempotency-Key": "pay-3"}
    client.post("/api/wallet/recharge", json={"amountPaise": 1_000}, headers=headers)
    response = client.post("/api/wallet/recharge", json={"amountPaise": 2_000}, headers=headers)
    assert response.status_code == 422
    error_of(response)
    assert balance_of(alice) == 101_000


def test_recharge_keys_belong_to_their_user(client, alice):
    bob = make_user("bob")
    headers = {"Idempotency-Key": "shared-key"}
    client.post(
        "/api/wallet/recharge", json={"amountPaise": 1_000}, headers={**alice.auth, **headers}
    )
    response = client.post(
        "/api/wallet/recharge", json={"amountPaise": 700}, headers={**bob.auth, **headers}
    )
    assert response.status_code == 200
    assert response.get_json() == {"balancePaise": 700}


# ---------------------------------------------------------------- requesting


def test_a_user_requests_a_session_and_gets_201_requested(client, alice, guru):
    response = client.post("/api/sessions", json={"astrologerId": guru.id}, headers=alice.auth)
    assert response.status_code == 201
    session = response.get_json()
    assert session.keys() >= SESSION_FIELDS
    assert session["userId"] == alice.id
    assert session["astrologerId"] == guru.id
    assert session["astrologerName"] == "Guru Dev"
    assert session["status"] == "requested"
    assert session["ratePaisePerMinute"] == RATE
    assert isinstance(session["id"], int)
    parse(session["requestedAt"])
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


def test_astrologers_and_admins_cannot_request_sessions(client, guru):
    other = make_astrologer("moon", rate=1000)
    admin = make_admin("boss")
    for caller in (guru, admin):
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
    session = response.get_json()
    assert session.keys() >= SESSION_FIELDS
    assert session["status"] == "active"
    assert parse(session["startedAt"]) >= parse(session["requestedAt"])
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


def test_parties_and_admins_read_a_session_and_its_messages(client, alice, guru):
    session_id = live_session(alice, guru)
    client.post(f"/api/sessions/{session_id}/messages", json={"text": "hello"}, headers=alice.auth)
    admin = make_admin("boss")
    for caller in (alice, guru, admin):
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


# ---------------------------------------------------------------- chat


def test_both_parties_post_messages_and_both_hear_them(client, alice, guru):
    session_id = live_session(alice, guru)
    alice_hears, guru_hears = listen(alice), listen(guru)
    first = client.post(
        f"/api/sessions/{session_id}/messages", json={"text": "Namaste"}, headers=alice.auth
    )
    second = client.post(
        f"/api/sessions/{session_id}/messages", json={"text": "Hello"}, headers=guru.auth
    )
    assert first.status_code == second.status_code == 201
    message = first.get_json()
    assert {"id", "senderId", "text", "sentAt"} <= message.keys()
    assert message["senderId"] == alice.id
    assert message["text"] == "Namaste"
    parse(message["sentAt"])
    assert second.get_json()["senderId"] == guru.id
    history = client.get(f"/api/sessions/{session_id}/messages", headers=alice.auth).get_json()
    assert [(m["senderId"], m["text"]) for m in history] == [
        (alice.id, "Namaste"),
        (guru.id, "Hello"),
    ]
    for hears in (alice_hears, guru_hears):
        assert [m["text"] for m in hears.named("chat:message")] == ["Namaste", "Hello"]
        assert hears.named("chat:message")[0]["sessionId"] == session_id


def test_a_message_of_exactly_2000_characters_is_accepted(client, alice, guru):
    session_id = live_session(alice, guru)
    response = client.post(
        f"/api/sessions/{session_id}/messages", json={"text": "a" * 2000}, headers=alice.auth
    )
    assert response.status_code == 201
    assert len(response.get_json()["text"]) == 2000


def test_a_message_that_is_not_1_to_2000_characters_answers_400(client, alice, guru):
    session_id = live_session(alice, guru)
    bodies = [{"text": t} for t in ("", "a" * 2001, 5, None, ["hi"], {"text": "hi"}, True)]
    for body in bodies + [{}]:
        for caller in (alice, guru):
            response = client.post(
                f"/api/sessions/{session_id}/messages", json=body, headers=caller.auth
            )
            assert response.status_code == 400, body
            error_of(response)
    assert client.get(f"/api/sessions/{session_id}/messages", headers=alice.auth).get_json() == []


def test_messages_wait_until_the_session_is_accepted(client, alice, guru):
    session_id = request_session(alice, guru)
    for caller in (alice, guru):
        response = client.post(
            f"/api/sessions/{session_id}/messages", json={"text": "hi"}, headers=caller.auth
        )
        assert response.status_code == 409
        assert response.get_json() == {"error": "Session is not active"}


def test_messages_are_refused_once_the_session_is_over(client, alice, guru):
    ended = live_session(alice, guru)
    assert client.post(f"/api/sessions/{ended}/end", headers=alice.auth).status_code == 200
    declined = request_session(alice, guru)
    assert client.post(f"/api/sessions/{declined}/decline", headers=guru.auth).status_code == 200
    cancelled = request_session(alice, guru)
    assert client.post(f"/api/sessions/{cancelled}/cancel", headers=alice.auth).status_code == 200
    for session_id in (ended, declined, cancelled):
        for caller in (alice, guru):
            response = client.post(
                f"/api/sessions/{session_id}/messages",
                json={"text": "still there?"},
                headers=caller.auth,
            )
            assert response.status_code == 409, session_row(session_id).status
            assert response.get_json() == {"error": "Session has ended"}


def test_strangers_and_admins_cannot_post_messages(client, alice, guru):
    session_id = live_session(alice, guru)
    bob = make_user("bob")
    response = client.post(
        f"/api/sessions/{session_id}/messages", json={"text": "hi"}, headers=bob.auth
    )
    assert response.status_code == 404
    assert response.get_json() == NOT_FOUND
    admin = make_admin("boss")
    response = client.post(
        f"/api/sessions/{session_id}/messages", json={"text": "hi"}, headers=admin.auth
    )
    assert response.status_code in (403, 404)
    assert client.get(f"/api/sessions/{session_id}/messages", headers=alice.auth).get_json() == []


# ---------------------------------------------------------------- ending


def started_ago(alice, guru, seconds: int = 90) -> int:
    """A live session whose billing started `seconds` ago."""
    return live_session(alice, guru, started_at=utcnow() - timedelta(seconds=seconds))


def test_ending_without_an_active_session_answers_404(client, alice, guru):
    response = client.post("/api/sessions/end", headers=alice.auth)
    assert response.status_code == 404
    assert response.get_json() == {"error": "No active session found to end"}
    response = client.post("/api/sessions/end", json={}, headers=guru.auth)
    assert response.get_json() == {"error": "No active session found to end"}


def test_a_requested_session_cannot_be_ended(client, alice, guru):
    session_id = request_session(alice, guru)
    for caller in (alice, guru):
        by_body = client.post(
            "/api/sessions/end", json={"sessionId": session_id}, headers=caller.auth
        )
        by_path = client.post(f"/api/sessions/{session_id}/end", headers=caller.auth)
        for response in (by_body, by_path):
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
    body = response.get_json()
    assert body.keys() == END_FIELDS
    assert before <= parse(body["endedAt"]) <= after  # billing stopped at the request
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
    body = response.get_json()
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
        by_body = client.post(
            "/api/sessions/end", json={"sessionId": session_id}, headers=caller.auth
        )
        by_path = client.post(f"/api/sessions/{session_id}/end", headers=caller.auth)
        for response in (by_body, by_path):
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


def test_admins_cannot_end_sessions(client, alice, guru):
    session_id = started_ago(alice, guru, 5)
    admin = make_admin("boss")
    response = client.post(f"/api/sessions/{session_id}/end", headers=admin.auth)
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


# ---------------------------------------------------------------- bodies


BODY_ROUTES = [
    ("/api/auth/token", None),
    ("/api/auth/register", None),
    ("/api/wallet/recharge", "alice"),
    ("/api/sessions", "alice"),
    ("/api/sessions/{id}/messages", "alice"),
    ("/api/sessions/end", "alice"),
    ("/api/sessions/{id}/end", "guru"),
]


def test_a_body_that_is_not_a_json_object_answers_400(client, alice, guru):
    session_id = started_ago(alice, guru, 5)
    wrong = []
    for path, who in BODY_ROUTES:
        headers = {"alice": alice.auth, "guru": guru.auth}.get(who, {})
        for raw in ("[]", '"text"', "42", "null", "{not json", "true", "[{}]"):
            response = client.post(
                path.format(id=session_id),
                data=raw,
                content_type="application/json",
                headers=headers,
            )
            body = response.get_json(silent=True)
            if response.status_code != 400 or not isinstance(body, dict) or "error" not in body:
                wrong.append((path, raw, response.status_code, response.data))
    assert wrong == []
    assert session_row(session_id).status == "active"
    assert balance_of(alice) == 100_000


def test_a_body_over_64_kib_answers_413_in_json(client, alice, guru):
    session_id = started_ago(alice, guru, 5)
    body = {"text": "x" * (64 * 1024), "amountPaise": 100, "username": "alice"}
    wrong = []
    for path, who in BODY_ROUTES:
        headers = {"alice": alice.auth, "guru": guru.auth}.get(who, {})
        response = client.post(path.format(id=session_id), json=body, headers=headers)
        if response.status_code != 413 or not response.is_json or "error" not in response.json:
            wrong.append((path, response.status_code, response.data[:200]))
    assert wrong == []
    assert session_row(session_id).status == "active"
    assert balance_of(alice) == 100_000


def test_a_body_over_64_kib_answers_413_where_the_body_is_not_used(client, alice, guru):
    wrong = []
    for action, caller in (("accept", guru), ("decline", guru), ("cancel", alice)):
        session_id = request_session(alice, guru)
        response = client.post(
            f"/api/sessions/{session_id}/{action}",
            data="x" * (65 * 1024),
            content_type="application/json",
            headers=caller.auth,
        )
        if response.status_code != 413:
            wrong.append((action, response.status_code))
        if session_row(session_id).status == "requested":
            client.post(f"/api/sessions/{session_id}/cancel", headers=alice.auth)
        elif session_row(session_id).status == "active":
            client.post(f"/api/sessions/{session_id}/end", headers=alice.auth)
    assert wrong == []


def test_a_body_of_exactly_64_kib_is_accepted(client, alice, guru):
    session_id = started_ago(alice, guru, 5)
    padding = 64 * 1024 - len('{"text": "hi", "pad": ""}')
    raw = '{"text": "hi", "pad": "' + "x" * padding + '"}'
    assert len(raw) == 64 * 1024
    response = client.post(
        f"/api/sessions/{session_id}/messages",
        data=raw,
        content_type="application/json",
        headers=alice.auth,
    )
    assert response.status_code == 201


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
