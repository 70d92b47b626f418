"""Hindi in real Chromium and over real sockets (issue 13 part 8): the header's switch turns
the pages Hindi and the Devanagari font loads from the app; a session's pushes reach each
party in their own language."""

import re

import pytest
from playwright.sync_api import expect

from helpers.browser import browser_for, make_user, open_page, shot, socket_open
from helpers.server import Astrologers, PlainBrowser, start_session

pytestmark = [pytest.mark.browser, pytest.mark.server]


def fonts_drawing(page, selector: str) -> dict[str, int]:
    """The fonts Chromium drew the element's text with, and how many glyphs each drew
    (DevTools' "rendered fonts")."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable"), cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    text = cdp.send("DOM.describeNode", {"nodeId": node, "depth": 1})["node"]["children"][0]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": text["nodeId"]})["fonts"]
    cdp.detach()
    return {f["familyName"]: f["glyphCount"] for f in fonts}


# Polled, not read once: `document.fonts.ready` can settle before layout has even asked for
# the face (CI saw it resolve with the font still unloaded), so wait for the face itself.
FONT_LOADED = """() => [...document.fonts].some(
    f => f.family.replace(/"/g, "") === "Noto Sans Devanagari" && f.status === "loaded")"""


@pytest.fixture(scope="module")
def batch(server):
    made = Astrologers(server, count=2, rate=2000, names="पंडित राम शर्मा {n}")
    yield made
    made.close()


def test_a_hindi_viewer_and_an_english_one_get_the_same_push_in_their_words(server, batch):
    astrologer, user = batch.take(), make_user(server, 50_000)
    session = start_session(user, astrologer)
    hindi = PlainBrowser(server).sign_in(user.user["username"])
    hindi.http.cookies.set("lang", "hi")
    english = PlainBrowser(server).sign_in(astrologer.user["username"])
    hindi_socket, english_socket = hindi.socket(), english.socket()
    assert user.post(f"/api/sessions/{session['id']}/end").status_code == 200
    pushed_hindi = hindi_socket.wait_for_text("data-ended-banner")
    pushed_english = english_socket.wait_for_text("data-ended-banner")
    assert "सेशन ख़त्म।" in pushed_hindi and "आपने सेशन ख़त्म किया।" in pushed_hindi
    assert "Session ended." in pushed_english and "The user ended the session." in pushed_english
    assert "Session ended." not in pushed_hindi and "सेशन" not in pushed_english


def test_the_switch_turns_the_pages_hindi_with_their_font(browser, server, batch, contexts):
    astrologer = batch.take()
    user = make_user(server, 50_000, username="asha.hi")
    context = browser_for(browser, server, user)
    contexts.append(context)
    page = open_page(context, server.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("button", name="हिन्दी").click()
    expect(page.locator("html")).to_have_attribute("lang", "hi")
    expect(page).to_have_url(server.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("ज्योतिषी से अभी बात करें")
    expect(page.get_by_role("button", name="हिन्दी")).to_have_attribute("aria-pressed", "true")
    page.wait_for_function(FONT_LOADED, timeout=10_000)  # raises if it never loads
    # Drawn with it, not with a system font's boxes: a system font draws the spaces alone.
    for element in ("nav a", "h1"):
        drawn = fonts_drawing(page, element)
        spaces = page.locator(element).first.inner_text().count(" ")
        assert drawn.pop("Noto Sans Devanagari", 0) > 0, element
        assert sum(drawn.values()) <= spaces, (element, drawn)
    socket_open(page)

    # A session in Hindi: the request, the bill, the chat, the end dialog, the receipt.
    card = page.get_by_role("listitem").filter(
        has=page.get_by_role("heading", name=astrologer.name, exact=True)
    )
    card.get_by_role("button", name="अभी चैट करें").click()
    expect(page.get_by_text("के स्वीकार करने का इंतज़ार है")).to_be_visible()
    astrologer.present()
    session_id = int(re.search(r"/sessions/(\d+)", page.url).group(1))
    assert astrologer.post(f"/api/sessions/{session_id}/accept").status_code == 200
    expect(page.get_by_role("button", name="सेशन ख़त्म करें")).to_be_visible()
    socket_open(page)
    page.get_by_role("textbox", name="संदेश").fill("नमस्ते! क्या इस साल नई नौकरी मिलेगी?")
    page.get_by_role("button", name="भेजें").click()
    expect(page.locator(".message.mine")).to_contain_text("नई नौकरी")
    expect(page.locator("[data-field=elapsed]").first).not_to_have_text("0:00", timeout=5000)
    shot(page, "hindi-session")

    desk = browser_for(browser, server, astrologer)
    contexts.append(desk)
    desk.add_cookies([{"name": "lang", "value": "hi", "url": server.url}])
    dashboard = open_page(desk, server.url + "/dashboard")
    expect(dashboard.get_by_role("heading", level=1)).to_contain_text("नमस्ते")
    expect(dashboard.get_by_text("नई नौकरी")).to_be_visible()
    shot(dashboard, "hindi-dashboard")

    page.get_by_role("button", name="सेशन ख़त्म करें").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("यह सेशन ख़त्म करें?")
    dialog.get_by_role("button", name="सेशन ख़त्म करें").click()
    expect(page.get_by_text("आपने सेशन ख़त्म किया।")).to_be_visible()
    page.get_by_role("link", name="सारांश देखें").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("₹"))
    expect(page.get_by_text("रसीद")).to_be_visible()
    shot(page, "hindi-receipt")

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_text("Receipt")).to_be_visible()
