"""The operator's people pages (issue 12 part 4), through the Flask test client: who may come
in, the search, a person's page, an astrologer's rate, speciality and bio, and suspending and
restoring an account.

In process, on SQLite and PostgreSQL. Every refused form is checked to change nothing: the
people, the ledger and the audit trail.
"""

import html as markup
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from consult import accounts, audit, consultations, ledger, people
from consult.accounts import User
from consult.clock import utcnow
from consult.db import db
from helpers import PASSWORD
from helpers.books import assert_books_balance
from helpers.inprocess import (
    HX,
    RATE,
    add_money,
    balance_of,
    csrf_of,
    end_as,
    fresh,
    isolated_client,
    listen,
    live_session,
    make_admin,
    make_astrologer,
    make_user,
    request_session,
    session_row,
    settlement_count,
    text_of,
    user_obj,
    whoami,
)


def person_row(person) -> User:
    fresh()
    return db.session.get(User, person.id)


def everything() -> tuple:
    """What a refused form must leave as it was: the people, the money, the audit trail."""
    fresh()
    return (
        tuple(
            db.session.execute(
                select(
                    User.id,
                    User.rate_paise_per_minute,
                    User.speciality,
                    User.bio,
                    User.suspended_at,
                ).order_by(User.id)
            )
        ),
        tuple(db.session.scalars(select(ledger.Account.balance_paise).order_by(ledger.Account.id))),
        db.session.scalar(select(func.count()).select_from(audit.SessionEvent)),
        db.session.scalar(select(func.count()).select_from(accounts.ApiToken)),
    )


def person_events(person) -> list[audit.SessionEvent]:
    fresh()
    return list(
        db.session.scalars(
            select(audit.SessionEvent)
            .where(audit.SessionEvent.subject_id == person.id)
            .order_by(audit.SessionEvent.id)
        )
    )


def post(admin, url: str, data: dict, htmx: bool = True):
    client, token = admin
    return client.post(url, data={**data, "csrf_token": token}, headers=HX if htmx else {})


def set_profile(admin, person, rate="60", speciality="", bio="", htmx=True):
    data = {"rate": rate, "speciality": speciality, "bio": bio}
    return post(admin, f"/admin/people/{person.id}/profile", data, htmx)


def suspend(admin, person, note="Abusive in chat", htmx=True):
    return post(admin, f"/admin/people/{person.id}/suspend", {"note": note}, htmx)


def restore(admin, person, note="Appeal accepted", htmx=True):
    return post(admin, f"/admin/people/{person.id}/restore", {"note": note}, htmx)


def sign_in_form(app, person, password=PASSWORD):
    client = isolated_client(app)
    data = {"username": person.username, "password": password, "csrf_token": csrf_of(client)}
    return client, client.post("/login", data=data)


# ---------------------------------------------------------------- who may come in

MY_ROUTES = [
    ("GET", "/admin/people"),
    ("GET", "/admin/people/{person}"),
    ("POST", "/admin/people/{person}/profile"),
    ("POST", "/admin/people/{person}/suspend"),
    ("POST", "/admin/people/{person}/restore"),
    ("GET", "/admin/audit"),
    ("GET", "/admin/audit?format=csv"),
    ("GET", "/admin/transfers/{transfer}"),
]


def test_the_route_list_names_every_people_and_audit_route(app):
    mine = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in ("people", "audit")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    listed = {
        (m, u.split("?")[0].replace("{person}", "<int:person_id>"))
        for m, u in MY_ROUTES
        if "{transfer}" not in u
    }
    listed.add(("GET", "/admin/transfers/<int:transfer_id>"))
    assert mine == listed


@pytest.mark.parametrize("role", ["user", "astrologer"])
def test_users_and_astrologers_get_404_on_every_people_and_audit_route(
    open_browser, alice, guru, role
):
    session_id = live_session(alice, guru, started_at=utcnow() - timedelta(seconds=30))
    end_as(alice, session_id, utcnow())
    fresh()
    transfer = db.session.scalar(
        select(ledger.Transfer.id).where(ledger.Transfer.consultation_id == session_id)
    )
    victim = make_user("ravi", balance=50_000)
    live_id = live_session(victim, make_astrologer("sage", rate=RATE))
    before = everything()
    client, token = open_browser(alice if role == "user" else guru)
    form = {"rate": "1", "note": "mine now", "speciality": "x", "csrf_token": token}
    for method, url in MY_ROUTES:
        url = url.format(person=victim.id, transfer=transfer)
        for headers in ({}, HX):
            if method == "GET":
                r = client.get(url, headers=headers)
            else:  # a good CSRF token: refused for who they are, not for the form
                r = client.post(url, data=form, headers=headers)
            assert r.status_code == 404, (role, method, url, headers)
    assert everything() == before
    assert session_row(live_id).status == "active"


def test_anonymous_browsers_are_sent_to_sign_in_and_admins_get_every_page(
    app, alice, guru, admin, boss
):
    session_id = live_session(alice, guru, started_at=utcnow() - timedelta(seconds=30))
    end_as(alice, session_id, utcnow())
    fresh()
    transfer = db.session.scalar(
        select(ledger.Transfer.id).where(ledger.Transfer.consultation_id == session_id)
    )
    anonymous = isolated_client(app)
    client, _ = admin
    for method, url in MY_ROUTES:
        if method != "GET":
            continue
        for person in (alice, guru):
            url_ = url.format(person=person.id, transfer=transfer)
            r = anonymous.get(url_)
            assert r.status_code == 302 and "/login" in r.headers["Location"], url_
            assert client.get(url_).status_code == 200, url_
    # Admins are not people of the console: their own page does not exist.
    assert client.get(f"/admin/people/{boss.id}").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/admin/people/999999",
        "/admin/people/0",
        f"/admin/people/{10**30}",
        f"/admin/people/{2**31}",
        "/admin/transfers/999999",
        f"/admin/transfers/{10**30}",
    ],
)
def test_an_unknown_person_or_transfer_is_404(app, admin, url):
    assert admin[0].get(url).status_code == 404


@pytest.mark.parametrize("action", ["profile", "suspend", "restore"])
@pytest.mark.parametrize("person_id", ["999999", str(10**30)])
def test_a_form_posted_for_nobody_is_404_and_changes_nothing(app, alice, admin, action, person_id):
    before = everything()
    r = post(admin, f"/admin/people/{person_id}/{action}", {"rate": "1", "note": "x"})
    assert r.status_code == 404
    assert everything() == before


def test_the_header_leads_an_admin_to_people_and_the_audit_search(app, admin):
    html = text_of(admin[0].get("/admin/"))
    nav = re.search(r'<nav aria-label="Main">.*?</nav>', html, re.S).group(0)
    assert '<a href="/admin/people">People</a>' in nav
    assert '<a href="/admin/audit">Audit</a>' in nav


# ---------------------------------------------------------------- search


def test_search_finds_users_and_astrologers_by_username_or_name_in_any_case(app, admin):
    make_user("meera.k")
    make_astrologer("pandit.rao", name="Pandit Sharma Rao")
    make_astrologer("tara", name="Tara Sharma")
    make_admin("sharma.ops")  # admins are not listed
    client, _ = admin

    def found(query: str) -> list[str]:
        html = text_of(client.get(f"/admin/people?{query}"))
        return re.findall(r'<a href="/admin/people/\d+">([^<]+)</a>', html)

    assert found("q=SHARMA") == ["pandit.rao", "tara"]
    assert found("q=sharma&role=astrologer") == ["pandit.rao", "tara"]
    assert found("q=sharma&role=user") == []
    assert found("q=EERA") == ["meera.k"]
    assert found("role=user") == ["meera.k"]
    assert found("q=%25") == []  # a LIKE wildcard is a character, not "anything"
    assert found("q=_") == []
    assert found("q=.") == ["meera.k", "pandit.rao"]
    nobody = text_of(client.get("/admin/people?q=zzz"))
    assert "Nobody matches “zzz”." in nobody


def test_search_pages_twenty_five_at_a_time_and_answers_htmx_with_the_results(app, admin):
    for n in range(30):
        make_user(f"seeker{n:02d}", token=False)
    client, _ = admin
    first = text_of(client.get("/admin/people?q=seeker"))
    assert "30 people · page 1 of 2" in first
    assert len(re.findall(r'href="/admin/people/\d+"', first)) == 25
    assert 'href="/admin/people?q=seeker&amp;page=2" rel="next"' in first
    second = client.get("/admin/people?q=seeker&page=2", headers=HX)
    html = text_of(second)
    assert html.lstrip().startswith('<section id="people-results"')
    assert "<html" not in html
    assert re.findall(r'<a href="/admin/people/\d+">([^<]+)</a>', html) == [
        f"seeker{n}" for n in range(25, 30)
    ]
    for page in ("999", "abc", "-1", "1" * 40):  # out of range or not a page: a page anyway
        assert client.get(f"/admin/people?q=seeker&page={page}").status_code == 200


def test_search_can_list_only_suspended_accounts(app, alice, guru, admin):
    make_user("other")
    assert suspend(admin, alice).status_code == 204
    html = text_of(admin[0].get("/admin/people?status=suspended"))
    assert re.findall(r'<a href="/admin/people/\d+">([^<]+)</a>', html) == ["alice"]
    assert "Suspended" in html


# ---------------------------------------------------------------- a person's page


def test_a_users_page_shows_their_wallet_statement_sessions_and_reports(app, alice, guru, admin):
    from consult import feedback

    session_id = live_session(alice, guru, started_at=utcnow() - timedelta(seconds=100))
    end_as(alice, session_id, utcnow())
    fresh()
    feedback.report(user_obj(alice), session_id, "quality", "He read the wrong chart", at=utcnow())
    html = text_of(admin[0].get(f"/admin/people/{alice.id}"))
    assert re.search(r'data-field="balance">₹\d+\.\d\d<', html)
    assert f"{balance_of(alice) // 100}." in html
    assert "Wallet statement" in html and "recharge" in html
    assert f'href="/admin/sessions/{session_id}">#{session_id}</a>' in html
    assert f'href="/admin/people/{guru.id}">Guru Dev</a>' in html
    assert "He read the wrong chart" in html
    assert "Suspend the account" in html
    assert 'id="person-profile"' not in html  # a user has no rate to set


def test_an_astrologers_page_shows_earnings_and_the_profile_form(app, alice, guru, admin):
    session_id = live_session(alice, guru, started_at=utcnow() - timedelta(seconds=100))
    end_as(alice, session_id, utcnow())
    html = text_of(admin[0].get(f"/admin/people/{guru.id}"))
    assert "Earnings, last 30 days" in html and "Earnings account" in html
    assert utcnow().date().isoformat() in html
    assert f'href="/admin/sessions/{session_id}">#{session_id}</a>' in html
    assert 'id="person-profile"' in html and 'value="60.00"' in html


# ---------------------------------------------------------------- rate, speciality and bio


def test_a_new_rate_is_audited_and_billed_only_to_new_requests(app, alice, guru, admin, boss):
    live_id = live_session(alice, guru, started_at=utcnow() - timedelta(seconds=60))
    r = set_profile(admin, guru, rate="75.50", speciality="Vedic charts")
    assert r.status_code == 200, text_of(r)
    html = text_of(r)
    assert html.lstrip().startswith('<form id="person-profile"')
    assert "Saved Guru Dev's rate, speciality. New requests are billed at ₹75.50/min" in (
        markup.unescape(html)
    )
    assert '<div id="person-events" hx-swap-oob="true">' in html
    assert person_row(guru).rate_paise_per_minute == 7_550
    assert person_row(guru).speciality == "Vedic charts"
    events = person_events(guru)
    assert [(e.kind, e.actor_id, e.consultation_id) for e in events] == [
        ("rate_changed", boss.id, None),
        ("speciality_changed", boss.id, None),
    ]
    assert events[0].detail == "6000 -> 7550 paise a minute"
    assert events[0].request_id  # the request that made the change

    # The live session keeps the rate it was requested at, to the end.
    assert session_row(live_id).rate_paise_per_minute == RATE
    end_as(alice, live_id, utcnow())
    ended = session_row(live_id)
    assert ended.total_cost_paise == ended.billed_seconds * RATE // 60
    # A new request is billed at the new rate, and the list shows it.
    new_id = request_session(alice, guru)
    assert session_row(new_id).rate_paise_per_minute == 7_550
    listed = {a["id"]: a for a in admin[0].get("/api/astrologers").get_json()}
    assert listed[guru.id]["ratePaisePerMinute"] == 7_550
    assert_books_balance()


def test_saving_the_same_profile_changes_and_audits_nothing(app, guru, admin):
    before = everything()
    r = set_profile(admin, guru, rate="60")
    assert r.status_code == 200 and "Nothing changed for Guru Dev." in text_of(r)
    assert everything() == before


def test_the_bio_shows_on_the_astrologers_card(app, guru, admin):
    bio = "Twenty years of <b>Vedic</b> charts.\nAsk me about careers."
    r = set_profile(admin, guru, bio=bio, speciality="Careers")
    assert r.status_code == 200
    assert person_row(guru).bio == bio
    assert [e.kind for e in person_events(guru)] == ["speciality_changed", "bio_changed"]
    home = text_of(isolated_client(app).get("/"))
    card = re.search(rf'<li id="astrologer-{guru.id}".*?</li>', home, re.S).group(0)
    assert "Twenty years of &lt;b&gt;Vedic&lt;/b&gt; charts." in card
    assert "Careers" in card
    set_profile(admin, guru, bio="   ", speciality="Careers")  # cleared
    assert person_row(guru).bio is None
    home = text_of(isolated_client(app).get("/"))
    assert "Twenty years" not in home


def test_without_javascript_a_saved_profile_redirects_back_with_a_message(app, guru, admin):
    r = set_profile(admin, guru, rate="61", htmx=False)
    assert r.status_code == 302 and r.headers["Location"] == f"/admin/people/{guru.id}"
    page = text_of(admin[0].get(r.headers["Location"]))
    assert "Saved Guru Dev's rate." in markup.unescape(page)


@pytest.mark.parametrize(
    ("rate", "speciality", "bio", "says"),
    [
        ("abc", "", "", "must be an amount in rupees"),
        ("-5", "", "", "must be more than ₹0.00 a minute"),
        ("0", "", "", "must be more than ₹0.00 a minute"),
        ("60.125", "", "", "with at most two decimals"),
        ("", "", "", "Enter the rate in rupees a minute"),
        ("10000.01", "", "", "at most ₹10,000.00 a minute"),
        ("1e-3", "", "", "with at most two decimals"),
        ("NaN", "", "", "with at most two decimals"),
        ("9" * 40, "", "", "with at most two decimals"),
        ("60", "x" * 121, "", "speciality must be at most 120 characters"),
        ("60", "", "x" * 1001, "bio must be at most 1,000 characters"),
    ],
)
def test_a_bad_profile_changes_nothing_and_says_why(app, guru, admin, rate, speciality, bio, says):
    before = everything()
    r = set_profile(admin, guru, rate=rate, speciality=speciality, bio=bio)
    assert r.status_code == 400
    assert (r.headers["HX-Retarget"], r.headers["HX-Reswap"]) == ("#person-profile", "outerHTML")
    html = text_of(r)
    assert says in re.search(r'role="alert"[^>]*>([^<]*)<', html).group(1)
    assert f'value="{rate}"' in html  # what was typed stays for a correction
    assert everything() == before


def test_a_user_has_no_profile_to_set(app, alice, admin):
    before = everything()
    r = set_profile(admin, alice, rate="10", htmx=False)
    assert r.status_code == 400
    assert everything() == before


# ---------------------------------------------------------------- suspend and restore


def test_suspending_a_user_ends_their_live_session_once_and_signs_them_out_everywhere(
    app, open_browser, alice, guru, admin, boss
):
    session_id = live_session(alice, guru, started_at=utcnow() - timedelta(seconds=40))
    cookie = open_browser(alice)[0]
    assert whoami(cookie)[0] == 200
    wallet = balance_of(alice)
    settlements = settlement_count()
    heard_user, heard_astrologer = listen(alice), listen(guru)

    r = suspend(admin, alice, note="Abusive in chat")
    assert r.status_code == 204 and r.headers["HX-Redirect"] == f"/admin/people/{alice.id}"

    row = session_row(session_id)
    assert (row.status, row.end_reason, row.ended_by_id) == ("ended", "admin_ended", boss.id)
    assert settlement_count() == settlements + 1
    ended = [e for e in audit.trail(session_id) if e.kind == "ended"]
    assert len(ended) == 1 and "account suspended: Abusive in chat" in ended[0].detail
    # Each party hears of the end once; the user's sockets then close, after the end.
    assert len(heard_user.named("consult:ended")) == 1
    assert len(heard_astrologer.named("consult:ended")) == 1
    names = [e.name for e in heard_user.events]
    assert names.index("session:logout") > names.index("consult:ended")
    assert heard_user.named("session:logout") == [{"everywhere": True}]
    assert heard_astrologer.named("session:logout") == []
    # Money: only the session's own cost left the wallet, settled by the one end.
    assert balance_of(alice) == wallet - row.total_cost_paise
    assert_books_balance()

    # The token and the browser's sign-in are refused; signing in is refused.
    assert isolated_client(app).get("/api/me", headers=alice.auth).status_code == 401
    assert whoami(cookie)[0] == 401
    assert cookie.get("/wallet").status_code == 302
    _, refused = sign_in_form(app, alice)
    assert refused.status_code == 403 and "This account is suspended" in text_of(refused)
    _, wrong = sign_in_form(app, alice, password="not-the-password")
    assert wrong.status_code == 401 and "suspended" not in text_of(wrong)
    api = isolated_client(app).post(
        "/api/auth/token", json={"username": "alice", "password": PASSWORD}
    )
    assert (api.status_code, api.get_json()) == (403, {"error": "This account is suspended"})

    event = person_events(alice)[-1]
    assert (event.kind, event.actor_id, event.detail) == ("suspended", boss.id, "Abusive in chat")
    assert event.request_id and ended[0].request_id == event.request_id  # one request, found
    page = text_of(admin[0].get(f"/admin/people/{alice.id}"))
    assert "Suspended alice: signed out everywhere. Ended 1 live session" in page
    assert "Restore the account" in page


def test_suspending_an_astrologer_ends_each_live_session_and_withdraws_requests(app, guru, admin):
    users = [make_user(f"client{n}", balance=100_000) for n in range(3)]
    live = [live_session(u, guru, started_at=utcnow() - timedelta(seconds=20)) for u in users[:2]]
    waiting = request_session(users[2], guru)
    settlements = settlement_count()
    heard = [listen(u) for u in users]

    assert suspend(admin, guru).status_code == 204
    for session_id in live:
        row = session_row(session_id)
        assert (row.status, row.end_reason) == ("ended", "admin_ended")
    assert session_row(waiting).status == "declined"
    assert settlement_count() == settlements + 2
    assert [len(h.named("consult:ended")) for h in heard] == [1, 1, 0]
    assert len(heard[2].named("session:declined")) == 1
    # Off the users' list, and not requestable by id.
    assert guru.id not in {a["id"] for a in admin[0].get("/api/astrologers").get_json()}
    late = isolated_client(app).post(
        "/api/sessions", json={"astrologerId": guru.id}, headers=users[0].auth
    )
    assert late.status_code == 409
    assert_books_balance()


def test_a_suspension_racing_the_users_own_end_settles_the_session_once(app, alice, guru, boss):
    from helpers.server import run_together

    session_id = live_session(alice, guru, started_at=utcnow() - timedelta(seconds=30))
    settlements = settlement_count()
    s = app.extensions["consult"]

    def in_context(call):
        def run():
            with app.app_context():
                try:
                    return call(db.session.get(User, boss.id), db.session.get(User, alice.id))
                finally:
                    db.session.remove()

        return run

    suspension, own_end = run_together(
        [
            in_context(
                lambda admin, user: people.suspend(
                    admin, user.id, "race", at=utcnow(), hub=s.hub, policy=s.policy
                )
            ),
            in_context(
                lambda admin, user: consultations.end_by_party(
                    user, session_id, at=utcnow(), hub=s.hub, policy=s.policy
                )
            ),
        ]
    )
    assert settlement_count() == settlements + 1
    won = [o for o in [*suspension.ended, own_end] if not o.already_ended]
    assert len(won) == 1
    assert session_row(session_id).end_reason in ("admin_ended", "user_requested")
    assert person_row(alice).is_suspended
    assert_books_balance()


def test_a_suspended_users_waiting_request_is_cancelled(app, alice, guru, admin):
    waiting = request_session(alice, guru)
    assert suspend(admin, alice).status_code == 204
    assert session_row(waiting).status == "cancelled"


def test_restoring_lets_them_sign_in_again_but_old_sign_ins_and_tokens_stay_void(
    app, open_browser, alice, guru, admin, boss
):
    old_cookie = open_browser(alice)[0]
    assert suspend(admin, alice).status_code == 204
    wallet = balance_of(alice)
    r = restore(admin, alice, note="Apologised")
    assert r.status_code == 204
    assert person_row(alice).suspended_at is None
    assert [(e.kind, e.actor_id) for e in person_events(alice)] == [
        ("suspended", boss.id),
        ("restored", boss.id),
    ]
    browser, signed_in = sign_in_form(app, alice)
    assert signed_in.status_code == 302
    assert whoami(browser) == (200, {"id": alice.id, "username": "alice", "role": "user"})
    assert whoami(old_cookie)[0] == 401  # the sign-in from before the suspension
    assert isolated_client(app).get("/api/me", headers=alice.auth).status_code == 401
    token = isolated_client(app).post(
        "/api/auth/token", json={"username": "alice", "password": PASSWORD}
    )
    assert token.status_code == 200
    assert balance_of(alice) == wallet  # nothing moved on the way
    assert "Restored alice: they can sign in again." in text_of(
        admin[0].get(f"/admin/people/{alice.id}")
    )
    # An astrologer restored is back on the list.
    assert suspend(admin, guru).status_code == 204
    assert restore(admin, guru).status_code == 204
    assert guru.id in {a["id"] for a in admin[0].get("/api/astrologers").get_json()}


@pytest.mark.parametrize(
    ("action", "note", "status", "says"),
    [
        ("suspend", "   ", 400, "note must be 1 to 500 characters"),
        ("suspend", "x" * 501, 400, "note must be 1 to 500 characters"),
        ("restore", "Not suspended", 409, "This account is not suspended"),
    ],
)
def test_a_bad_suspend_or_restore_changes_nothing(
    open_browser, alice, guru, admin, action, note, status, says
):
    session_id = live_session(alice, guru)
    before = everything()
    r = post(admin, f"/admin/people/{alice.id}/{action}", {"note": note})
    assert r.status_code == status
    assert (r.headers["HX-Retarget"], r.headers["HX-Reswap"]) == ("#person-access", "outerHTML")
    assert says in re.search(r'role="alert"[^>]*>([^<]*)<', text_of(r)).group(1)
    assert everything() == before
    assert session_row(session_id).status == "active"
    assert whoami(open_browser(alice)[0])[0] == 200


def test_suspending_twice_says_so_and_ends_nothing_more(app, alice, guru, admin):
    live_session(alice, guru, started_at=utcnow() - timedelta(seconds=10))
    assert suspend(admin, alice).status_code == 204
    settlements, before = settlement_count(), everything()
    again = suspend(admin, alice, htmx=False)
    assert again.status_code == 409 and "This account is already suspended" in text_of(again)
    assert "<html" in text_of(again)  # without htmx: the whole page, the reason in place
    assert (settlement_count(), everything()) == (settlements, before)


def test_the_suspension_use_case_refuses_non_admins(app, alice, guru):
    from consult.errors import Forbidden

    s = app.extensions["consult"]
    with pytest.raises(Forbidden):
        people.suspend(user_obj(guru), alice.id, "no", at=utcnow(), hub=s.hub, policy=s.policy)
    assert person_row(alice).suspended_at is None


def test_a_suspended_account_keeps_its_money_and_the_books_balance(app, alice, guru, admin):
    add_money(alice.id, 5_000)
    wallet = balance_of(alice)
    assert suspend(admin, alice).status_code == 204
    assert balance_of(alice) == wallet
    fresh()
    account = ledger.wallet_of(alice.id)
    assert ledger.entries_balance(account.id) == wallet
    assert_books_balance()


def test_the_sign_out_event_is_the_one_the_sockets_close_on():
    from consult.web.security import SIGNED_OUT

    assert people.SIGNED_OUT == SIGNED_OUT
    assert consultations.ADMIN_ENDED == "admin_ended"
