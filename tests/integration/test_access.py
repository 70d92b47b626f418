"""Who may touch which session, over REST and on the pages; the reasons only the server
may give; and the rate limits (sign-ins yes, End never). (Over the socket:
e2e/test_security_server.py.)"""

import pytest
from sqlalchemy import func, select

from consult import chat, consultations
from consult.db import db
from helpers import PASSWORD
from helpers.inprocess import (
    csrf_of,
    login,
    make_admin,
    make_astrologer,
    make_user,
    pair_with_session,
    session_row,
    whoami,
)
from helpers.server import (
    unique,
)

SERVER_REASONS = (
    "system_error",
    "insufficient_balance",
    "user_disconnected",
    "astrologer_disconnected",
)


# ---------------------------------------------------------------- who may touch a session

ACTORS = ("user", "other_user", "astrologer", "other_astrologer", "admin", "anonymous")


@pytest.fixture
def outsiders(app):
    n = unique("")
    return {
        "other_user": make_user(f"o{n}", balance=100_000),
        "other_astrologer": make_astrologer(f"x{n}"),
        "admin": make_admin(f"ad{n}"),
    }


def footprint(session_id: int, user) -> tuple:
    """What a refused request must leave as it was: the session, its chat, the wallet."""
    c = session_row(session_id)
    messages = db.session.scalar(
        select(func.count()).select_from(chat.Message).where(chat.Message.consultation_id == c.id)
    )
    return c.status, c.ended_at, c.end_reason, messages, consultations.wallet_balance(user.id)


# (method, path, session state, JSON body, {actor: status}); anyone not named gets the default.
API_MATRIX = [
    ("GET", "/api/sessions/{id}", "active", None, {"user": 200, "astrologer": 200, "admin": 200}),
    ("GET", "/api/sessions/{id}/summary", "ended", None,
     {"user": 200, "astrologer": 200, "admin": 200}),
    ("GET", "/api/sessions/{id}/messages", "active", None,
     {"user": 200, "astrologer": 200, "admin": 200}),
    ("POST", "/api/sessions/{id}/messages", "active", {"text": "hi"},
     {"user": 201, "astrologer": 201, "admin": 403}),
    ("POST", "/api/sessions/{id}/accept", "requested", {},
     {"astrologer": 200, "user": 403, "other_user": 403, "admin": 403}),
    ("POST", "/api/sessions/{id}/decline", "requested", {},
     {"astrologer": 200, "user": 403, "other_user": 403, "admin": 403}),
    ("POST", "/api/sessions/{id}/cancel", "requested", {},
     {"user": 200, "astrologer": 403, "other_astrologer": 403, "admin": 403}),
    ("POST", "/api/sessions/{id}/end", "active", {},
     {"user": 200, "astrologer": 200, "admin": 403}),
    ("POST", "/api/sessions/end", "active", {"sessionId": "{id}"},
     {"user": 200, "astrologer": 200, "admin": 403}),
    ("GET", "/api/billing/status?sessionId={id}", "active", None,
     {"user": 200, "astrologer": 200, "admin": 403}),
]  # fmt: skip

# Pages answer anonymous browsers with the sign-in page (302) and strangers with 404.
PAGE_MATRIX = [
    ("GET", "/sessions/{id}", "active", None, {"user": 200, "astrologer": 200, "admin": 200}),
    ("GET", "/sessions/{id}/billing", "active", None,
     {"user": 200, "astrologer": 200, "admin": 200}),
    ("GET", "/sessions/{id}/end/confirm", "active", None, {"user": 200, "astrologer": 200}),
    ("GET", "/sessions/{id}/summary", "ended", None,
     {"user": 200, "astrologer": 200, "admin": 200}),
    ("POST", "/sessions/{id}/end", "active", {}, {"user": 302, "astrologer": 302}),
    ("POST", "/sessions/{id}/cancel", "requested", {}, {"user": 302}),
    ("POST", "/sessions/{id}/accept", "requested", {},
     {"astrologer": 302, "user": 403, "other_user": 403, "admin": 403}),
    ("POST", "/sessions/{id}/decline", "requested", {},
     {"astrologer": 302, "user": 403, "other_user": 403, "admin": 403}),
    ("POST", "/sessions/{id}/messages", "active", {"text": "hi"},
     {"user": 302, "astrologer": 302}),
    ("GET", "/admin/sessions/{id}", "active", None, {"admin": 200}),
]  # fmt: skip


def _fill(template, session_id):
    if isinstance(template, str):
        return int(session_id) if template == "{id}" else template.replace("{id}", str(session_id))
    if isinstance(template, dict):
        return {k: _fill(v, session_id) for k, v in template.items()}
    return template


def refusals_first(allowed: dict) -> list[str]:
    """The actors in an order that lets one session serve until someone may change it."""
    return sorted(ACTORS, key=lambda actor: actor in allowed and allowed[actor] < 400)


def test_rest_routes_answer_only_the_sessions_own_parties(app, client, outsiders):
    refused = 0
    for method, path, state, body, allowed in API_MATRIX:
        pair = None
        for actor in refusals_first(allowed):
            if pair is None:  # a fresh session whenever the last one may have changed
                pair = pair_with_session(state)
            user, astrologer, session_id = pair
            people = {"user": user, "astrologer": astrologer, **outsiders}
            headers = people[actor].auth if actor in people else {}
            before = footprint(session_id, user)
            url = _fill(path, session_id)
            if method == "GET":
                r = client.get(url, headers=headers)
            else:
                r = client.post(url, json=_fill(body, session_id), headers=headers)
            default = 401 if actor == "anonymous" else 404
            expected = allowed.get(actor, default)
            assert r.status_code == expected, (method, path, actor, r.status_code, r.get_json())
            if expected == 404:
                assert r.get_json() == {"error": "Session not found"}, (path, actor)
            if expected >= 400:
                refused += 1
                assert footprint(session_id, user) == before, (method, path, actor)
            elif method != "GET":
                pair = None
    assert refused >= 40


def test_lists_and_the_active_session_show_a_session_only_to_its_parties(client, outsiders):
    user, astrologer, session_id = pair_with_session("active")
    people = {"user": user, "astrologer": astrologer, **outsiders}
    for actor, person in people.items():
        listed = client.get("/api/sessions", headers=person.auth)
        active = client.get("/api/sessions/active", headers=person.auth)
        mine = actor in ("user", "astrologer")
        if actor == "admin":  # not a party: the lists are for users and astrologers
            assert (listed.status_code, active.status_code) == (403, 403)
            continue
        assert (session_id in [s["id"] for s in listed.get_json()]) is mine, actor
        assert (active.status_code == 200 and active.get_json()["id"] == session_id) is mine


def test_pages_answer_only_the_sessions_own_parties(open_browser, outsiders):
    browsers = {"anonymous": open_browser()[0]}
    for actor in ("other_user", "other_astrologer", "admin"):
        browsers[actor] = open_browser(outsiders[actor])[0]
    for method, path, state, body, allowed in PAGE_MATRIX:
        pair = None
        for actor in refusals_first(allowed):
            if pair is None:
                pair = pair_with_session(state)
                for party, person in zip(("user", "astrologer"), pair[:2], strict=True):
                    browsers[party] = open_browser(person)[0]
            user, astrologer, session_id = pair
            browser = browsers[actor]
            before = footprint(session_id, user)
            url = _fill(path, session_id)
            if method == "GET":
                r = browser.get(url)
            else:
                r = browser.post(url, data={**body, "csrf_token": csrf_of(browser)})
            default = 302 if actor == "anonymous" else 404
            expected = allowed.get(actor, default)
            assert r.status_code == expected, (method, path, actor, r.status_code)
            if actor == "anonymous":
                assert "/login" in r.headers["Location"]
            if expected not in (200, 302) or actor == "anonymous":
                assert footprint(session_id, user) == before, (method, path, actor)
            elif method != "GET":
                pair = None


# ---------------------------------------------------------------- reasons only the server gives


def test_a_party_cannot_choose_a_reason_reserved_for_the_server(app, client):
    asks = [(reason, route) for reason in SERVER_REASONS for route in ("one", "active")]
    asks += [("astrologer_ended", "one"), ("free", "active"), ("", "one"), (None, "one")]
    for i, (reason, route) in enumerate(asks):
        who = "astrologer" if i % 3 == 2 else "user"
        user, astrologer, session_id = pair_with_session("active")
        person = user if who == "user" else astrologer
        if route == "one":
            url, body = f"/api/sessions/{session_id}/end", {"reason": reason}
        else:
            url, body = "/api/sessions/end", {"sessionId": session_id, "reason": reason}
        r = client.post(url, json=body, headers=person.auth)
        assert r.status_code == 200, r.get_json()
        entitled = "user_requested" if who == "user" else "astrologer_ended"
        assert r.get_json()["reason"] == entitled, (reason, who, route)
        assert session_row(session_id).end_reason == entitled


def test_the_end_form_ignores_a_reason_field(app, client):
    user, astrologer, session_id = pair_with_session("active")
    _, token = login(client, user)
    r = client.post(
        f"/sessions/{session_id}/end", data={"csrf_token": token, "reason": "system_error"}
    )
    assert r.status_code == 302
    assert session_row(session_id).end_reason == "user_requested"


# ---------------------------------------------------------------- rate limits


@pytest.fixture
def throttled_name():
    name = unique("t")
    yield name


def test_form_logins_are_rate_limited_with_retry_after(app, client, throttled_name):
    user = make_user(throttled_name, balance=0)
    limit = app.config["LOGIN_ATTEMPTS_PER_WINDOW"]
    client.get("/login")
    token = csrf_of(client)
    for _ in range(limit):
        r = client.post(
            "/login", data={"username": user.username, "password": "wrong", "csrf_token": token}
        )
        assert r.status_code == 401
    r = client.post(
        "/login", data={"username": user.username, "password": PASSWORD, "csrf_token": token}
    )
    assert r.status_code == 429, "the right password must wait too once the limit is reached"
    assert int(r.headers["Retry-After"]) >= 1
    assert whoami(client)[0] == 401


def test_token_logins_are_rate_limited_with_retry_after(app, client, throttled_name):
    user = make_user(throttled_name, balance=0)
    limit = app.config["LOGIN_ATTEMPTS_PER_WINDOW"]
    for _ in range(limit):
        r = client.post("/api/auth/token", json={"username": user.username, "password": "nope"})
        assert r.status_code == 401
    r = client.post("/api/auth/token", json={"username": user.username, "password": PASSWORD})
    assert r.status_code == 429
    assert r.get_json()["error"]
    assert int(r.headers["Retry-After"]) >= 1


def test_ending_is_never_rate_limited(app, client):
    user, astrologer, session_id = pair_with_session("active")
    answers = [
        client.post(f"/api/sessions/{session_id}/end", headers=user.auth) for _ in range(100)
    ]
    assert [r.status_code for r in answers] == [200] * 100
    assert [r.get_json()["alreadyEnded"] for r in answers] == [False] + [True] * 99
    nothing = [client.post("/api/sessions/end", headers=user.auth) for _ in range(20)]
    assert {r.status_code for r in nothing} == {404}
