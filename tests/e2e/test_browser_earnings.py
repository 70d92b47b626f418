"""The astrologer's earnings statement in real Chromium (issue 12 part 6): reached from the
dashboard, per day and per session, the figures the server holds, a CSV, a phone's width."""

import csv
import io

import pytest
from playwright.sync_api import expect

from consult.money import rupees
from helpers.browser import PHONE, fits_the_width, make_user, open_as, serious, shot
from helpers.server import Astrologers, ended_session

pytestmark = [pytest.mark.browser, pytest.mark.server]

RATE = 6000  # ₹1.00 a second


def test_the_statement_shows_what_each_session_earned_and_downloads(browser, server, contexts):
    batch = Astrologers(server, count=1, rate=RATE, names="Acharya Rao {n}")
    astrologer = batch.take()
    batch.close()
    user = make_user(server, 50_000)
    session = ended_session(user, astrologer, seconds=2)
    [line] = astrologer.get("/api/me/earnings?by=session").json()
    assert line["key"] == str(session["id"]) and line["netPaise"] > 0

    page = open_as(browser, server, contexts, astrologer, "/dashboard")
    page.get_by_role("link", name="Statement per day and per session").click()
    expect(page.get_by_role("heading", name="Earnings", exact=True)).to_be_visible()
    table = page.get_by_role("region", name="per day")
    expect(table.locator("tfoot [data-field=net]")).to_have_text(rupees(line["netPaise"]))
    page.get_by_label("Per", exact=True).select_option("session")
    page.get_by_role("button", name="Show").click()
    row = page.locator(f'tr[data-key="{session["id"]}"]')
    expect(row).to_contain_text(rupees(line["grossPaise"]))
    expect(row).to_contain_text(rupees(line["commissionPaise"]))
    expect(row.locator("[data-field=net]")).to_have_text(rupees(line["netPaise"]))
    assert serious(page, server) == []
    shot(page, "earnings")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    with open(download.value.path(), encoding="utf-8") as f:
        rows = list(csv.DictReader(io.StringIO(f.read())))
    assert [(r["key"], int(r["netPaise"])) for r in rows] == [(line["key"], line["netPaise"])]

    row.get_by_role("link").click()  # the session's receipt
    expect(page).to_have_url(f"{server.url}/sessions/{session['id']}/summary")
    expect(page.get_by_role("heading", level=1)).to_contain_text(rupees(line["grossPaise"]))

    phone = open_as(
        browser, server, contexts, astrologer, "/dashboard/earnings?by=session", viewport=PHONE
    )
    expect(phone.locator(f'tr[data-key="{session["id"]}"]')).to_be_visible()
    assert fits_the_width(phone)
    shot(phone, "earnings-375")
