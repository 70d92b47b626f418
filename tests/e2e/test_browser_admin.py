"""The operator's pages in real Chromium (QA-CHECKLIST lines 14 and 17, the admin's side).

A report resolved with a partial refund from the queue, seen on the user's summary; a
refund from a session's page; two live sessions ended at once from the live console while
both parties' pages are open. Each page is checked with axe (nothing serious) and at a
375 px phone's width; amounts are checked against the server's own figures.
"""

import re

import pytest
from playwright.sync_api import expect

from consult.money import rupees
from helpers.browser import (
    PHONE,
    answered,
    checked,
    fits_the_width,
    make_user,
    open_as,
    paise,
    shot,
)
from helpers.server import ended_session, start_session, wait_until

RATE = 6000  # ₹1.00 a second

pytestmark = [
    pytest.mark.browser,
    pytest.mark.server,
    pytest.mark.astrologers(8, rate=RATE, names="Pandit Sharma {n}"),
]


def typed(amount_paise: int) -> str:
    """Paise as a person types rupees: 150 -> '1.50'."""
    return f"{amount_paise // 100}.{amount_paise % 100:02d}"


# ---------------------------------------------------------------- line 14, the admin's side


@pytest.mark.console_allows(*answered(400), *answered(409))  # refusals the test asks for
def test_a_report_is_resolved_with_a_partial_refund_that_the_users_summary_shows(
    browser, server, astrologers, admin, contexts
):
    user, astrologer = make_user(server, 50_000), astrologers.take()
    session = ended_session(user, astrologer, seconds=4)
    cost = session["totalCostPaise"]
    assert cost >= 400
    r = user.post(
        f"/api/sessions/{session['id']}/report",
        {"category": "quality", "text": "The reading did not answer my question at all."},
    )
    assert r.status_code == 201, r.text
    report_id = r.json()["id"]
    wallet_before = user.get("/api/wallet").json()["balancePaise"]

    page = open_as(browser, server, contexts, admin, "/admin/")
    expect(page.get_by_role("link", name=re.compile("Open reports"))).to_contain_text("1")
    checked(page, server, "admin-index")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    card = page.locator(f"#report-{report_id}")
    expect(card.get_by_role("link", name=f"#{session['id']}")).to_be_visible()
    expect(card).to_contain_text(user.name)
    expect(card).to_contain_text(astrologer.name)
    expect(card).to_contain_text("Quality")
    expect(card).to_contain_text("did not answer my question")
    expect(card).to_contain_text(rupees(cost))
    checked(page, server, "admin-reports")

    # Refused: too many decimals, then more than the session cost. Nothing moves.
    card.get_by_label("Refund in rupees").fill("1.234")
    card.get_by_label("Note").fill("Half back: the reading was generic")
    card.get_by_role("button", name="Refund").click()
    expect(card.get_by_role("alert")).to_contain_text("at most two decimals")
    expect(card.get_by_label("Note")).to_have_value("Half back: the reading was generic")
    card.get_by_label("Refund in rupees").fill(typed(cost + 1))
    card.get_by_role("button", name="Refund").click()
    expect(card.get_by_role("alert")).to_contain_text("cannot add up to more than its cost")
    checked(page, server, "admin-reports-refused", full_page=False)
    assert user.get("/api/wallet").json()["balancePaise"] == wallet_before
    assert user.get(f"/api/sessions/{session['id']}/report").json()["status"] == "open"

    refund = cost // 2
    card.get_by_label("Refund in rupees").fill(typed(refund))
    card.get_by_role("button", name="Refund").click()
    expect(page.locator("#toasts")).to_contain_text(
        f"Report #{report_id} resolved: {rupees(refund)} refunded to {user.name}."
    )
    expect(card).to_have_count(0)  # gone from the open queue
    page.get_by_role("link", name="Resolved").click()
    expect(page.locator(f"#report-{report_id}")).to_contain_text(f"Refunded {rupees(refund)}")

    assert user.get("/api/wallet").json()["balancePaise"] == wallet_before + refund
    seen = user.get(f"/api/sessions/{session['id']}/report").json()
    assert (seen["status"], seen["refundPaise"]) == ("refunded", refund)
    summary = open_as(browser, server, contexts, user, f"/sessions/{session['id']}/summary")
    line = summary.locator("[data-field=refund]")
    expect(line).to_be_visible()
    assert paise(line.inner_text()) == refund

    # The queue and its form fit a phone.
    phone = open_as(
        browser, server, contexts, admin, "/admin/reports?status=resolved", viewport=PHONE
    )
    expect(phone.locator(f"#report-{report_id}")).to_be_visible()
    assert fits_the_width(phone)
    shot(phone, "admin-reports-375")


@pytest.mark.console_allows(*answered(409))  # refusals the test asks for
def test_a_refund_from_the_session_page_counts_once_and_never_passes_the_cost(
    browser, server, astrologers, admin, contexts
):
    user, astrologer = make_user(server, 50_000), astrologers.take()
    session = ended_session(user, astrologer, seconds=3)
    cost = session["totalCostPaise"]
    wallet_before = user.get("/api/wallet").json()["balancePaise"]
    page = open_as(browser, server, contexts, admin, f"/admin/sessions/{session['id']}")
    money = page.locator("#session-money")
    expect(money.locator("[data-field=cost]")).to_have_text(rupees(cost))
    expect(money.locator("[data-field=refunded]")).to_have_text(rupees(0))
    checked(page, server)

    money.get_by_label("Amount in rupees").fill("1")
    money.get_by_label("Note").fill("Goodwill")
    money.get_by_role("button", name="Refund").dblclick()  # one refund, however many clicks
    expect(money.locator("[data-field=refunded]")).to_have_text(rupees(100))
    expect(page.locator("#toasts")).to_contain_text(f"Refunded {rupees(100)}")
    expect(page.get_by_role("region", name="Events")).to_contain_text("refunded")
    page.wait_for_timeout(300)
    assert user.get(f"/api/sessions/{session['id']}").json()["refundedPaise"] == 100

    money.get_by_label("Amount in rupees").fill(typed(cost))  # ₹1 more than is left
    money.get_by_label("Note").fill("All of it")
    money.get_by_role("button", name="Refund").click()
    expect(money.get_by_role("alert")).to_have_text(
        "Refunds of a session cannot add up to more than its cost"
    )
    expect(money.locator("[data-field=refunded]")).to_have_text(rupees(100))
    assert user.get("/api/wallet").json()["balancePaise"] == wallet_before + 100
    shot(page, "admin-session-refund")


# ---------------------------------------------------------------- line 17


def test_ending_two_live_sessions_at_once_reaches_both_parties_open_pages(
    browser, server, astrologers, admin, contexts
):
    pairs = [(make_user(server, 50_000), astrologers.take()) for _ in range(2)]
    sessions = [start_session(user, astrologer)["id"] for user, astrologer in pairs]
    user_pages, astro_pages = [], []
    for (user, astrologer), session_id in zip(pairs, sessions):
        user_pages.append(open_as(browser, server, contexts, user, f"/sessions/{session_id}"))
        astro_pages.append(open_as(browser, server, contexts, astrologer, "/dashboard"))
    wallets = [user.get("/api/wallet").json()["balancePaise"] for user, _ in pairs]

    page = open_as(browser, server, contexts, admin, "/admin/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Live sessions").click()
    expect(page.get_by_role("heading", name="Live sessions")).to_be_visible()
    rows = [page.locator(f"#live-{session_id}") for session_id in sessions]
    for row, (user, astrologer) in zip(rows, pairs):
        expect(row).to_contain_text(user.name)
        expect(row).to_contain_text(astrologer.name)
        expect(row).to_contain_text("₹60.00/min")
    # The figures tick between the server's refreshes.
    elapsed = rows[0].locator("[data-field=elapsed]")
    shown = elapsed.inner_text()
    expect(elapsed).not_to_have_text(shown, timeout=3_000)

    for session_id, (user, astrologer) in zip(sessions, pairs):
        page.get_by_label(
            f"Select session #{session_id}, {user.name} with {astrologer.name}"
        ).check()
    page.get_by_label("Note").fill("Platform maintenance at 14:00")
    # A session starting elsewhere arrives over the socket, and the reload of the table it
    # causes keeps what was ticked.
    newcomer, guru = make_user(server, 50_000), astrologers.take()
    with page.expect_response(re.compile(r"/admin/live\?.*session_id=")):
        third = start_session(newcomer, guru)["id"]
    expect(page.locator(f"#live-{third}")).to_contain_text(newcomer.name)
    for session_id in sessions:
        expect(page.locator(f"#select-{session_id}")).to_be_checked()
    expect(page.locator(f"#select-{third}")).not_to_be_checked()
    checked(page, server, "admin-live")

    page.get_by_role("button", name="End selected").click()
    results = page.get_by_role("status").filter(has_text="Just now")
    for session_id in sessions:
        expect(results).to_contain_text(f"Session #{session_id} ended: ₹")
    expect(page.locator("#toasts")).to_contain_text("Ended 2 of 2 selected sessions.")
    for session_id in sessions:
        expect(page.locator(f"#live-{session_id}")).to_have_count(0)

    for session_id, user_page, astro_page in zip(sessions, user_pages, astro_pages):
        for party_page in (user_page, astro_page):
            banner = party_page.locator(f"#session-{session_id} [data-ended-banner]")
            expect(banner).to_be_visible(timeout=5_000)
            expect(banner).to_contain_text("ended by the platform")
    for (user, _), session_id, wallet in zip(pairs, sessions, wallets):
        ended = user.get(f"/api/sessions/{session_id}").json()
        assert (ended["status"], ended["endReason"]) == ("ended", "admin_ended")
        assert ended["totalCostPaise"] == ended["durationSeconds"] * RATE // 60
        assert user.get("/api/wallet").json()["balancePaise"] == wallet - ended["totalCostPaise"]
        assert [s["id"] for s in user.get("/api/sessions?status=ended").json()] == [session_id]
    expect(page.locator(f"#live-{third}")).to_be_visible()  # not selected: still live
    assert newcomer.post("/api/sessions/end").status_code == 200
    expect(page.locator(f"#live-{third}")).to_have_count(0)  # its end arrives over the socket
    checked(page, server)


def test_the_live_console_fits_a_phone(browser, server, astrologers, admin, contexts):
    user, astrologer = make_user(server, 50_000), astrologers.take()
    session_id = start_session(user, astrologer)["id"]
    open_as(browser, server, contexts, user, f"/sessions/{session_id}")
    open_as(browser, server, contexts, astrologer, "/dashboard")
    detail = open_as(
        browser, server, contexts, admin, f"/admin/sessions/{session_id}", viewport=PHONE
    )
    expect(detail.get_by_role("heading", name="Live bill")).to_be_visible()
    expect(detail.get_by_role("button", name="End session")).to_be_visible()
    checked(detail, server, "admin-session-live-375", phone=True)
    page = open_as(browser, server, contexts, admin, "/admin/live", viewport=PHONE)
    expect(page.locator(f"#live-{session_id}")).to_be_visible()
    expect(page.get_by_role("button", name="End selected")).to_be_visible()
    checked(page, server, "admin-live-375", phone=True)
    page.get_by_label(re.compile(f"Select session #{session_id},")).check()
    page.get_by_label("Note").fill("Cleaning up")
    page.get_by_role("button", name="End selected").click()
    expect(page.get_by_role("status").filter(has_text="Just now")).to_contain_text(
        f"Session #{session_id} ended"
    )
    assert user.get(f"/api/sessions/{session_id}").json()["endReason"] == "admin_ended"


def test_the_live_console_filters_and_shows_a_pause_as_it_happens(
    browser, server, astrologers, admin, contexts
):
    (user, astrologer), (other, elsewhere) = pairs = [
        (make_user(server, 50_000), astrologers.take()) for _ in range(2)
    ]
    mine, theirs = (start_session(u, a)["id"] for u, a in pairs)
    page = open_as(browser, server, contexts, admin, "/admin/live")
    row = page.locator(f"#live-{mine}")
    expect(page.locator(f"#live-{theirs}")).to_be_visible()

    page.get_by_label("Astrologer", exact=True).select_option(label=astrologer.name)
    expect(page.locator(f"#live-{theirs}")).to_have_count(0)
    expect(row).to_contain_text("Running")
    expect(page.locator("#live-sessions [role=status]")).to_have_text(
        re.compile(r"Showing 1 of \d+ live sessions")
    )
    assert f"astrologer={astrologer.id}" in page.url  # a reload keeps the filter

    # The user's app goes away: the pause arrives over the socket, through the filter.
    user.leave()
    expect(row).to_contain_text("Paused")
    expect(row).to_contain_text("user away")
    shot(page, "admin-live-filtered")
    page.get_by_label("Billing", exact=True).select_option("running")
    expect(row).to_have_count(0)
    expect(page.locator("#live-sessions")).to_contain_text("No live session matches the filter.")
    checked(page, server)

    # Not back within the grace, the user's session ends by itself; the other is ended here.
    wait_until(
        lambda: user.get(f"/api/sessions/{mine}").json()["endReason"] == "user_disconnected",
        message="the grace to end the paused session",
    )
    assert other.post("/api/sessions/end").status_code == 200
