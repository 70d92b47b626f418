"""CSRF on every mutating route: a signed-in browser without the right token is refused and
nothing changes, for each of them (a new route must join CSRF_CASES); htmx fragments too."""

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from flask import url_for
from sqlalchemy import select

from consult import consultations, feedback, people
from consult.clock import utcnow
from consult.db import db
from helpers import PASSWORD
from helpers.inprocess import (
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
    whoami,
)
from helpers.server import (
    unique,
)

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def db_state() -> dict:
    """Every row of every table: what 'changes nothing' is compared against."""
    fresh()
    return {
        table.name: sorted((tuple(row) for row in db.session.execute(select(table))), key=repr)
        for table in db.metadata.sorted_tables
    }


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
    "language.switch": CsrfCase("user", None, lambda w: {"lang": "hi", "next": "/"}, 302),
    # the second wave (README "Before and after the end")
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
    "desk.set_availability": CsrfCase("astrologer", None, lambda w: {"status": "busy"}, 302),
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
    # The admin pages' forms
    "admin.refund": CsrfCase("admin", "ended", lambda w: {"amount": "1", "note": "sorry"}, 302),
    "admin.end_one": CsrfCase("admin", "active", lambda w: {"note": "abuse"}, 302),
    "admin.end_live": CsrfCase(
        "admin", "active", lambda w: {"session_id": str(w.session_id), "note": "abuse"}, 302
    ),
    "admin.resolve_report": CsrfCase(
        "admin",
        "reported",
        lambda w: {"decision": "reject", "note": "fine"},
        302,
        url_values=lambda w: {"report_id": w.report_id},
    ),
    # The second wave's page forms
    "pages.limits": CsrfCase("user", "active", lambda w: {"max_minutes": "30"}, 302),
    "pages.rate": CsrfCase("user", "ended", lambda w: {"stars": "5"}, 302),
    "pages.report": CsrfCase("user", "ended", lambda w: {"category": "other", "text": "why"}, 302),
    # The people pages (issue 12 part 4)
    "people.profile": CsrfCase(
        "admin",
        None,
        lambda w: {"rate": "61", "speciality": "Tarot", "bio": ""},
        302,
        url_values=lambda w: {"person_id": w.astrologer.id},
    ),
    "people.suspend": CsrfCase(
        "admin",
        None,
        lambda w: {"note": "abuse"},
        302,
        url_values=lambda w: {"person_id": w.user.id},
    ),
    "people.restore": CsrfCase(
        "admin",
        "suspended",
        lambda w: {"note": "appeal"},
        302,
        url_values=lambda w: {"person_id": w.user.id},
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
    if state == "suspended":  # the user's account, for a restore
        s = services()
        people.suspend(
            user_obj(world.admin), world.user.id, "why", at=utcnow(), hub=s.hub, policy=s.policy
        )
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
