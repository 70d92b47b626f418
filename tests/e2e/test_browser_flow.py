"""The whole End Session flow in real Chromium: a user and an astrologer, one context each."""

import re

import pytest
from playwright.sync_api import expect

from helpers.browser import make_user, shot, sign_in, socket_open
from helpers.server import Astrologers, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.server]


def test_user_ends_session_and_both_browsers_show_it(browser, server):
    # Readable names: this test's screenshots are the README's (its module's server is its own).
    user = make_user(server, 50_000, username="asha")
    batch = Astrologers(  # the CLI's create-user
        server, count=1, rate=2000, names="Pandit R. Sharma", usernames=["pandit.sharma"]
    )
    astrologer = batch.take()
    batch.close()
    user_page = sign_in(browser.new_context(), server, user.user["username"])
    astro_page = sign_in(browser.new_context(), server, astrologer.user["username"])
    expect(astro_page).to_have_url(re.compile("/dashboard"))

    user_page.goto(server.url + "/")
    socket_open(user_page)
    card = user_page.get_by_role("listitem").filter(
        has=user_page.get_by_role("heading", name=astrologer.name, exact=True)
    )
    expect(card.get_by_text("Online")).to_be_visible()
    card.get_by_role("button", name="Chat now").click()
    expect(user_page.get_by_text("Waiting for")).to_be_visible()

    astro_page.get_by_role("button", name="Accept").click()
    expect(user_page.get_by_role("button", name="End Session")).to_be_visible()
    socket_open(user_page)

    user_page.get_by_role("textbox", name="Message").fill("Namaste! Will my new job work out?")
    user_page.get_by_role("button", name="Send").click()
    expect(astro_page.get_by_text("Will my new job work out?")).to_be_visible()
    astro_page.get_by_role("textbox", name="Message").fill(
        "The stars look favourable this quarter."
    )
    astro_page.get_by_role("button", name="Send").click()
    expect(user_page.get_by_text("The stars look favourable")).to_be_visible()
    expect(user_page.locator("[data-field=elapsed]").first).not_to_have_text("0:00", timeout=5000)
    shot(user_page, "chat-live-bill")

    user_page.get_by_role("button", name="End Session").click()
    dialog = user_page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(astrologer.name)
    shot(user_page, "end-confirm-modal", full_page=False)
    dialog.get_by_role("button", name="End Session").click()

    expect(user_page.get_by_text("You ended the session")).to_be_visible()
    expect(user_page.get_by_role("textbox", name="Message")).to_be_disabled()
    expect(user_page.get_by_role("button", name="End Session")).to_have_count(0)
    expect(astro_page.get_by_text("The user ended the session")).to_be_visible()
    expect(astro_page.get_by_role("textbox", name="Message")).to_be_disabled()
    shot(user_page, "ended-user")
    shot(astro_page, "ended-astrologer")

    ended = wait_until(
        lambda: user.get("/api/sessions?status=ended").json(), message="the ended session"
    )
    assert user.get("/api/wallet").json()["balancePaise"] == 50_000 - ended[0]["totalCostPaise"]
    user_page.get_by_role("link", name="View summary").click()
    expect(user_page.get_by_role("heading", level=1)).to_have_text(re.compile("₹"))
    shot(user_page, "summary")
