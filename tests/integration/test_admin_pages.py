"""The operator's pages (issue 11 part 4, issue 12 part 1), through the Flask test client:
the report queue, refunds and the end form on a session's page, the live console.

In process, on SQLite and PostgreSQL. Every refused form is checked to change nothing:
the wallet, the report, the session's refunds, the ledger and the audit trail.
"""

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from consult import audit, consultations, feedback, ledger
from consult.clock import utcnow
from consult.db import db
from consult.errors import Invalid
from consult.web.admin import refund_paise
from helpers.books import assert_books_balance
from helpers.inprocess import (
    HX,
    RATE,
    Listener,
    balance_of,
    end_as,
    ended_session,
    fresh,
    isolated_client,
    listen,
    live_session,
    make_astrologer,
    make_user,
    services,
    session_row,
    settlement_count,
    text_of,
    user_obj,
)


def reported(user, session_id: int, text: str = "The answers were copied") -> int:
    fresh()
    return feedback.report(user_obj(user), session_id, "quality", text, at=utcnow()).id


def report_row(report_id: int) -> feedback.Report:
    fresh()
    return db.session.get(feedback.Report, report_id)


def books(user) -> tuple:
    """What a refused form must leave as it was."""
    fresh()
    count = db.session.scalar
    return (
        balance_of(user),
        count(select(func.count()).select_from(ledger.Transfer)),
        count(select(func.count()).select_from(audit.SessionEvent)),
        tuple(db.session.execute(select(feedback.Report.status, feedback.Report.refund_paise))),
        tuple(db.session.scalars(select(ledger.Account.balance_paise).order_by(ledger.Account.id))),
    )


def resolve(admin, report_id: int, decision: str, amount: str, note: str = "Checked the chat"):
    client, token = admin
    return client.post(
        f"/admin/reports/{report_id}/resolve",
        data={"decision": decision, "amount": amount, "note": note, "csrf_token": token},
        headers=HX,
    )


def refund(admin, session_id: int, amount: str, note: str = "Goodwill", key: str | None = None):
    client, token = admin
    data = {"amount": amount, "note": note, "csrf_token": token}
    if key:
        data["idempotency_key"] = key
    return client.post(f"/admin/sessions/{session_id}/refund", data=data, headers=HX)


# ---------------------------------------------------------------- rupees as people type them


@pytest.mark.parametrize(
    ("text", "paise"),
    [
        ("150", 15_000),
        ("99.5", 9_950),
        (" ₹1,250.05 ", 125_005),
        ("0", 0),
        ("9999999.99", 999_999_999),
    ],
)
def test_a_refund_in_rupees_becomes_exact_paise(text, paise):
    assert refund_paise(text) == paise


@pytest.mark.parametrize("text", ["", "abc", "-1", "1.234", "0.001", "NaN", "Infinity"])
def test_what_is_not_an_amount_of_rupees_is_refused(text):
    with pytest.raises(Invalid):
        refund_paise(text)


# ---------------------------------------------------------------- who may come in


def admin_urls(app, session_id: int, report_id: int, person_id: int) -> list[tuple[str, str]]:
    """Every /admin route and method, its values filled in: (method, url)."""
    fresh()
    transfer_id = db.session.scalar(  # the session's settlement
        select(ledger.Transfer.id).where(ledger.Transfer.consultation_id == session_id)
    )
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        url = rule.rule.replace("<int:session_id>", str(session_id))
        url = url.replace("<int:report_id>", str(report_id))
        url = url.replace("<int:person_id>", str(person_id))
        url = url.replace("<int:transfer_id>", str(transfer_id))
        assert "<" not in url, f"fill in the values of {rule.rule}"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, url))
    return found


def test_users_and_astrologers_get_404_on_every_admin_route(app, open_browser, asha, guru, admin):
    session_id = ended_session(asha, guru)
    report_id = reported(asha, session_id)
    live_id = live_session(make_user("ravi", balance=100_000, token=False), guru)
    urls = admin_urls(app, session_id, report_id, asha.id)
    assert {("GET", "/admin/live"), ("POST", "/admin/live/end")} <= set(urls)
    assert ("POST", f"/admin/reports/{report_id}/resolve") in urls
    before = books(asha)
    form = {"amount": "10", "note": "mine now", "decision": "refund", "session_id": str(live_id)}
    for person in (asha, guru):
        client, token = open_browser(person)
        for method, url in urls:
            for headers in ({}, HX):
                if method == "GET":
                    r = client.get(url, headers=headers)
                else:  # with a good CSRF token: refused for who they are, not for the form
                    r = client.post(url, data={**form, "csrf_token": token}, headers=headers)
                assert r.status_code == 404, (person.role, method, url, headers)
    assert books(asha) == before
    assert session_row(live_id).status == "active"
    anonymous = isolated_client(app)
    for method, url in urls:
        if method == "GET":
            r = anonymous.get(url)
            assert r.status_code == 302 and "/login" in r.headers["Location"], url
    client, _ = admin
    for method, url in urls:
        if method == "GET":
            assert client.get(url).status_code == 200, url


def test_the_header_and_the_index_lead_an_admin_to_the_console(app, asha, guru, admin):
    live_session(asha, guru)
    client, _ = admin
    html = text_of(client.get("/admin/"))
    nav = re.search(r'<nav aria-label="Main">.*?</nav>', html, re.S).group(0)
    for href, words in (("/admin/live", "Live sessions"), ("/admin/reports", "Reports")):
        assert f'<a href="{href}">{words}</a>' in nav
        assert f'href="{href}"' in html.split("</header>", 1)[1]
    assert re.search(r'console-figure">1</span>\s*<span><strong>Live sessions', html)


# ---------------------------------------------------------------- the report queue


def test_the_queue_lists_open_reports_oldest_first_with_their_session(app, asha, guru, admin):
    first = ended_session(asha, guru, seconds=30)
    first_report = reported(asha, first, "He left after a minute")
    second = ended_session(asha, guru, seconds=40)
    second_report = reported(asha, second, "Wrong chart <b>again</b>")
    client, _ = admin
    html = text_of(client.get("/admin/reports"))
    assert html.index(f'id="report-{first_report}"') < html.index(f'id="report-{second_report}"')
    card = re.search(rf'<li id="report-{second_report}".*?</li>', html, re.S).group(0)
    assert f'href="/admin/sessions/{second}">#{second}</a>' in card
    for words in ("asha", "Guru Dev", "Quality", "Wrong chart &lt;b&gt;again&lt;/b&gt;", "₹40.00"):
        assert words in card, words
    assert re.search(r"waiting (just now|\d+ min)", card)
    assert 'name="csrf_token"' in card and 'name="decision" value="refund"' in card
    fragment = client.get("/admin/reports", headers=HX)
    assert text_of(fragment).lstrip().startswith('<div id="report-queue">')


def test_resolving_with_a_refund_moves_the_wallet_and_closes_the_report(app, asha, guru, admin):
    session_id = ended_session(asha, guru, seconds=100)  # ₹100.00
    report_id = reported(asha, session_id)
    assert balance_of(asha) == 100_000 - 10_000
    heard = listen(asha)

    r = resolve(admin, report_id, "refund", "40.50", "Half, and a bit")
    assert r.status_code == 200
    html = text_of(r)
    assert html.lstrip().startswith('<div id="report-queue">')
    assert f'id="report-{report_id}"' not in html  # gone from the open queue
    assert "No open reports" in html
    assert 'hx-swap-oob="beforeend:#toasts"' in html
    assert f"Report #{report_id} resolved: ₹40.50 refunded to asha." in html
    assert balance_of(asha) == 100_000 - 10_000 + 4_050
    found = report_row(report_id)
    assert (found.status, found.refund_paise, found.note) == ("refunded", 4_050, "Half, and a bit")
    assert session_row(session_id).refunded_paise == 4_050
    assert heard.named("session:refunded") == [
        {"sessionId": session_id, "refundedPaise": 4_050, "reason": "report"}
    ]
    resolved = text_of(admin[0].get("/admin/reports?status=resolved"))
    assert f'id="report-{report_id}"' in resolved and "Refunded ₹40.50" in resolved
    assert_books_balance()


def test_rejecting_a_report_refunds_nothing(app, asha, guru, admin):
    session_id = ended_session(asha, guru, seconds=60)
    report_id = reported(asha, session_id)
    before = balance_of(asha)
    r = resolve(admin, report_id, "reject", "", "Billed correctly")
    assert r.status_code == 200
    assert f"Report #{report_id} rejected" in text_of(r)
    found = report_row(report_id)
    assert (found.status, found.refund_paise, found.note) == ("rejected", 0, "Billed correctly")
    assert balance_of(asha) == before
    assert session_row(session_id).refunded_paise == 0


@pytest.mark.parametrize(
    ("decision", "amount", "note", "status", "says"),
    [
        ("refund", "abc", "x", 400, "must be an amount in rupees"),
        ("refund", "-1", "x", 400, "cannot be negative"),
        ("refund", "1.234", "x", 400, "with at most two decimals"),
        ("refund", "", "x", 400, "Enter the refund in rupees"),
        ("refund", "0", "x", 400, "more than ₹0.00"),
        ("refund", "100.01", "x", 409, "cannot add up to more than its cost"),
        ("refund", "10", "   ", 400, "note must be 1 to 500 characters"),
        ("reject", "10", "x", 400, "A rejection refunds nothing"),
        ("maybe", "", "x", 400, "Choose Refund or Reject"),
    ],
)
def test_a_bad_resolve_changes_nothing_and_says_why_in_the_card(
    app, asha, guru, admin, decision, amount, note, status, says
):
    session_id = ended_session(asha, guru, seconds=100)  # ₹100.00
    report_id = reported(asha, session_id)
    before = books(asha)
    r = resolve(admin, report_id, decision, amount, note)
    assert r.status_code == status
    assert r.headers["HX-Retarget"] == f"#report-{report_id}"
    assert r.headers["HX-Reswap"] == "outerHTML"
    html = text_of(r)
    assert html.lstrip().startswith(f'<li id="report-{report_id}"')
    error = re.search(r'<p class="error" role="alert"[^>]*>([^<]*)</p>', html)
    assert error and says in error.group(1), html
    assert f'value="{amount}"' in html  # what was typed stays for a correction
    assert books(asha) == before
    assert report_row(report_id).status == "open"


def test_a_report_resolved_twice_says_so_and_refunds_once(app, asha, guru, admin):
    session_id = ended_session(asha, guru, seconds=100)
    report_id = reported(asha, session_id)
    assert resolve(admin, report_id, "refund", "25").status_code == 200
    before = books(asha)
    again = resolve(admin, report_id, "refund", "25")
    assert again.status_code == 409
    assert "This report is already resolved" in text_of(again)
    assert "Refunded ₹25.00" in text_of(again)  # the card as it now is, without a form
    assert books(asha) == before
    assert balance_of(asha) == 100_000 - 10_000 + 2_500


def test_without_javascript_a_resolve_redirects_to_the_queue_with_a_message(app, asha, guru, admin):
    report_id = reported(asha, ended_session(asha, guru, seconds=100))
    client, token = admin
    data = {"decision": "refund", "amount": "10", "note": "ok", "csrf_token": token}
    r = client.post(f"/admin/reports/{report_id}/resolve", data=data)
    assert r.status_code == 302 and r.headers["Location"] == "/admin/reports"
    page = text_of(client.get("/admin/reports"))
    assert f"Report #{report_id} resolved: ₹10.00 refunded to asha." in page
    refused = client.post(f"/admin/reports/{report_id}/resolve", data=data)
    assert refused.status_code == 409 and "already resolved" in text_of(refused)
    assert "<html" in text_of(refused)  # the whole page, the card's reason in place


# ---------------------------------------------------------------- a session's page


def test_the_session_page_shows_cost_refunds_rating_and_reports(app, asha, guru, admin):
    session_id = ended_session(asha, guru, seconds=100)
    fresh()
    feedback.rate(user_obj(asha), session_id, 2, "Rushed", at=utcnow())
    report_id = reported(asha, session_id, "Cut me off")
    refund(admin, session_id, "10")
    html = text_of(admin[0].get(f"/admin/sessions/{session_id}"))
    assert re.search(r'data-field="cost">₹100.00<', html)
    assert re.search(r'data-field="refunded">₹10.00<', html)
    assert re.search(r'data-field="refundable">₹90.00<', html)
    assert "2 of 5" in html and "Rushed" in html
    assert f"Report #{report_id}" in html and "Cut me off" in html
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', html)
    assert key, "the refund form carries a fresh key"
    assert 'name="csrf_token"' in html
    assert "End this session" not in html  # ended: nothing to end


def test_a_refund_from_the_session_page_moves_the_wallet_once_however_often_sent(
    app, asha, guru, admin
):
    session_id = ended_session(asha, guru, seconds=100)
    page = text_of(admin[0].get(f"/admin/sessions/{session_id}"))
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)
    heard = listen(asha)
    first = refund(admin, session_id, "12.34", "Sorry for the wait", key=key)
    again = refund(admin, session_id, "12.34", "Sorry for the wait", key=key)  # a double submit
    assert (first.status_code, again.status_code) == (200, 200)
    assert balance_of(asha) == 100_000 - 10_000 + 1_234
    assert session_row(session_id).refunded_paise == 1_234
    assert len(heard.named("session:refunded")) == 1
    html = text_of(first)
    assert html.lstrip().startswith('<section id="session-money"')
    assert re.search(r'data-field="refunded">₹12.34<', html)
    assert f"Refunded ₹12.34 of session #{session_id} to asha." in html
    events = re.search(r'<div id="session-events"[^>]*hx-swap-oob="true">.*?</div>', html, re.S)
    assert events and "<td>refunded</td>" in events.group(0)  # the audit trail, swapped too
    fresh_key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    assert fresh_key != key  # the next refund is a new one
    events = [e for e in audit.trail(session_id) if e.kind == "refunded"]
    assert [(e.actor_id, e.cost_paise, e.detail) for e in events] == [
        (events[0].actor_id, 1_234, "Sorry for the wait")
    ]
    assert_books_balance()


@pytest.mark.parametrize(
    ("amount", "note", "status", "says"),
    [
        ("abc", "x", 400, "must be an amount in rupees"),
        ("-1", "x", 400, "cannot be negative"),
        ("1.234", "x", 400, "with at most two decimals"),
        ("0", "x", 400, "more than ₹0.00"),
        ("100.01", "x", 409, "Refunds of a session cannot add up to more than its cost"),
        ("5", "", 400, "note must be 1 to 500 characters"),
    ],
)
def test_a_bad_refund_changes_nothing_and_says_why(
    app, asha, guru, admin, amount, note, status, says
):
    session_id = ended_session(asha, guru, seconds=100)
    before = books(asha)
    r = refund(admin, session_id, amount, note, key="k-1")
    assert r.status_code == status
    assert (r.headers["HX-Retarget"], r.headers["HX-Reswap"]) == ("#session-money", "outerHTML")
    html = text_of(r)
    assert says in re.search(r'role="alert"[^>]*>([^<]*)<', html).group(1)
    assert f'value="{amount}"' in html and 'value="k-1"' in html
    assert books(asha) == before
    assert session_row(session_id).refunded_paise == 0


def test_refunds_past_the_cost_in_total_are_refused(app, asha, guru, admin):
    session_id = ended_session(asha, guru, seconds=30)  # ₹30.00
    assert refund(admin, session_id, "20").status_code == 200
    over = refund(admin, session_id, "10.01")
    assert over.status_code == 409
    assert refund(admin, session_id, "10").status_code == 200
    html = text_of(admin[0].get(f"/admin/sessions/{session_id}"))
    assert "Refunded in full." in html and 'name="amount"' not in html
    assert balance_of(asha) == 100_000


def test_the_end_form_ends_a_live_session_with_admin_ended(app, asha, guru, admin):
    session_id = live_session(asha, guru, started_at=utcnow() - timedelta(seconds=30))
    client, token = admin
    page = text_of(client.get(f"/admin/sessions/{session_id}"))
    assert "End this session" in page and 'name="amount"' not in page
    empty = client.post(
        f"/admin/sessions/{session_id}/end", data={"note": " ", "csrf_token": token}, headers=HX
    )
    assert empty.status_code == 400 and empty.headers["HX-Retarget"] == "#end-session"
    assert session_row(session_id).status == "active"
    heard = [listen(asha), listen(guru)]
    r = client.post(
        f"/admin/sessions/{session_id}/end",
        data={"note": "Abusive language", "csrf_token": token},
        headers=HX,
    )
    assert r.status_code == 204 and r.headers["HX-Redirect"] == f"/admin/sessions/{session_id}"
    row = session_row(session_id)
    assert (row.status, row.end_reason) == ("ended", "admin_ended")
    assert [len(h.named("consult:ended")) for h in heard] == [1, 1]
    after = text_of(client.get(f"/admin/sessions/{session_id}"))
    assert f"Session #{session_id} ended: {row.total_cost_paise // 100}" in after.replace("₹", "")
    assert "Abusive language" in after  # the note, in the audit trail


# ---------------------------------------------------------------- the live console


def test_the_live_page_lists_every_active_session_with_its_bill(app, asha, guru, admin):
    ravi = make_user("ravi", balance=100_000, token=False)
    first = live_session(asha, guru, started_at=utcnow() - timedelta(seconds=90))
    second = live_session(ravi, guru, started_at=utcnow() - timedelta(seconds=30))
    ended = ended_session(make_user("meera", balance=100_000, token=False), guru)
    client, _ = admin
    html = text_of(client.get("/admin/live"))
    for session_id, user in ((first, "asha"), (second, "ravi")):
        row = re.search(rf'<tr id="live-{session_id}".*?</tr>', html, re.S).group(0)
        assert user in row and "Guru Dev" in row and "₹60.00/min" in row
        assert f'name="session_id" value="{session_id}"' in row and "Running" in row
    cost = re.search(rf'<tr id="live-{first}".*?data-field="cost">₹([\d.]+)<', html, re.S)
    assert 90.0 <= float(cost.group(1)) <= 95.0
    assert f'id="live-{ended}"' not in html
    assert 'hx-trigger="every 30s"' in html  # pushes do the rest (below)
    # The table's refresh keeps what was ticked.
    fragment = text_of(client.get(f"/admin/live?session_id={second}", headers=HX))
    assert fragment.lstrip().startswith('<div id="live-sessions"')
    assert re.search(rf'value="{second}" id="select-{second}"[^>]*checked', fragment, re.S)
    assert not re.search(rf'value="{first}" id="select-{first}"[^>]*checked', fragment, re.S)


def test_the_live_console_filters_by_astrologer_billing_and_age(app, asha, guru, admin):
    tara = make_astrologer("tara", rate=RATE, name="Tara Moon", token=False)
    ravi, meera = (make_user(n, balance=100_000, token=False) for n in ("ravi", "meera"))
    old = live_session(asha, guru, started_at=utcnow() - timedelta(minutes=20))
    new = live_session(ravi, guru, started_at=utcnow() - timedelta(minutes=2))
    away = live_session(meera, tara, started_at=utcnow() - timedelta(minutes=7), present=False)
    client, _ = admin

    def shown(query: str) -> set[int]:
        html = text_of(client.get(f"/admin/live?{query}", headers=HX))
        return {int(i) for i in re.findall(r'<tr id="live-(\d+)"', html)}

    assert shown("") == {old, new, away}
    assert shown(f"astrologer={tara.id}") == {away}
    assert shown("state=paused") == {away}
    assert shown("state=running") == {old, new}
    assert shown("age=5") == {old, away}
    assert shown("age=15") == {old}
    assert shown(f"astrologer={guru.id}&state=running&age=15") == {old}
    # A value that is not one of the choices means "any", never an error.
    for junk in ("astrologer=x", "astrologer=99999999999999999999999", "state=gone", "age=7"):
        assert shown(junk) == {old, new, away}, junk
    html = text_of(client.get(f"/admin/live?astrologer={tara.id}", headers=HX))
    assert "Showing 1 of 3 live sessions" in html
    assert "No live session matches the filter." in text_of(
        client.get(f"/admin/live?astrologer={tara.id}&state=running", headers=HX)
    )
    # The whole page offers every astrologer, with the chosen one selected.
    page = text_of(client.get(f"/admin/live?astrologer={tara.id}&age=5"))
    assert re.search(rf'<option value="{tara.id}" selected>Tara Moon</option>', page)
    assert f'<option value="{guru.id}">Guru Dev</option>' in page
    assert '<option value="5" selected>' in page


def test_the_live_console_is_told_of_every_start_pause_and_end(app, asha, guru, boss):
    # What an admin's socket watching `live` hears; nobody else hears it.
    console = Listener(boss.id, topics=frozenset({"live"}))
    services().hub.attach(console)
    bystander = listen(make_user("ravi", token=False))
    session_id = live_session(asha, guru)
    consultations.party_left(asha.id, at=utcnow(), hub=services().hub)
    consultations.party_returned(asha.id, at=utcnow(), hub=services().hub)
    end_as(asha, session_id, utcnow())
    assert console.named("live:changed") == [{"sessionIds": [session_id]}] * 4
    assert bystander.named("live:changed") == []


def test_a_bulk_end_ends_each_session_once_with_admin_ended(app, asha, guru, admin):
    ravi = make_user("ravi", balance=100_000, token=False)
    tara = make_astrologer("tara", rate=RATE, name="Tara Moon", token=False)
    first = live_session(asha, guru, started_at=utcnow() - timedelta(seconds=60))
    second = live_session(ravi, tara, started_at=utcnow() - timedelta(seconds=20))
    earlier = ended_session(make_user("meera", balance=100_000, token=False), tara)
    heard = {p.username: listen(p) for p in (asha, ravi, guru, tara)}
    settled = settlement_count()
    client, token = admin
    ids = [str(first), str(second), str(earlier), str(first)]
    r = client.post(
        "/admin/live/end",
        data={"session_id": ids, "note": "Platform maintenance", "csrf_token": token},
        headers=HX,
    )
    assert r.status_code == 200
    html = text_of(r)
    assert html.lstrip().startswith('<div id="live-console">')
    results = dict(re.findall(r'data-result="(\d+)">([^<]*)<', html))
    assert set(results) == {str(first), str(second), str(earlier)}
    assert results[str(first)].startswith(f"Session #{first} ended: ₹")
    assert results[str(second)].startswith(f"Session #{second} ended: ₹")
    assert "had already ended" in results[str(earlier)]
    assert "Ended 2 of 3 selected sessions." in html
    assert settlement_count() == settled + 2
    for session_id in (first, second):
        row = session_row(session_id)
        assert (row.status, row.end_reason) == ("ended", "admin_ended")
        events = [e for e in audit.trail(session_id) if e.kind == "ended"]
        assert len(events) == 1 and events[0].reason == "admin_ended"
    assert {name: len(h.named("consult:ended")) for name, h in heard.items()} == {
        "asha": 1,
        "ravi": 1,
        "guru": 1,
        "tara": 1,
    }
    again = client.post(
        "/admin/live/end",
        data={"session_id": [str(first)], "note": "Again", "csrf_token": token},
        headers=HX,
    )
    assert "had already ended" in text_of(again)
    assert settlement_count() == settled + 2
    assert len(heard["asha"].named("consult:ended")) == 1
    assert f'id="live-{first}"' not in text_of(client.get("/admin/live"))
    assert_books_balance()


@pytest.mark.parametrize(
    ("ids", "note", "says"),
    [([], "Maintenance", "Select 1 to 200 sessions"), (["live"], "", "note must be 1 to 500")],
)
def test_a_bulk_end_without_a_selection_or_a_note_ends_nothing(
    app, asha, guru, admin, ids, note, says
):
    session_id = live_session(asha, guru)
    ids = [str(session_id) if i == "live" else i for i in ids]
    client, token = admin
    r = client.post(
        "/admin/live/end",
        data={"session_id": ids, "note": note, "csrf_token": token},
        headers=HX,
    )
    assert r.status_code == 400 and r.headers["HX-Retarget"] == "#live-console"
    assert says in text_of(r)
    assert session_row(session_id).status == "active"
    if ids:  # the selection survives the refusal
        assert re.search(rf'value="{session_id}" id="select-{session_id}"[^>]*checked', text_of(r))


def test_without_javascript_a_bulk_end_redirects_with_each_result(app, asha, guru, admin):
    session_id = live_session(asha, guru)
    client, token = admin
    r = client.post(
        "/admin/live/end",
        data={"session_id": [str(session_id)], "note": "Maintenance", "csrf_token": token},
    )
    assert r.status_code == 302 and r.headers["Location"] == "/admin/live"
    page = text_of(client.get("/admin/live"))
    assert "Ended 1 of 1 selected session." in page
    assert f"Session #{session_id} ended: ₹" in page
    assert session_row(session_id).end_reason == "admin_ended"
