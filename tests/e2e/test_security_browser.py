"""Hostile chat text in real Chromium: shown literally, and nothing in it ever runs.

Half the messages are in the page when it loads; the other half arrive over the socket as
out-of-band fragments, which htmx processes (so an unescaped hx-get would fire). Both
parties' browsers watch for dialogs, for requests nobody asked for, and for the text.
"""

import pytest
from playwright.sync_api import expect

from helpers.browser import sign_in
from helpers.hostile import HOSTILE_MESSAGES
from helpers.server import make_account, start_session

pytestmark = [pytest.mark.browser, pytest.mark.server]


class Watch:
    """What a browser context did that nobody asked for: dialogs and stray requests."""

    def __init__(self, context):
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        context.on("request", lambda request: self.requests.append(request.url))

    def page(self, page):
        def dismiss(dialog):
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", dismiss)
        return page

    def stray(self) -> list[str]:
        return [
            url
            for url in self.requests
            if "/admin" in url or "/logout" in url or "evil.example" in url or url.endswith("/x")
        ]


INJECTED_ATTRIBUTES = """(box) => Array.from(box.querySelectorAll('*')).flatMap(el =>
    Array.from(el.attributes).map(a => a.name)
        .filter(n => n.startsWith('on') || n.startsWith('hx-') || n.startsWith('data-hx')
                     || n === 'src' || n === 'href' || n === 'ws-send')
        .map(n => el.tagName + ' ' + n))"""


def test_hostile_chat_text_is_shown_literally_and_nothing_in_it_runs(browser, server):
    user = make_account(server, "user", balance=50_000)
    astrologer = make_account(server, "astrologer", rate=2000)
    session = start_session(user, astrologer)
    sid = session["id"]
    half = len(HOSTILE_MESSAGES) // 2
    speakers = (user, astrologer)

    def post(i, text):
        r = speakers[i % 2].post(f"/api/sessions/{sid}/messages", {"text": text})
        assert r.status_code == 201, r.text

    for i, text in enumerate(HOSTILE_MESSAGES[:half]):
        post(i, text)

    pages, watches = [], []
    for person in (user, astrologer):
        context = browser.new_context()
        watch = Watch(context)
        page = watch.page(sign_in(context, server, person.user["username"]))
        page.goto(f"{server.url}/sessions/{sid}")
        expect(page.locator("body[data-socket=open]")).to_have_count(1)
        pages.append(page)
        watches.append(watch)

    for i, text in enumerate(HOSTILE_MESSAGES[half:], start=half):
        post(i, text)  # these arrive live, as fragments pushed over the socket
    post(len(HOSTILE_MESSAGES), "the last, harmless word")
    expected = [*HOSTILE_MESSAGES, "the last, harmless word"]

    for page, watch in zip(pages, watches, strict=True):
        box = page.locator(f"#session-{sid}-messages")
        expect(box.locator(".message")).to_have_count(len(expected))
        expect(box.locator(".message p").last).to_have_text(expected[-1])
        assert box.locator(".message p").all_text_contents() == expected
        assert box.evaluate(INJECTED_ATTRIBUTES) == []
        assert box.locator("script, img, svg, iframe, a, form, style, object, embed").count() == 0
        assert page.evaluate("window.__xss") is None
        assert page.locator("#main").count() == 1 and page.locator("#toasts").count() == 1
        assert watch.dialogs == []
        assert watch.stray() == [], watch.stray()

    r = user.post("/api/sessions/end")
    assert r.status_code == 200, r.text
    for page, watch in zip(pages, watches, strict=True):
        expect(page.get_by_role("textbox", name="Message")).to_be_disabled()
        assert watch.dialogs == [] and watch.stray() == []
        page.context.close()
