"""The JSON API's sign-in: tokens, sign-up, credentials refused, the login throttle, and
CSRF for a signed-in browser (consult/openapi.json, securitySchemes)."""

from datetime import timedelta

from sqlalchemy import select

from consult import accounts
from consult.clock import utcnow
from consult.db import db
from helpers import PASSWORD
from helpers.contract import AUTH_REQUIRED
from helpers.inprocess import (
    balance_of,
    csrf_of,
    error_of,
    isolated_client,
    live_session,
    login,
    make_user,
    session_row,
    user_obj,
)


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


def test_sign_up_refuses_an_easy_password_with_the_reason_and_makes_no_account(client, app):
    for password, reason in (
        ("12345678", "That password is one of the most common; please choose another"),
        (" " * 8, "Password cannot be only spaces"),
        ("newbie-2026", "Password cannot contain the username"),
    ):
        r = client.post("/api/auth/register", json={"username": "newbie", "password": password})
        assert (r.status_code, error_of(r)) == (400, reason)
    db.session.rollback()
    assert (
        db.session.scalar(select(accounts.User).where(accounts.User.username == "newbie")) is None
    )
    # The page's sign-up form says the same.
    page = client.get("/register")
    assert page.status_code == 200
    r = client.post(
        "/register",
        data={"username": "newbie", "password": "password1", "csrf_token": csrf_of(client)},
    )
    assert r.status_code == 400 and "one of the most common" in r.get_data(as_text=True)


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
