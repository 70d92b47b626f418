"""QA-CHECKLIST.md lines 11-15 in real Chromium: limits, the end flow, reports, make-good.

A user and an astrologer each in a browser context of their own, against a real server;
amounts on the page are checked against the server's figures (the JSON API).
"""

import re

import pytest
from playwright.sync_api import expect

from helpers.browser import checked, make_user, open_as, paise
from helpers.server import create_astrologer, ended_session, start_session, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.server]

RATE = 6000  # ₹1.00 a second


def test_a_spend_cap_set_on_the_card_and_lowered_mid_session_ends_it_on_both_sides(
    browser, server, contexts
):
    """Lines 11 and 12: a cap set before requesting ends the session by itself; lowering it
    mid-session moves the countdown at once on both pages; the cost never passes it."""
    user, astrologer = make_user(server, 50_000), create_astrologer(server, rate=RATE)
    page = open_as(browser, server, contexts, user, "/")
    card = page.locator(f"#astrologer-{astrologer.id}")
    card.get_by_text("Set a limit").click()
    card.get_by_label("Spend at most ₹").fill("60")
    card.get_by_role("button", name="Chat now").click()
    expect(page).to_have_url(re.compile(r"/sessions/\d+$"))
    session_id = int(page.url.rsplit("/", 1)[1])
    assert user.get(f"/api/sessions/{session_id}").json()["maxSpendPaise"] == 6_000
    astrologer.present()  # their app is open: billing runs from the accept (API.md)
    assert astrologer.post(f"/api/sessions/{session_id}/accept").status_code == 200

    bill = page.locator(f"#session-{session_id}-billing")
    expect(bill.locator("[data-field=ends-by]")).to_have_text("at your spend cap")
    astro_page = open_as(browser, server, contexts, astrologer, f"/sessions/{session_id}")
    astro_bill = astro_page.locator(f"#session-{session_id}-billing")
    expect(astro_bill.locator("[data-field=ends-by]")).to_have_text("at the user's spend cap")
    expect(astro_bill.locator("[data-field=limit-note]")).to_contain_text("₹60.00")
    checked(page, server)

    # Lower the cap to ₹8: both countdowns move at once, before any poll could.
    bill.get_by_label("Spend at most ₹").fill("8")
    bill.get_by_role("button", name="Save limits").click()
    expect(astro_bill.locator("[data-field=limit-note]")).to_contain_text("₹8.00", timeout=3_000)
    left = seconds_of(bill.locator("[data-field=left]").first.inner_text())
    assert left <= 8

    for p, words in (
        (page, "Your spend cap was reached"),
        (astro_page, "the user's spend cap was reached"),
    ):
        expect(p.locator("[data-ended-banner]")).to_contain_text(words, timeout=15_000)
    ended = user.get(f"/api/sessions/{session_id}").json()
    assert ended["endReason"] == "spend_cap"
    assert ended["totalCostPaise"] <= 800 == ended["maxSpendPaise"]
    assert ended["totalCostPaise"] == ended["durationSeconds"] * RATE // 60


def seconds_of(text: str) -> int:
    minutes, secs = text.strip().split(":")[-2:]
    return int(minutes) * 60 + int(secs)


def test_the_summary_asks_for_a_rating_that_shows_on_the_card_and_can_change(
    browser, server, contexts
):
    """Line 13: stars and a comment on the summary; the card shows the average; a change
    within 24 hours replaces it."""
    user, astrologer = make_user(server, 50_000), create_astrologer(server, rate=RATE)
    session_id = ended_session(user, astrologer)["id"]
    page = open_as(browser, server, contexts, user, f"/sessions/{session_id}/summary")
    rating = page.locator(f"#session-{session_id}-rating")
    expect(rating).to_contain_text("How was your session")
    star(rating, 4).click()
    rating.get_by_label("Comment").fill("Clear and kind")
    rating.get_by_role("button", name="Send rating").click()
    expect(rating).to_contain_text("your rating is saved")
    assert user.get(f"/api/sessions/{session_id}/rating").json()["stars"] == 4
    checked(page, server, "summary-rating")

    star(rating, 5).click()
    rating.get_by_role("button", name="Update rating").click()
    wait_until(lambda: user.get(f"/api/sessions/{session_id}/rating").json()["stars"] == 5)
    other = make_user(server, 10_000)
    home = open_as(browser, server, contexts, other, "/")
    expect(home.locator(f"#astrologer-{astrologer.id} [data-field=rating]")).to_contain_text(
        "5.0 (1)"
    )


def star(rating, n: int):
    """The star a person clicks (its radio button is visually hidden behind it)."""
    return rating.locator("label", has_text=f"{n} star")


def test_a_report_from_the_summary_is_resolved_and_both_parties_see_the_outcome(
    browser, server, contexts
):
    """Line 14 (the user's side; the admin's pages have their own tests): a report, its
    resolution with a refund, the outcome on both summaries and the wallet statement."""
    user, astrologer = make_user(server, 50_000), create_astrologer(server, rate=RATE)
    session_id = ended_session(user, astrologer)["id"]
    cost = user.get(f"/api/sessions/{session_id}").json()["totalCostPaise"]
    page = open_as(browser, server, contexts, user, f"/sessions/{session_id}/summary")
    page.get_by_role("link", name="Report a problem with this session").click()
    expect(page.get_by_role("heading", name="Report a problem")).to_be_visible()
    checked(page, server)
    page.get_by_label("What went wrong?").select_option("quality")
    page.get_by_label("Tell us more").fill("The answers did not fit my question")
    page.get_by_role("button", name="Send report").click()
    expect(page.locator("[data-field=report-status]")).to_contain_text("Open")

    admin = server_admin(server)
    (report,) = [
        r
        for r in admin.get("/api/admin/reports?status=open").json()
        if r["sessionId"] == session_id
    ]
    refund = cost // 2 or 1
    resolved = admin.post(
        f"/api/admin/reports/{report['id']}/resolve", {"refundPaise": refund, "note": "Half back"}
    )
    assert resolved.status_code == 200, resolved.text

    page.reload()
    expect(page.locator("[data-field=report-status]")).to_contain_text("refunded")
    expect(page.locator("[data-field=refund]")).to_contain_text("Refunded after your report")
    assert paise(page.locator("[data-field=refund]").inner_text()) == refund
    astro_page = open_as(browser, server, contexts, astrologer, f"/sessions/{session_id}/summary")
    expect(astro_page.locator("[data-field=report-status]")).to_contain_text("Half back")
    page.goto(server.url + "/wallet")
    expect(page.get_by_role("link", name=f"Refund for consultation #{session_id}")).to_be_visible()
    assert user.get("/api/wallet").json()["balancePaise"] == 50_000 - cost + refund


def server_admin(server):
    from helpers import PASSWORD
    from helpers.server import token_for, unique

    username = unique("admin")
    server.cli("create-user", username, "--password", PASSWORD, "--role", "admin")
    return token_for(server, username)


def test_an_astrologer_who_walks_out_in_the_first_minute_costs_nothing(
    browser, fresh_server, contexts
):
    """Line 15: the astrologer ends within the first minute; the user's page says so and
    the wallet is whole again at once, and the summary says why."""
    server = fresh_server(MAKE_GOOD_SECONDS=60, MAKE_GOOD_SILENT_ASTROLOGER="true")
    user, astrologer = make_user(server, 50_000), create_astrologer(server, rate=RATE)
    session = start_session(user, astrologer)
    page = open_as(browser, server, contexts, user, f"/sessions/{session['id']}")
    wait_until(lambda: user.get("/api/billing/status").json()["elapsedSeconds"] >= 2)
    assert astrologer.post("/api/sessions/end").status_code == 200
    expect(page.locator("[data-ended-banner]")).to_contain_text("Nothing charged")
    expect(page.locator("#toasts")).to_contain_text("refunded to your wallet")
    expect(page.locator("#wallet-balance")).to_have_text("₹500.00")
    page.get_by_role("link", name="View summary").click()
    expect(page.locator("[data-field=refund]")).to_contain_text("left within the first minute")
    ended = user.get(f"/api/sessions/{session['id']}").json()
    assert ended["refundedPaise"] == ended["totalCostPaise"] > 0
    assert user.get("/api/wallet").json()["balancePaise"] == 50_000
    checked(page, server)
