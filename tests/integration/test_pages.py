"""The HTMX pages and fragments, through the Flask test client: what a person sees and can do."""

import re
from datetime import timedelta

from consult.clock import utcnow
from consult.money import rupees
from helpers import PASSWORD
from helpers.inprocess import (
    HX,
    balance_of,
    csrf_of,
    end_as,
    field_text,
    live_session,
    make_astrologer,
    make_user,
    request_session,
    session_row,
    started_ago,
    text_of,
)


def compose_input(html: str, session_id: int) -> str:
    match = re.search(rf'<input id="compose-{session_id}"[^>]*>', html)
    assert match, "no compose input"
    return match.group(0)


# ---------------------------------------------------------------- signing in


def test_login_page_shows_the_form_with_a_csrf_token(open_browser):
    client, _ = open_browser()
    response = client.get("/login")
    assert response.status_code == 200
    html = text_of(response)
    assert 'name="username"' in html and 'name="password"' in html
    # Its token is timestamped by the second, so it is not compared but used: accepted.
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    refused = client.post("/login", data={"username": "nobody", "password": "x" * 12})
    assert refused.status_code == 400  # no token: the CSRF check refuses
    tried = client.post(
        "/login", data={"username": "nobody", "password": "x" * 12, "csrf_token": token}
    )
    assert tried.status_code == 401  # past the CSRF check: the wrong password's answer


def test_every_page_names_the_icon_and_favicon_ico_leads_to_it(open_browser, alice):
    client, _ = open_browser()
    assert '<link rel="icon" href="/static/icon.svg" type="image/svg+xml">' in text_of(
        client.get("/login")
    )
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response.headers["Location"] == "/static/icon.svg"
    icon = client.get("/static/icon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    icon.close()


def test_each_role_lands_on_its_own_home_after_signing_in(open_browser, alice, guru, boss):
    for person, home in ((guru, "/dashboard"), (alice, "/"), (boss, "/admin/")):
        client, _ = open_browser()
        response = client.post(
            "/login",
            data={"username": person.username, "password": PASSWORD, "csrf_token": csrf_of(client)},
        )
        assert response.status_code == 302
        assert response.headers["Location"] == home, person.role
    dashboard = open_browser(guru)[0].get("/dashboard")
    assert dashboard.status_code == 200
    assert "Guru Dev" in text_of(dashboard) or "guru" in text_of(dashboard)


def test_a_wrong_password_shows_the_form_again(open_browser, alice):
    client, token = open_browser()
    response = client.post(
        "/login", data={"username": "alice", "password": "not-it-at-all", "csrf_token": token}
    )
    assert response.status_code == 401
    assert 'role="alert"' in text_of(response)
    assert client.get("/wallet").status_code == 302  # still signed out


def test_signing_in_without_the_csrf_token_is_refused(open_browser, alice):
    client, _ = open_browser()
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/wallet").status_code == 302  # still signed out


def test_too_many_bad_sign_ins_on_the_page_answer_429_with_retry_after(app, open_browser):
    victim = make_user("throttled-page", token=False)
    client, token = open_browser()
    bad = {"username": victim.username, "password": "guess-guess", "csrf_token": token}
    for _ in range(app.config["LOGIN_ATTEMPTS_PER_WINDOW"]):
        assert client.post("/login", data=bad).status_code == 401
    response = client.post("/login", data=bad)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    right = client.post("/login", data={**bad, "password": PASSWORD})
    assert right.status_code == 429
    assert client.get("/wallet").status_code == 302  # still signed out


def test_anonymous_visitors_are_sent_to_the_login_page(open_browser, alice, guru):
    session_id = live_session(alice, guru)
    client, _ = open_browser()
    for path in ("/wallet", "/sessions", f"/sessions/{session_id}", "/dashboard", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next="), path


# ---------------------------------------------------------------- home and wallet


def test_home_lists_astrologers_with_their_rates(open_browser, alice, guru):
    make_astrologer("moon", rate=3550, name="Moon Reader", token=False)
    anonymous, _ = open_browser()
    html = text_of(anonymous.get("/"))
    for expected in ("Guru Dev", "₹60.00", "Moon Reader", "₹35.50", "Sign in to chat"):
        assert expected in html
    open_browser, _ = open_browser(alice)
    html = text_of(open_browser.get("/"))
    assert "Guru Dev" in html and "₹60.00" in html
    assert html.count("Chat now") == 2


def test_a_recharge_without_the_csrf_token_is_refused_and_changes_nothing(open_browser, alice):
    client, token = open_browser(alice)
    plain = client.post("/wallet/recharge", data={"amount_rupees": "200"})
    assert plain.status_code == 400
    htmx = client.post("/wallet/recharge", data={"amount_rupees": "200"}, headers=HX)
    assert htmx.status_code == 400
    forged = client.post(
        "/wallet/recharge", data={"amount_rupees": "200", "csrf_token": "forged-token"}
    )
    assert forged.status_code == 400
    assert balance_of(alice) == 100_000
    accepted = client.post("/wallet/recharge", data={"amount_rupees": "200", "csrf_token": token})
    assert accepted.status_code == 302
    assert balance_of(alice) == 120_000


def test_the_wallet_page_labels_the_demo_payment_and_shows_the_history(open_browser, alice, guru):
    client, token = open_browser(alice)
    client.post("/wallet/recharge", data={"amount_rupees": "500", "csrf_token": token})
    at = utcnow() - timedelta(minutes=10)
    session_id = live_session(alice, guru, started_at=at)
    end_as(alice, session_id, at + timedelta(seconds=90))
    response = client.get("/wallet")
    assert response.status_code == 200
    html = text_of(response)
    assert "Demo payment" in html
    assert "₹1,410.00" in html  # 1,000 + 500 - 90
    assert "+₹500.00" in html
    assert "-₹90.00" in html
    assert f'href="/sessions/{session_id}/summary"' in html


def test_a_recharge_by_htmx_answers_the_new_balance(open_browser, alice):
    client, token = open_browser(alice)
    response = client.post(
        "/wallet/recharge", data={"amount_rupees": "100"}, headers={**HX, "X-CSRF-Token": token}
    )
    assert response.status_code == 200
    html = text_of(response)
    assert 'id="wallet-balance"' in html and "₹1,100.00" in html
    assert "<html" not in html


# ---------------------------------------------------------------- the session page


def test_the_session_page_shows_the_live_panel_to_both_parties(open_browser, alice, guru):
    session_id = started_ago(alice, guru, 30)
    for person, other in ((alice, "Guru Dev"), (guru, "alice")):
        client, _ = open_browser(person)
        response = client.get(f"/sessions/{session_id}")
        assert response.status_code == 200
        html = text_of(response)
        assert "<html" in html
        assert f'id="session-{session_id}"' in html
        assert "status-active" in html
        assert other in html
        assert f'id="end-button-{session_id}"' in html
        assert f'id="session-{session_id}-billing"' in html and "data-ticker" in html
        assert "disabled" not in compose_input(html, session_id)


def test_a_session_waiting_for_an_answer_has_no_end_button(open_browser, alice, guru):
    session_id = request_session(alice, guru)
    client, _ = open_browser(alice)
    html = text_of(client.get(f"/sessions/{session_id}"))
    assert "Waiting for" in html
    assert "end-button" not in html
    assert "disabled" in compose_input(html, session_id)
    assert f'action="/sessions/{session_id}/cancel"' in html


def test_an_htmx_get_of_a_session_returns_just_the_panel(open_browser, alice, guru):
    session_id = started_ago(alice, guru, 10)
    client, _ = open_browser(alice)
    response = client.get(f"/sessions/{session_id}", headers=HX)
    assert response.status_code == 200
    html = text_of(response).strip()
    assert html.startswith(f'<section id="session-{session_id}"')
    assert html.endswith("</section>")
    assert "<html" not in html and "<!doctype" not in html.lower() and "topbar" not in html


def test_the_end_confirmation_shows_the_astrologer_the_time_and_the_amount_spent(
    open_browser, alice, guru
):
    session_id = started_ago(alice, guru, 125)
    client, _ = open_browser(alice)
    response = client.get(f"/sessions/{session_id}/end/confirm", headers=HX)
    assert response.status_code == 200
    html = text_of(response).strip()
    assert html.startswith("<dialog") and html.endswith("</dialog>")
    assert "Guru Dev" in html
    assert "Session time" in html and "Spent so far" in html
    # 125 s (or 126 if a second ticked meanwhile) at ₹1 a second.
    shown = (field_text(html, "elapsed"), field_text(html, "cost"))
    assert shown in {("2:05", "₹125.00"), ("2:06", "₹126.00")}
    assert "Continue Session" in html and "End Session" in html
    assert session_row(session_id).status == "active"  # asking is not ending


def test_the_astrologer_s_end_confirmation_names_the_user(open_browser, alice, guru):
    session_id = started_ago(alice, guru, 60)
    client, _ = open_browser(guru)
    html = text_of(client.get(f"/sessions/{session_id}/end/confirm", headers=HX))
    assert "<dialog" in html and "alice" in html and "Billed so far" in html


def test_the_end_confirmation_is_refused_unless_the_session_is_active(open_browser, alice, guru):
    waiting = request_session(alice, guru)
    client, _ = open_browser(alice)
    response = client.get(f"/sessions/{waiting}/end/confirm", headers=HX)
    assert response.status_code == 409
    assert "<dialog" not in text_of(response)
    assert response.headers["HX-Retarget"] == "#toasts"  # an htmx error becomes a toast
    client.post(f"/sessions/{waiting}/cancel", headers={"X-CSRF-Token": csrf_of(client)})
    at = utcnow() - timedelta(minutes=5)
    ended = live_session(alice, guru, started_at=at)
    end_as(alice, ended, at + timedelta(seconds=10))
    response = client.get(f"/sessions/{ended}/end/confirm", headers=HX)
    assert response.status_code == 409
    assert "<dialog" not in text_of(response)


def test_ending_by_htmx_returns_the_ended_panel(open_browser, alice, guru):
    session_id = started_ago(alice, guru, 75)
    client, token = open_browser(alice)
    response = client.post(f"/sessions/{session_id}/end", headers={**HX, "X-CSRF-Token": token})
    assert response.status_code == 200
    html = text_of(response).strip()
    assert html.startswith(f'<section id="session-{session_id}"')
    assert "<html" not in html
    assert "status-ended" in html
    assert "You ended the session" in html
    assert "disabled" in compose_input(html, session_id)
    # No billing display for an ended session, and no End button.
    assert "data-ticker" not in html and "Spent so far" not in html
    assert "end-button" not in html
    assert f'href="/sessions/{session_id}/summary"' in html
    settled = session_row(session_id)
    assert settled.status == "ended" and settled.end_reason == "user_requested"
    assert balance_of(alice) == 100_000 - settled.total_cost_paise
    assert rupees(settled.total_cost_paise) in html  # what it cost, in the banner


def test_ending_without_the_csrf_token_is_refused_and_billing_goes_on(open_browser, alice, guru):
    session_id = started_ago(alice, guru, 60)
    client, _ = open_browser(alice)
    assert client.post(f"/sessions/{session_id}/end", headers=HX).status_code == 400
    assert client.post(f"/sessions/{session_id}/end").status_code == 400
    assert session_row(session_id).status == "active"
    assert balance_of(alice) == 100_000


def test_ending_by_a_plain_form_redirects_to_the_session_page(open_browser, alice, guru):
    session_id = started_ago(alice, guru, 5)
    client, token = open_browser(alice)
    response = client.post(f"/sessions/{session_id}/end", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/sessions/{session_id}"
    assert session_row(session_id).status == "ended"


def test_without_htmx_the_end_confirmation_is_a_page_whose_form_ends_the_session(
    open_browser, alice, guru
):
    session_id = started_ago(alice, guru, 65)
    client, token = open_browser(alice)
    page = text_of(client.get(f"/sessions/{session_id}"))
    end_form = re.search(rf'<form id="end-form-{session_id}"[^>]*>', page).group(0)
    assert f'method="get" action="/sessions/{session_id}/end/confirm"' in end_form
    response = client.get(f"/sessions/{session_id}/end/confirm")
    assert response.status_code == 200
    html = text_of(response)
    assert "<html" in html and "<dialog" not in html
    assert "End this session?" in html and "Guru Dev" in html and "Spent so far" in html
    assert f'<form method="post" action="/sessions/{session_id}/end"' in html
    # The form's own token (it is timestamped by the second: compare none, use it).
    form_token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    assert f'href="/sessions/{session_id}"' in html  # Continue Session
    assert session_row(session_id).status == "active"  # asking is not ending
    ended = client.post(f"/sessions/{session_id}/end", data={"csrf_token": form_token})
    assert ended.status_code in (200, 302, 303), ended.status_code
    assert session_row(session_id).status == "ended"


def test_a_message_sent_by_a_plain_form_redirects_to_the_session_page(open_browser, alice, guru):
    session_id = started_ago(alice, guru, 5)
    client, token = open_browser(alice)
    page = text_of(client.get(f"/sessions/{session_id}"))
    compose = re.search(rf'<form id="session-{session_id}-compose"[^>]*>', page).group(0)
    assert f'method="post" action="/sessions/{session_id}/messages"' in compose
    response = client.post(
        f"/sessions/{session_id}/messages",
        data={"text": "No scripts here", "csrf_token": token, "event": "chat:send"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/sessions/{session_id}"
    assert "No scripts here" in text_of(client.get(f"/sessions/{session_id}"))


def test_ending_twice_from_the_page_charges_once(open_browser, alice, guru):
    session_id = started_ago(alice, guru, 30)
    client, token = open_browser(alice)
    headers = {**HX, "X-CSRF-Token": token}
    first = client.post(f"/sessions/{session_id}/end", headers=headers)
    balance = balance_of(alice)
    second = client.post(f"/sessions/{session_id}/end", headers=headers)
    assert first.status_code == second.status_code == 200
    assert "You ended the session" in text_of(second)
    assert balance_of(alice) == balance


def test_each_party_sees_a_banner_that_fits_who_ended(open_browser, alice, guru):
    bob = make_user("bob", balance=100_000, token=False)
    by_user = started_ago(alice, guru, 30)
    by_astrologer = started_ago(bob, guru, 30)
    user_client, user_token = open_browser(alice)
    user_client.post(f"/sessions/{by_user}/end", headers={**HX, "X-CSRF-Token": user_token})
    astrologer_client, astrologer_token = open_browser(guru)
    response = astrologer_client.post(
        f"/sessions/{by_astrologer}/end", headers={**HX, "X-CSRF-Token": astrologer_token}
    )
    assert "You ended the session" in text_of(response)
    assert session_row(by_astrologer).end_reason == "astrologer_ended"
    assert "The user ended the session" in text_of(astrologer_client.get(f"/sessions/{by_user}"))
    bob_client, _ = open_browser(bob)
    assert "The astrologer ended the session" in text_of(
        bob_client.get(f"/sessions/{by_astrologer}")
    )


def test_an_ended_session_keeps_its_history_read_only(open_browser, alice, guru):
    session_id = started_ago(alice, guru, 60)
    client, token = open_browser(alice)
    headers = {"X-CSRF-Token": token}
    client.post(
        f"/sessions/{session_id}/messages", data={"text": "Will I travel?"}, headers=headers
    )
    guru_client, guru_token = open_browser(guru)
    guru_client.post(
        f"/sessions/{session_id}/messages",
        data={"text": "Yes, soon."},
        headers={"X-CSRF-Token": guru_token},
    )
    client.post(f"/sessions/{session_id}/end", headers=headers)
    html = text_of(client.get(f"/sessions/{session_id}"))
    assert "Will I travel?" in html and "Yes, soon." in html
    assert "disabled" in compose_input(html, session_id)
    assert f'href="/sessions/{session_id}/summary"' in html
    assert "data-ticker" not in html and "end-button" not in html
    refused = client.post(
        f"/sessions/{session_id}/messages", data={"text": "One more thing"}, headers=headers
    )
    assert refused.status_code == 409
    assert "One more thing" not in text_of(client.get(f"/sessions/{session_id}"))


def test_the_summary_shows_duration_rate_cost_reason_and_balance_after(open_browser, alice, guru):
    at = utcnow() - timedelta(hours=1)
    session_id = live_session(alice, guru, started_at=at)
    end_as(alice, session_id, at + timedelta(seconds=90, milliseconds=700))
    client, _ = open_browser(alice)
    response = client.get(f"/sessions/{session_id}/summary")
    assert response.status_code == 200
    html = text_of(response)
    assert "1:30" in html and "(90 s)" in html  # duration: whole seconds only
    assert "₹60.00/min" in html  # rate
    assert "₹90.00" in html  # cost: 90 s × 6000 ÷ 60 paise
    assert "user_requested" in html  # reason
    assert "Balance after" in html and "₹910.00" in html
    assert "Guru Dev" in html


def test_the_astrologer_s_summary_leaves_out_the_user_s_balance(open_browser, alice, guru):
    at = utcnow() - timedelta(hours=1)
    session_id = live_session(alice, guru, started_at=at)
    end_as(guru, session_id, at + timedelta(seconds=30))
    client, _ = open_browser(guru)
    html = text_of(client.get(f"/sessions/{session_id}/summary"))
    assert "astrologer_ended" in html and "₹30.00" in html
    assert "Balance after" not in html and "₹970.00" not in html


def test_the_summary_of_a_live_session_sends_back_to_the_session(open_browser, alice, guru):
    session_id = started_ago(alice, guru, 5)
    client, _ = open_browser(alice)
    response = client.get(f"/sessions/{session_id}/summary")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/sessions/{session_id}"


def test_a_stranger_gets_404_for_someone_else_s_session(open_browser, alice, guru):
    session_id = started_ago(alice, guru, 5)
    bob = make_user("bob", balance=10_000, token=False)
    moon = make_astrologer("moon", rate=1000, token=False)
    for stranger in (bob, moon):
        client, token = open_browser(stranger)
        for path in (
            f"/sessions/{session_id}",
            f"/sessions/{session_id}/summary",
            f"/sessions/{session_id}/billing",
            f"/sessions/{session_id}/end/confirm",
            "/sessions/9999",
        ):
            response = client.get(path)
            assert response.status_code == 404, (stranger.role, path)
            assert f'id="session-{session_id}' not in text_of(response)
        ended = client.post(f"/sessions/{session_id}/end", headers={"X-CSRF-Token": token})
        assert ended.status_code == 404
    assert session_row(session_id).status == "active"


def test_chat_text_is_escaped_in_the_page(open_browser, alice, guru, admin):
    session_id = started_ago(alice, guru, 5)
    client, token = open_browser(alice)
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    client.post(
        f"/sessions/{session_id}/messages", data={"text": attack}, headers={"X-CSRF-Token": token}
    )
    admin_client, _ = admin
    for html in (
        text_of(client.get(f"/sessions/{session_id}")),
        text_of(client.get(f"/sessions/{session_id}", headers=HX)),
        text_of(admin_client.get(f"/admin/sessions/{session_id}")),
    ):
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
        assert "<script>alert" not in html and "<img src=x" not in html


def test_a_message_posted_by_htmx_answers_a_fresh_compose_form(open_browser, alice, guru):
    session_id = started_ago(alice, guru, 5)
    client, token = open_browser(alice)
    response = client.post(
        f"/sessions/{session_id}/messages",
        data={"text": "Hello there"},
        headers={**HX, "X-CSRF-Token": token},
    )
    assert response.status_code == 200
    assert text_of(response).strip().startswith(f'<form id="session-{session_id}-compose"')
    assert "Hello there" in text_of(client.get(f"/sessions/{session_id}"))


# ---------------------------------------------------------------- the astrologer's desk


def test_the_astrologer_accepts_a_request_from_the_dashboard(open_browser, alice, guru):
    session_id = request_session(alice, guru)
    client, token = open_browser(guru)
    html = text_of(client.get("/dashboard"))
    assert "alice" in html and f"/sessions/{session_id}/accept" in html
    response = client.post(f"/sessions/{session_id}/accept", headers={**HX, "X-CSRF-Token": token})
    assert response.status_code == 200
    assert session_row(session_id).status == "active"
    user_client, _ = open_browser(alice)
    assert f'id="end-button-{session_id}"' in text_of(user_client.get(f"/sessions/{session_id}"))


def test_the_astrologer_accepts_by_a_plain_form_and_comes_back_to_the_dashboard(
    open_browser, alice, guru
):
    session_id = request_session(alice, guru)
    client, token = open_browser(guru)
    html = text_of(client.get("/dashboard"))
    assert f'method="post" action="/sessions/{session_id}/accept"' in html
    response = client.post(f"/sessions/{session_id}/accept", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    assert session_row(session_id).status == "active"


def test_users_cannot_open_the_dashboard(open_browser, alice):
    client, _ = open_browser(alice)
    assert client.get("/dashboard").status_code == 403


# ---------------------------------------------------------------- admin


def test_the_admin_audit_page_lists_the_end_with_its_reason(alice, guru, admin):
    at = utcnow() - timedelta(hours=1)
    session_id = live_session(alice, guru, started_at=at)
    end_as(alice, session_id, at + timedelta(seconds=90))
    client, _ = admin
    response = client.get("/admin/")
    assert response.status_code == 200
    html = text_of(response)
    row = re.search(
        rf'<tr><td>[^<]*</td><td><a href="/admin/sessions/{session_id}">.*?</tr>', html, re.S
    )
    assert row, "the end is not listed"
    assert "user_requested" in row.group(0) and "₹90.00" in row.group(0)
    detail = text_of(client.get(f"/admin/sessions/{session_id}"))
    assert "ended" in detail and "user_requested" in detail
    found = client.get(f"/admin/?session={session_id}")
    assert found.status_code == 302 and found.headers["Location"] == f"/admin/sessions/{session_id}"


def test_non_admins_get_404_on_admin_pages(open_browser, alice, guru):
    session_id = started_ago(alice, guru, 5)
    for person in (alice, guru):
        client, _ = open_browser(person)
        for path in ("/admin/", f"/admin/sessions/{session_id}"):
            assert client.get(path).status_code == 404, (person.role, path)
