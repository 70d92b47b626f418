"""Nobody gets in: CSRF on every mutating route, who may touch which session (REST, pages and
socket), reasons only the server may give, hostile chat text, headers, cookies, socket
handshakes and sign-out, bad frames, and the rate limits (logins yes, End never).

The in-process tests use Flask's client (`isolated_client`, one app context per request);
the socket tests a real server subprocess, as a browser or a program would meet it.
"""

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser

import pytest
import websocket
from fault_helpers import (
    HOSTILE_MESSAGES,
    Browser,
    assert_books_balance,
    hang_up,
    make_account,
)
from flask import url_for
from helpers_inprocess import (
    PASSWORD,
    csrf_of,
    fresh,
    isolated_client,
    live_session,
    login,
    make_admin,
    make_astrologer,
    make_user,
    request_session,
    services,
    session_row,
    user_obj,
)
from sqlalchemy import func, select
from support import Socket, register_user, start_session, unique, wait_until

from consult import chat, consultations, feedback, wire
from consult.clock import utcnow
from consult.db import db
from consult.realtime import Event
from consult.web import render
from consult.web.security import login_throttle

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
KIB_64 = 64 * 1024
SERVER_REASONS = (
    "system_error",
    "insufficient_balance",
    "user_disconnected",
    "astrologer_disconnected",
)


@pytest.fixture
def client(app):
    return isolated_client(app)


def db_state() -> dict:
    """Every row of every table: what 'changes nothing' is compared against."""
    fresh()
    return {
        table.name: sorted((tuple(row) for row in db.session.execute(select(table))), key=repr)
        for table in db.metadata.sorted_tables
    }


def whoami(c) -> tuple:
    r = c.get("/api/me")
    return r.status_code, r.get_json()


# ---------------------------------------------------------------- CSRF


@dataclass
class World:
    user: object
    astrologer: object
    session_id: int | None
    admin: object = None
    report_id: int | None = None


@dataclass
class CsrfCase:
    actor: str | None  # who the browser is signed in as; None: an anonymous browser
    state: str | None  # the session the route needs: None, "requested" or "active"
    body: object  # World -> the form fields or JSON body of a good request
    ok: int  # the status the same request earns with the right token
    json: bool = False
    values: dict = field(default_factory=dict)
    method: str = "post"
    url_values: object = None  # World -> more of the route's values


def _new_name(_w):
    return {"username": unique("n"), "password": "long-enough-1"}


CSRF_CASES = {
    "auth.login": CsrfCase(
        None, None, lambda w: {"username": w.user.username, "password": PASSWORD}, 302
    ),
    "auth.register": CsrfCase(None, None, _new_name, 302),
    "auth.logout": CsrfCase("user", None, lambda w: {}, 302),
    "api.token": CsrfCase(
        "user", None, lambda w: {"username": w.user.username, "password": PASSWORD}, 200, True
    ),
    "api.register": CsrfCase("user", None, _new_name, 201, True),
    "api.recharge": CsrfCase("user", None, lambda w: {"amountPaise": 500}, 200, True),
    "api.create_session": CsrfCase(
        "user", None, lambda w: {"astrologerId": w.astrologer.id}, 201, True
    ),
    "api.accept": CsrfCase("astrologer", "requested", lambda w: {}, 200, True),
    "api.decline": CsrfCase("astrologer", "requested", lambda w: {}, 200, True),
    "api.cancel": CsrfCase("user", "requested", lambda w: {}, 200, True),
    "api.post_message": CsrfCase("user", "active", lambda w: {"text": "hello"}, 201, True),
    "api.end_active": CsrfCase("user", "active", lambda w: {}, 200, True),
    "api.end_one": CsrfCase("user", "active", lambda w: {}, 200, True),
    "pages.recharge": CsrfCase("user", None, lambda w: {"amount_rupees": "5"}, 302),
    "pages.request_session": CsrfCase(
        "user", None, lambda w: {"astrologer_id": str(w.astrologer.id)}, 302
    ),
    "pages.end": CsrfCase("user", "active", lambda w: {}, 302),
    "pages.cancel": CsrfCase("user", "requested", lambda w: {}, 302),
    "pages.answer": CsrfCase(
        "astrologer", "requested", lambda w: {}, 302, values={"answer": "accept"}
    ),
    "pages.post_message": CsrfCase("user", "active", lambda w: {"text": "hello"}, 302),
    # API.md "Second wave"
    "api.change_limits": CsrfCase(
        "user", "active", lambda w: {"maxMinutes": 30}, 200, True, method="put"
    ),
    "api.rate": CsrfCase("user", "ended", lambda w: {"stars": 5}, 200, True, method="put"),
    "api.report": CsrfCase(
        "user", "ended", lambda w: {"category": "other", "text": "why"}, 201, True
    ),
    "api.set_availability": CsrfCase(
        "astrologer", None, lambda w: {"status": "busy"}, 200, True, method="put"
    ),
    "admin_api.end_sessions": CsrfCase(
        "admin", "active", lambda w: {"sessionIds": [w.session_id], "note": "abuse"}, 200, True
    ),
    "admin_api.refund": CsrfCase(
        "admin", "ended", lambda w: {"amountPaise": 100, "note": "sorry"}, 200, True
    ),
    "admin_api.resolve": CsrfCase(
        "admin",
        "reported",
        lambda w: {"refundPaise": 0, "note": "fine"},
        200,
        True,
        url_values=lambda w: {"report_id": w.report_id},
    ),
}


def mutating_endpoints(app) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules() if rule.methods & MUTATING}


def test_the_csrf_cases_cover_every_mutating_route(app):
    """A new POST route must be added to CSRF_CASES, or this fails."""
    assert mutating_endpoints(app) == set(CSRF_CASES)


@pytest.mark.parametrize("endpoint", sorted(CSRF_CASES))
def test_a_cookie_browser_without_the_right_csrf_token_is_refused_and_nothing_changes(
    app, endpoint
):
    case = CSRF_CASES[endpoint]
    n = unique("")
    world = World(
        make_user(f"u{n}", balance=100_000), make_astrologer(f"a{n}"), None, make_admin(f"m{n}")
    )
    if case.state:
        _prepare(world, case.state)
    browser = isolated_client(app)
    if case.actor is None:
        browser.get("/login")
        token = csrf_of(browser)
    else:
        actor = {"user": world.user, "astrologer": world.astrologer, "admin": world.admin}
        _, token = login(browser, actor[case.actor])
    other = isolated_client(app)
    other.get("/login")
    values = {"session_id": world.session_id} if case.state else {}
    values.update(case.url_values(world) if case.url_values else {})
    with app.test_request_context():
        url = url_for(endpoint, **values, **case.values)
    body = case.body(world)
    send_with = getattr(browser, case.method)

    def send(csrf):
        if case.json:
            headers = {} if csrf is None else {"X-CSRF-Token": csrf}
            return send_with(url, json=body, headers=headers)
        form = dict(body) if csrf is None else {**body, "csrf_token": csrf}
        return send_with(url, data=form)

    before, me = db_state(), whoami(browser)
    for bad in (None, "", "forged-" + token[7:], csrf_of(other)):
        r = send(bad)
        assert r.status_code == 400, (endpoint, bad, r.status_code)
        assert "CSRF" in r.get_data(as_text=True), endpoint
        assert db_state() == before, f"{endpoint} changed the database without a CSRF token"
        assert whoami(browser) == me, f"{endpoint} changed who is signed in"
    r = send(token)  # the control: the same request with the right token does its job
    assert r.status_code == case.ok, (endpoint, r.status_code, r.get_data(as_text=True)[:300])


def _prepare(world: World, state: str) -> None:
    """The session a route needs: requested, active, ended with billed time, or reported."""
    if state == "requested":
        world.session_id = request_session(world.user, world.astrologer)
        return
    started = utcnow() - timedelta(minutes=2)
    world.session_id = live_session(world.user, world.astrologer, started_at=started)
    if state == "active":
        return
    s = services()
    consultations.end_by_party(
        user_obj(world.user), world.session_id, at=utcnow(), hub=s.hub, policy=s.policy
    )
    if state == "reported":
        filed = feedback.report(user_obj(world.user), world.session_id, "other", "why", at=utcnow())
        world.report_id = filed.id


def test_the_csrf_token_also_guards_htmx_fragment_posts(app, client):
    user, astrologer = make_user("frag", balance=100_000), make_astrologer("fragastro")
    session_id = live_session(user, astrologer)
    _, token = login(client, user)
    r = client.post(f"/sessions/{session_id}/end", headers={"HX-Request": "true"})
    assert r.status_code == 400
    assert session_row(session_id).status == "active"
    r = client.post(
        f"/sessions/{session_id}/end", headers={"HX-Request": "true", "X-CSRF-Token": token}
    )
    assert r.status_code == 200
    assert session_row(session_id).status == "ended"


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


def fresh_pair_with(state: str):
    """A user and an astrologer of their own, with a session in `state`."""
    n = unique("")
    user, astrologer = make_user(f"u{n}", balance=100_000), make_astrologer(f"a{n}")
    if state == "requested":
        session_id = request_session(user, astrologer)
    else:
        session_id = live_session(user, astrologer)
        if state == "ended":
            s = services()
            consultations.end_by_party(
                user_obj(user), session_id, at=utcnow(), hub=s.hub, policy=s.policy
            )
    return user, astrologer, session_id


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
                pair = fresh_pair_with(state)
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
    user, astrologer, session_id = fresh_pair_with("active")
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


def test_pages_answer_only_the_sessions_own_parties(app, outsiders):
    browsers = {"anonymous": isolated_client(app)}
    browsers["anonymous"].get("/login")
    for actor in ("other_user", "other_astrologer", "admin"):
        browsers[actor] = isolated_client(app)
        login(browsers[actor], outsiders[actor])
    for method, path, state, body, allowed in PAGE_MATRIX:
        pair = None
        for actor in refusals_first(allowed):
            if pair is None:
                pair = fresh_pair_with(state)
                for party, person in zip(("user", "astrologer"), pair[:2], strict=True):
                    browsers[party] = isolated_client(app)
                    login(browsers[party], person)
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
        user, astrologer, session_id = fresh_pair_with("active")
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
    user, astrologer, session_id = fresh_pair_with("active")
    _, token = login(client, user)
    r = client.post(
        f"/sessions/{session_id}/end", data={"csrf_token": token, "reason": "system_error"}
    )
    assert r.status_code == 302
    assert session_row(session_id).end_reason == "user_requested"


# ---------------------------------------------------------------- hostile chat text


class Markup(HTMLParser):
    """The page's element structure (tags and attribute names) and its text runs."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.structure: list[tuple] = []
        self.texts: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.structure.append((tag, tuple(sorted(name for name, _ in attrs))))
        self.attributes += [(tag, name, value or "") for name, value in attrs]

    def handle_endtag(self, tag):
        self.structure.append(("/" + tag,))

    def handle_data(self, data):
        self.texts.append(data)


def chat_of(texts: list[str]) -> tuple:
    """An ended session between a fresh pair whose chat holds `texts` (posted via the API)."""
    user, astrologer, session_id = fresh_pair_with("active")
    c = app_client()
    for i, text in enumerate(texts):
        sender = user if i % 2 == 0 else astrologer
        r = c.post(f"/api/sessions/{session_id}/messages", json={"text": text}, headers=sender.auth)
        assert r.status_code == 201, r.get_json()
    s = services()
    consultations.end_by_party(user_obj(user), session_id, at=utcnow(), hub=s.hub, policy=s.policy)
    return user, astrologer, session_id


def app_client():
    from flask import current_app

    return isolated_client(current_app._get_current_object())


def rendered_views(app, user, astrologer, admin, session_id) -> dict[str, str]:
    """Every place a chat message is shown as HTML: pages for each party and the admin, and
    the fragment the socket pushes."""
    views = {}
    for who, person in (("user", user), ("astrologer", astrologer), ("admin", admin)):
        browser = isolated_client(app)
        login(browser, person)
        pages = {"page": f"/sessions/{session_id}", "summary": f"/sessions/{session_id}/summary"}
        for page, path in pages.items():
            r = browser.get(path)
            assert r.status_code == 200, (who, path)
            views[f"{who} {page}"] = r.get_data(as_text=True)
    browser = isolated_client(app)
    login(browser, admin)
    views["admin page"] = browser.get(f"/admin/sessions/{session_id}").get_data(as_text=True)
    fresh()
    pushed = []
    for message in chat.history(session_id):
        with app.test_request_context():
            event = Event("chat:message", {"sessionId": session_id, **wire.message(message)})
            pushed.append(render.fragments(user.id, event))
    views["socket fragments"] = "\n".join(pushed)
    return views


def test_hostile_chat_messages_render_as_inert_text_everywhere(app, outsiders):
    assert len(HOSTILE_MESSAGES) >= 50
    admin = outsiders["admin"]
    benign = [f"message number {i}" for i in range(len(HOSTILE_MESSAGES))]
    calm_user, calm_astrologer, calm_session = chat_of(benign)
    calm = rendered_views(app, calm_user, calm_astrologer, admin, calm_session)
    user, astrologer, session_id = chat_of(HOSTILE_MESSAGES)
    hostile = rendered_views(app, user, astrologer, admin, session_id)

    # The API hands the text back exactly as sent, as JSON.
    r = app_client().get(f"/api/sessions/{session_id}/messages", headers=user.auth)
    assert r.mimetype == "application/json"
    assert [m["text"] for m in r.get_json()] == HOSTILE_MESSAGES

    for view, html in hostile.items():
        # The receipt's digest lists the words a chat used most: its shape follows the words
        # (that is its job), so it is compared as text below, not as markup.
        page, control = Markup(without_digest(html)), Markup(without_digest(calm[view]))
        # Same elements and attribute names as the page with harmless messages: nothing
        # the messages said became markup.
        assert page.structure == control.structure, f"{view}: the messages changed the markup"
        for text in HOSTILE_MESSAGES:
            assert text in page.texts, f"{view}: {text!r} is not shown literally"
        for tag, name, value in Markup(html).attributes:  # the digest included
            assert not name.startswith("on"), (view, tag, name)
            assert "/admin" not in value or view.startswith("admin"), (view, tag, name, value)
            assert not value.strip().lower().startswith("javascript:"), (view, tag, name)


def without_digest(html: str) -> str:
    return re.sub(r'<section class="card digest".*?</section>', "", html, flags=re.S)


# ---------------------------------------------------------------- headers and cookies


def csp_directives(response) -> dict[str, list[str]]:
    policy = response.headers.get("Content-Security-Policy")
    assert policy, f"no Content-Security-Policy on {response.request.path}"
    directives = {}
    for part in policy.split(";"):
        if part.strip():
            name, *values = part.split()
            directives[name] = values
    return directives


def test_every_kind_of_answer_carries_a_strict_content_security_policy(app, client):
    user = make_user("csp", balance=10_000)
    answers = [
        client.get("/login"),
        client.get("/api/astrologers"),
        client.get("/no/such/page"),
        client.get("/api/no/such"),
        client.post("/login", data={}),  # a CSRF refusal
        client.get("/static/app.js"),
    ]
    login(client, user)
    answers += [client.get("/"), client.get("/wallet"), client.get("/sessions")]
    for response in answers:
        csp = csp_directives(response)
        scripts = csp.get("script-src", csp.get("default-src"))
        assert scripts, response.request.path
        assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
        assert not any(v.startswith(("http:", "https:", "*", "data:")) for v in scripts)
        assert "'unsafe-eval'" not in " ".join(sum(csp.values(), []))
        assert csp.get("object-src") == ["'none'"]
        assert csp.get("frame-ancestors") == ["'none'"]
        assert response.headers.get("X-Content-Type-Options") == "nosniff"


def session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, "the sign-in set no session cookie"
    return cookies[-1]


def cookie_flags(cookie: str) -> set[str]:
    return {part.strip().lower() for part in cookie.split(";")[1:]}


def test_the_session_cookie_is_httponly_and_samesite_lax(app, client):
    user = make_user("cookie", balance=0)
    response, _ = login(client, user)
    flags = cookie_flags(session_cookie(response))
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "secure" not in flags  # plain HTTP by default: a Secure cookie would never return


def test_the_session_cookie_is_secure_when_configured(app, monkeypatch):
    from consult import create_app

    # A deployment reads its settings from the environment (a test app would ignore them).
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "true")
    monkeypatch.setenv("DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.setenv("SECRET_KEY", "test")
    secure_app = create_app()
    secure_app.config["TESTING"] = True
    assert secure_app.config["SESSION_COOKIE_SECURE"] is True
    user = make_user("securecookie", balance=0)
    browser = isolated_client(secure_app)
    response, _ = login(browser, user)
    flags = cookie_flags(session_cookie(response))
    assert {"secure", "httponly", "samesite=lax"} <= flags


# ---------------------------------------------------------------- rate limits


@pytest.fixture
def throttled_name():
    name = unique("t")
    yield name
    login_throttle.reset("127.0.0.1", name)


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
    user, astrologer, session_id = fresh_pair_with("active")
    answers = [
        client.post(f"/api/sessions/{session_id}/end", headers=user.auth) for _ in range(100)
    ]
    assert [r.status_code for r in answers] == [200] * 100
    assert [r.get_json()["alreadyEnded"] for r in answers] == [False] + [True] * 99
    nothing = [client.post("/api/sessions/end", headers=user.auth) for _ in range(20)]
    assert {r.status_code for r in nothing} == {404}


# ================================================================ against a real server


@pytest.fixture
def admin_api(server):
    return make_account(server, "admin")


def test_ending_is_never_rate_limited_under_a_burst_on_the_real_server(server):
    user = register_user(server, 10_000)
    astrologer = make_account(server, "astrologer")
    session = start_session(user, astrologer)
    paths = [f"/api/sessions/{session['id']}/end", "/api/sessions/end"]

    def end(i):
        return user.post(paths[i % 2], {"sessionId": session["id"]} if i % 2 else None)

    with ThreadPoolExecutor(max_workers=25) as pool:
        answers = list(pool.map(end, range(100)))
    assert sorted(r.status_code for r in answers) == [200] * 100, {r.status_code for r in answers}
    assert sorted(r.json()["alreadyEnded"] for r in answers) == [False] + [True] * 99
    assert_books_balance(server)


def _chunked(body: bytes):
    """A generator body: requests sends it chunked, with no Content-Length."""
    for start in range(0, len(body), 4096):
        yield body[start : start + 4096]


def test_a_chunked_body_over_64_kib_answers_413_on_the_real_server(server):
    # Only a real server decodes chunked bodies; Werkzeug alone cuts them off at the limit.
    user = register_user(server)

    def recharge(size):
        body = b'{"amountPaise": 100, "pad": "'
        body += b"x" * (size - len(body) - 2) + b'"}'
        assert len(body) == size
        return user.post(
            "/api/wallet/recharge",
            data=_chunked(body),
            headers={"Content-Type": "application/json"},
        )

    over = recharge(64 * 1024 + 1)
    assert (over.status_code, over.json()) == (
        413,
        {"error": "Request body too large (64 KiB at most)"},
    )
    assert user.get("/api/wallet").json()["balancePaise"] == 0
    exactly = recharge(64 * 1024)
    assert (exactly.status_code, exactly.json()) == (200, {"balancePaise": 100})


# ---------------------------------------------------------------- handshakes


def test_socket_handshakes_without_credentials_or_from_foreign_origins_are_refused(server):
    user = make_account(server, "user")
    browser = Browser(server).sign_in(user.user["username"])
    cookie = f"Cookie: {browser.cookie_header()}"
    for path in ("/ws", "/api/ws"):
        url = server.ws_url + path
        for headers, origin, status in (
            ([], None, 401),
            ([], server.url, 401),
            (["Cookie: session=forged.value.here"], server.url, 401),
            (["Authorization: Bearer not-a-token"], None, 401),
            # The cross-site socket hijack: a real cookie, sent by a foreign page.
            ([cookie], "http://evil.example", 403),
            ([cookie], f"http://127.0.0.1:{server.port}.evil.example", 403),
            ([cookie], "null", 403),
            ([f"Authorization: Bearer {user.token}"], "https://evil.example", 403),
        ):
            with pytest.raises(websocket.WebSocketBadStatusException) as refused:
                websocket.create_connection(
                    url, timeout=5, header=headers, origin=origin, suppress_origin=origin is None
                )
            assert refused.value.status_code == status, (path, headers, origin)
        ok = browser.socket(path)  # the control: the same cookie from the app's own origin
        assert not ok.closed.wait(0.3)
        hang_up(ok)


def test_a_socket_origin_must_match_exactly_the_apps_own_or_a_configured_one(fresh_server):
    srv = fresh_server(ALLOWED_ORIGINS="https://partner.example, https://b.example:8443")
    user = make_account(srv, "user")
    header = [f"Authorization: Bearer {user.token}"]
    for origin, allowed in (
        (srv.url, True),
        ("https://partner.example", True),
        ("https://b.example:8443", True),
        ("https://partner.example.evil", False),
        ("https://evil.partner.example", False),
        ("http://partner.example", False),  # another scheme
        ("https://b.example", False),  # another port
        ("https://partner.example/", False),
        (srv.url.replace("http://", "https://"), False),
        (f"{srv.url}.evil.example", False),
    ):
        if allowed:
            ws = websocket.create_connection(
                srv.ws_url + "/api/ws", timeout=5, header=header, origin=origin
            )
            ws.close()
            continue
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(
                srv.ws_url + "/api/ws", timeout=5, header=header, origin=origin
            )
        assert refused.value.status_code == 403, origin


# ---------------------------------------------------------------- sign-out closes sockets


def test_signing_out_closes_that_browsers_sockets_and_no_others(server):
    user = make_account(server, "user", balance=10_000)
    astrologer = make_account(server, "astrologer")
    here = Browser(server).sign_in(user.user["username"])
    elsewhere = Browser(server).sign_in(user.user["username"])  # the same user, another browser
    page, api_by_cookie = here.socket("/ws"), here.socket("/api/ws")
    other_page = elsewhere.socket("/ws")
    program = Socket(f"{server.ws_url}/api/ws?token={user.token}")
    program.wait_for("session:state")

    r = here.post("/logout")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    for ws in (page, api_by_cookie):
        assert ws.closed.wait(5), "a socket of the signed-out browser stayed open"
        assert ws.close_code == 1000 and ws.close_reason == "Signed out"
    assert here.get("/api/me").status_code == 401

    # The bearer-token socket and the other browser's socket live on and still hear events.
    session = start_session(user, astrologer)
    assert program.wait_for("session:accepted")["data"]["id"] == session["id"]
    other_page.wait_for_text(f'id="session-{session["id"]}"')
    assert not program.closed.is_set() and not other_page.closed.is_set()
    assert user.post("/api/sessions/end").status_code == 200
    program.wait_for("consult:ended")
    for ws in (program, other_page):
        hang_up(ws)


# ---------------------------------------------------------------- bad frames


def test_bad_frames_are_refused_without_harm(server):
    user = make_account(server, "user", balance=10_000)
    astrologer = make_account(server, "astrologer")
    session = start_session(user, astrologer)
    sid = session["id"]
    watcher = astrologer.socket()
    watcher.wait_for("session:state")
    ws = user.socket()
    ws.wait_for("session:state")

    malformed = [
        "[" * 30_000 + "]" * 30_000,  # nesting deep enough to exhaust the parser's recursion
        '{"event": "endSession", "data": {"sessionId": ' + "9" * 5000 + "}}",
        '{"event": "endSession", "data": {"sessionId": 1e999}}',
        '{"event": "endSession", "data": {"sessionId": NaN}}',
        '{"event": {"$ne": null}, "data": {}}',
        f'{{"event": "chat:send", "data": {{"sessionId": {sid}, "text": {{"a": 1}}}}}}',
        f'{{"event": "chat:send", "data": {{"sessionId": [{sid}], "text": "x"}}}}',
        '{"event": "endSession", "data": {"sessionId": true}}',
        f'{{"event": "endSession", "data": {{"sessionId": "{sid}"}}}}',
        '{"event": "endSession", "data": []}',
        '{"event": "endSession", "requestId": {"x": 1}}',
        "\ud800",  # a lone surrogate cannot even be encoded: sent as raw bytes below
        "",
    ]
    for raw in malformed:
        if raw == "\ud800":
            ws.ws.send_binary(b"\xff\xfe{\x00")  # not UTF-8 at all
        else:
            ws.send_raw(raw)
        error = ws.wait_for("error", timeout=5)
        assert error["data"]["message"], raw[:40]
        assert not ws.closed.is_set(), f"the socket died on {raw[:40]!r}"
    # Unharmed: the session still runs, both sockets still work, nothing was charged.
    state = user.get(f"/api/sessions/{sid}").json()
    assert state["status"] == "active"
    assert user.get("/api/wallet").json()["balancePaise"] == 10_000
    ws.send("billing:status", {})
    assert ws.wait_for("billing:status")["data"]["sessionId"] == sid

    # Over 64 KiB closes with 1009, and only that socket.
    program = user.socket()
    program.send_raw("x" * (KIB_64 + 1))
    page = Browser(server).sign_in(user.user["username"]).socket("/ws")
    page.send("x" * (KIB_64 + 1))
    for victim in (program, page):
        assert victim.closed.wait(10)
        assert victim.close_code == 1009
    ws.send("billing:status", {})
    assert ws.wait_for("billing:status")["data"]["sessionId"] == sid
    assert user.post("/api/sessions/end").status_code == 200
    watcher.wait_for("consult:ended", where=lambda d: d["sessionId"] == sid)
    hang_up(ws)
    hang_up(watcher)
    assert_books_balance(server)


# ---------------------------------------------------------------- who may act over the socket


def socket_answer(ws: Socket, event: str, data: dict) -> dict:
    replies = {"endSession": "endSession:result", "billing:status": "billing:status"}
    ws.send(event, data, requestId="m")
    if event == "chat:send":  # success has no direct reply: its chat:message comes instead
        while True:
            frame = ws.wait_for_any("chat:message", "error")
            if frame["event"] == "error" or frame["data"]["text"] == data["text"]:
                return frame
    return ws.wait_for_any(replies[event], "error")


def test_socket_events_answer_only_the_sessions_own_parties(server, admin_api):
    user = make_account(server, "user", balance=50_000)
    astrologer = make_account(server, "astrologer")
    other_user = make_account(server, "user", balance=50_000)
    other_astrologer = make_account(server, "astrologer")
    session = start_session(user, astrologer)
    sid = session["id"]
    sockets = {}
    for name, api in (
        ("user", user),
        ("astrologer", astrologer),
        ("other_user", other_user),
        ("other_astrologer", other_astrologer),
        ("admin", admin_api),
    ):
        sockets[name] = api.socket()
        sockets[name].wait_for("session:state")
    text = "only the parties may say this"
    for actor in ("other_user", "other_astrologer", "admin"):
        for event, data in (
            ("billing:status", {"sessionId": sid}),
            ("chat:send", {"sessionId": sid, "text": text}),
            ("endSession", {"sessionId": sid, "reason": "system_error"}),
        ):
            frame = socket_answer(sockets[actor], event, data)
            assert frame["event"] == "error", (actor, event, frame)
    assert user.get(f"/api/sessions/{sid}/messages").json() == []
    assert user.get(f"/api/sessions/{sid}").json()["status"] == "active"
    for actor in ("user", "astrologer"):
        assert socket_answer(sockets[actor], "billing:status", {"sessionId": sid})["event"] == (
            "billing:status"
        )
        frame = socket_answer(sockets[actor], "chat:send", {"sessionId": sid, "text": actor})
        assert frame["event"] == "chat:message" and frame["data"]["text"] == actor
    result = socket_answer(
        sockets["user"], "endSession", {"sessionId": sid, "reason": "system_error"}
    )
    assert result["event"] == "endSession:result"
    assert result["data"]["reason"] == "user_requested"  # not the reason it asked for
    for ws in sockets.values():
        hang_up(ws)
    assert_books_balance(server)


def test_an_htmx_socket_end_cannot_choose_a_reserved_reason(server):
    user = make_account(server, "user", balance=10_000)
    astrologer = make_account(server, "astrologer")
    session = start_session(user, astrologer)
    browser = Browser(server).sign_in(user.user["username"])
    page = browser.socket("/ws")
    page.send(
        json.dumps(
            {
                "event": "endSession",
                "sessionId": str(session["id"]),
                "reason": "system_error",
                "HEADERS": {"HX-Request": "true"},
            }
        )
    )
    ended = wait_until(
        lambda: (s := user.get(f"/api/sessions/{session['id']}").json())["status"] == "ended" and s,
        timeout=10,
        message="the page's End to settle",
    )
    assert ended["endReason"] == "user_requested"
    hang_up(page)
