"""Hostile chat text renders as inert text everywhere a message is shown: each party's
pages, the admin's, and the fragments the socket pushes. (In Chromium:
e2e/test_security_browser.py.)"""

import re
from datetime import timedelta
from html.parser import HTMLParser

from consult import chat, consultations, wire
from consult.realtime import Event
from consult.web import render
from helpers.hostile import HOSTILE_MESSAGES
from helpers.inprocess import (
    fresh,
    isolated_client,
    login,
    make_admin,
    pair_with_session,
    services,
    session_row,
    user_obj,
)
from helpers.server import (
    unique,
)

# ---------------------------------------------------------------- hostile chat text


class Markup(HTMLParser):
    """The page's element structure (tags and attribute names) and its text runs."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.structure: list[tuple] = []
        self.texts: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.structure.append((tag, tuple(sorted(name for name, _ in attrs))))
        self.attributes += [(tag, name, value or "") for name, value in attrs]

    def handle_endtag(self, tag):
        self.structure.append(("/" + tag,))

    def handle_data(self, data):
        self.texts.append(data)


def chat_of(texts: list[str]) -> tuple:
    """An ended session between a fresh pair whose chat holds `texts` (posted via the API)."""
    user, astrologer, session_id = pair_with_session("active")
    c = app_client()
    for i, text in enumerate(texts):
        sender = user if i % 2 == 0 else astrologer
        r = c.post(f"/api/sessions/{session_id}/messages", json={"text": text}, headers=sender.auth)
        assert r.status_code == 201, r.get_json()
    s = services()
    # A minute in, so both chats bill (and offer a rating) however fast the posts went.
    at = session_row(session_id).started_at + timedelta(minutes=1)
    consultations.end_by_party(user_obj(user), session_id, at=at, hub=s.hub, policy=s.policy)
    return user, astrologer, session_id


def app_client():
    from flask import current_app

    return isolated_client(current_app._get_current_object())


def rendered_views(app, user, astrologer, admin, session_id) -> dict[str, str]:
    """Every place a chat message is shown as HTML: pages for each party and the admin, and
    the fragment the socket pushes."""
    views = {}
    for who, person in (("user", user), ("astrologer", astrologer), ("admin", admin)):
        browser = isolated_client(app)
        login(browser, person)
        pages = {"page": f"/sessions/{session_id}", "summary": f"/sessions/{session_id}/summary"}
        for page, path in pages.items():
            r = browser.get(path)
            assert r.status_code == 200, (who, path)
            views[f"{who} {page}"] = r.get_data(as_text=True)
    browser = isolated_client(app)
    login(browser, admin)
    views["admin page"] = browser.get(f"/admin/sessions/{session_id}").get_data(as_text=True)
    fresh()
    pushed = []
    for message in chat.history(session_id):
        with app.test_request_context():
            event = Event("chat:message", {"sessionId": session_id, **wire.message(message)})
            pushed.append(render.fragments(user.id, event))
    views["socket fragments"] = "\n".join(pushed)
    return views


def test_hostile_chat_messages_render_as_inert_text_everywhere(app):
    assert len(HOSTILE_MESSAGES) >= 50
    admin = make_admin(unique("ad"))
    benign = [f"message number {i}" for i in range(len(HOSTILE_MESSAGES))]
    calm_user, calm_astrologer, calm_session = chat_of(benign)
    calm = rendered_views(app, calm_user, calm_astrologer, admin, calm_session)
    user, astrologer, session_id = chat_of(HOSTILE_MESSAGES)
    hostile = rendered_views(app, user, astrologer, admin, session_id)

    # The API hands the text back exactly as sent, as JSON.
    r = app_client().get(f"/api/sessions/{session_id}/messages", headers=user.auth)
    assert r.mimetype == "application/json"
    assert [m["text"] for m in r.get_json()] == HOSTILE_MESSAGES

    for view, html in hostile.items():
        # The receipt's digest lists the words a chat used most: its shape follows the words
        # (that is its job), so it is compared as text, not as markup.
        page, control = Markup(without_digest(html)), Markup(without_digest(calm[view]))
        # Same elements and attribute names as the page with harmless messages: nothing
        # the messages said became markup.
        assert page.structure == control.structure, f"{view}: the messages changed the markup"
        for text in HOSTILE_MESSAGES:
            assert text in page.texts, f"{view}: {text!r} is not shown literally"
        for tag, name, value in Markup(html).attributes:  # the digest included
            assert not name.startswith("on"), (view, tag, name)
            assert "/admin" not in value or view.startswith("admin"), (view, tag, name, value)
            assert not value.strip().lower().startswith("javascript:"), (view, tag, name)


def without_digest(html: str) -> str:
    return re.sub(r'<section class="card digest".*?</section>', "", html, flags=re.S)
