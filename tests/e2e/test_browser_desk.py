"""QA-CHECKLIST.md line 16 in real Chromium: the astrologer's availability and incoming requests.

The astrologer sets Busy on the dashboard and the user's astrologer list, already open in
another browser context, shows it at once; a request is refused. Back Online, a request
arriving while the dashboard's tab is hidden rings, raises a browser notification and is
counted in the tab's title. Plus the ratings on the dashboard, axe-core and a phone's width.
"""

import pytest
from playwright.sync_api import Browser, Page, expect

from helpers.browser import (
    axe_violations,
    browser_for,
    make_user,
    open_as,
    open_page,
    open_with_htmx_held,
    shot,
)
from helpers.server import Api, Astrologers, Server, start_session, wait_until

RATE = 6000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.server,
    pytest.mark.astrologers(6, rate=RATE, names="Tara Moon {n}"),
]
TITLE = "Dashboard · Consult"

# Record every notification the page raises instead of showing it (the permission stays the
# browser's own, granted or not by the context).
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.consultNotifications = [];
  function Recorded(title, options) {
    window.consultNotifications.push({title: title, body: options && options.body});
    this.close = function () {};
  }
  Object.defineProperty(Recorded, "permission", {get: () => Real.permission});
  Recorded.requestPermission = () => Real.requestPermission();
  window.Notification = Recorded;
})();
"""

# A browser that has not been asked yet: permission "default" until the page asks.
NOT_ASKED_YET = """
(() => {
  let permission = "default";
  window.consultPermissionRequests = 0;
  function Recorded() {}
  Object.defineProperty(Recorded, "permission", {get: () => permission});
  Recorded.requestPermission = () => {
    window.consultPermissionRequests += 1;
    permission = "granted";
    return Promise.resolve(permission);
  };
  window.Notification = Recorded;
})();
"""

HIDE_THE_TAB = """() => {
  Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
  Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def dashboard(browser: Browser, server: Server, astrologer: Api, contexts, **context_args) -> Page:
    context = browser_for(browser, server, astrologer, **context_args)
    context.add_init_script(RECORD_NOTIFICATIONS)
    contexts.append(context)
    return open_page(context, f"{server.url}/dashboard")


def script_errors(page: Page) -> list[str]:
    """The page's uncaught script errors from now on."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def desk(page: Page):
    return page.get_by_role("region", name="Availability")


def saved_state(page: Page):
    return desk(page).get_by_role("status")


def availability_of(user: Api, astrologer: Api) -> str:
    [entry] = [a for a in user.get("/api/astrologers").json() if a["id"] == astrologer.id]
    return entry["availability"]


def test_a_status_picked_before_the_scripts_ran_is_saved(browser, server, astrologers, contexts):
    """The scripts are deferred: a status picked before htmx has bound its radio is saved once
    it has, not left showing a choice the server never heard. htmx is held back here."""
    user, astrologer = make_user(server), astrologers.take()
    page, release = open_with_htmx_held(browser, server, contexts, astrologer, "/dashboard")
    desk(page).get_by_role("radio", name="Busy").check()
    assert availability_of(user, astrologer) == "online"  # nobody has asked yet
    release()
    expect(saved_state(page)).to_contain_text("Busy")
    assert availability_of(user, astrologer) == "busy"
    assert astrologer.put("/api/me/availability", {"status": "online"}).ok  # as it was


def test_busy_shows_on_the_user_s_list_at_once_and_a_request_rings_and_notifies(
    browser, server, astrologers, contexts
):
    user, astrologer = make_user(server), astrologers.take()
    home = open_as(browser, server, contexts, user, "/")
    card = home.locator(f"#astrologer-{astrologer.id}")
    chat_now = card.get_by_role("button", name="Chat now")
    expect(chat_now).to_be_enabled()

    page = dashboard(browser, server, astrologer, contexts, permissions=["notifications"])
    expect(saved_state(page)).to_contain_text("Online")

    # Busy: saved at once, and the user's list (open all along) greys the card out.
    desk(page).get_by_role("radio", name="Busy").check()
    expect(saved_state(page)).to_contain_text("Busy")
    expect(card).to_contain_text("Busy")
    expect(chat_now).to_be_disabled()
    assert availability_of(user, astrologer) == "busy"
    refused = user.post("/api/sessions", {"astrologerId": astrologer.id})
    assert refused.status_code == 409
    assert refused.json() == {"error": "Astrologer is not available"}
    assert axe_violations(page, server) == []

    # Offline, then Online again: the card follows each change.
    desk(page).get_by_role("radio", name="Offline").check()
    expect(saved_state(page)).to_contain_text("Offline")
    expect(chat_now).to_be_disabled()
    desk(page).get_by_role("radio", name="Online").check()
    expect(saved_state(page)).to_contain_text("Online")
    expect(chat_now).to_be_enabled()
    assert availability_of(user, astrologer) == "online"
    assert page.title() == TITLE

    # The astrologer switches to another tab; a request arrives.
    page.evaluate(HIDE_THE_TAB)
    errors = script_errors(page)
    session_id = user.post("/api/sessions", {"astrologerId": astrologer.id}).json()["id"]
    expect(page.locator(f"#request-{session_id}")).to_contain_text(user.name)
    expect(page).to_have_title(f"(1) {TITLE}")
    assert page.evaluate("() => window.consultRings") == 1
    notifications = page.evaluate("() => window.consultNotifications")
    assert [n["title"] for n in notifications] == ["New chat request"]
    assert user.name in notifications[0]["body"]
    assert errors == []  # the beep too (the clicks above let the page play sound)

    # Nobody answers (this server's requests expire after 3 s): the title stops counting.
    expect(page.locator(f"#request-{session_id}")).to_have_count(0, timeout=10_000)
    expect(page).to_have_title(TITLE)
    assert page.evaluate("() => window.consultRings") == 1


def test_a_request_in_a_visible_tab_rings_without_a_notification(
    browser, server, astrologers, contexts
):
    user, astrologer = make_user(server), astrologers.take()
    page = dashboard(browser, server, astrologer, contexts, permissions=["notifications"])
    page.get_by_role("heading", level=1).click()  # a first interaction: the sound may play
    errors = script_errors(page)
    session_id = user.post("/api/sessions", {"astrologerId": astrologer.id}).json()["id"]
    expect(page.locator(f"#request-{session_id}")).to_be_visible()
    expect(page).to_have_title(f"(1) {TITLE}")
    assert page.evaluate("() => window.consultRings") == 1
    assert page.evaluate("() => window.consultNotifications") == []
    assert errors == []
    # Reloaded with the request still waiting: counted, not rung again.
    page.reload()
    expect(page).to_have_title(f"(1) {TITLE}")
    assert page.evaluate("() => window.consultRings") == 0


def test_notifications_are_asked_for_only_by_the_button(browser, server, astrologers, contexts):
    astrologer = astrologers.take()
    context = browser_for(browser, server, astrologer)
    context.add_init_script(NOT_ASKED_YET)
    contexts.append(context)
    page = open_page(context, f"{server.url}/dashboard")
    button = page.get_by_role("button", name="Enable notifications")
    expect(button).to_be_visible()
    assert page.evaluate("() => window.consultPermissionRequests") == 0  # never on load
    button.click()
    expect(button).to_be_hidden()
    expect(page.get_by_text("You will get a notification while this tab is hidden")).to_be_visible()
    assert page.evaluate("() => window.consultPermissionRequests") == 1


def test_the_chat_limit_saves_with_the_button_and_a_bad_one_is_refused(
    browser, server, astrologers, contexts
):
    astrologer = astrologers.take()
    page = dashboard(browser, server, astrologer, contexts)
    limit = desk(page).get_by_role("spinbutton", name="At most chats at once")
    limit.fill("2")
    desk(page).get_by_role("button", name="Save").click()
    expect(saved_state(page)).to_contain_text("at most 2 at once")
    assert astrologer.get("/api/me").status_code == 200
    limit.fill("")
    desk(page).get_by_role("button", name="Save").click()
    expect(saved_state(page)).to_contain_text("with no limit")
    # The browser's own check stops 0 before it is sent; the server refuses it anyway.
    limit.fill("0")
    desk(page).get_by_role("button", name="Save").click()
    assert limit.evaluate("input => input.validity.rangeUnderflow")
    expect(saved_state(page)).to_contain_text("with no limit")


def rated(user: Api, astrologer: Api, stars: int, comment: str | None) -> None:
    """A session with billed time, ended by the user and rated."""
    session = start_session(user, astrologer)
    wait_until(  # billed time, so the session can be rated
        lambda: user.get("/api/billing/status").json()["elapsedSeconds"] >= 1,
        message="a billed second",
    )
    assert user.post(f"/api/sessions/{session['id']}/end").status_code == 200
    body = {"stars": stars, **({"comment": comment} if comment else {})}
    assert user.put(f"/api/sessions/{session['id']}/rating", body).status_code == 200


@pytest.fixture(scope="module")
def rated_astrologer(server):
    """An astrologer rated by three users (one without a comment), with a chat limit of 3."""
    # Readable names: its dashboard is the README's picture (the module's server is its own).
    batch = Astrologers(
        server, count=1, rate=3500, names="Tara Moonstone", usernames=["tara.moonstone"]
    )
    astrologer = batch.take()
    batch.close()
    meera, arjun, kavya = (make_user(server, username=name) for name in ("meera", "arjun", "kavya"))
    rated(meera, astrologer, 5, "Clear answers about my career, and very kind.")
    rated(arjun, astrologer, 4, None)
    rated(kavya, astrologer, 4, "Helpful, though the session felt short.")
    assert astrologer.put("/api/me/availability", {"status": "online", "maxSessions": 3}).ok
    return astrologer


def a_request_waits(page: Page, server: Server, astrologer: Api, username: str):
    """A new user asks for a chat (it waits 3 s on this server: long enough for a picture)."""
    user = make_user(server, username=username)
    session_id = user.post("/api/sessions", {"astrologerId": astrologer.id}).json()["id"]
    request = page.locator(f"#request-{session_id}")
    expect(request).to_be_visible()
    return request


def test_the_dashboard_shows_the_rating_and_recent_comments(
    browser, server, rated_astrologer, contexts
):
    page = dashboard(
        browser, server, rated_astrologer, contexts, viewport={"width": 1280, "height": 800}
    )
    ratings = page.get_by_role("region", name="Your rating")
    expect(ratings).to_contain_text("4.3")
    expect(ratings).to_contain_text("from 3 ratings")
    comments = ratings.get_by_role("listitem")
    expect(comments).to_have_count(3)
    expect(comments.first).to_contain_text("Helpful, though the session felt short.")
    expect(comments.first.get_by_role("img", name="4 out of 5 stars")).to_be_visible()
    expect(comments.nth(1)).to_contain_text("No comment.")
    expect(comments.last.get_by_role("img", name="5 out of 5 stars")).to_be_visible()
    expect(saved_state(page)).to_contain_text("at most 3 at once")
    a_request_waits(page, server, rated_astrologer, "asha")
    assert axe_violations(page, server) == []
    shot(page, "dashboard-availability", full_page=False)  # the desk's top, as on a laptop


def test_the_desk_fits_a_375px_phone(browser, server, rated_astrologer, contexts):
    page = dashboard(
        browser, server, rated_astrologer, contexts, viewport={"width": 375, "height": 800}
    )
    request = a_request_waits(page, server, rated_astrologer, "rohan")
    for control in (
        desk(page).get_by_role("radio", name="Offline"),
        desk(page).get_by_role("spinbutton", name="At most chats at once"),
        desk(page).get_by_role("button", name="Save"),
        request.get_by_role("button", name="Accept"),
    ):
        box = control.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, f"the page is {width}px wide on a 375px screen"
    assert axe_violations(page, server) == []
    shot(page, "mobile-dashboard-availability")


def test_an_astrologer_at_their_chat_limit_shows_as_busy_at_once(
    browser, server, astrologers, contexts
):
    user, other, astrologer = make_user(server), make_user(server), astrologers.take()
    page = dashboard(browser, server, astrologer, contexts)
    desk(page).get_by_role("spinbutton", name="At most chats at once").fill("1")
    desk(page).get_by_role("button", name="Save").click()
    expect(saved_state(page)).to_contain_text("at most 1 at once")
    card = open_as(browser, server, contexts, other, "/").locator(f"#astrologer-{astrologer.id}")
    expect(card.get_by_role("button", name="Chat now")).to_be_enabled()
    start_session(user, astrologer)
    expect(card).to_contain_text("Busy")
    expect(card.get_by_role("button", name="Chat now")).to_be_disabled()
    refused = other.post("/api/sessions", {"astrologerId": astrologer.id})
    assert refused.status_code == 409
    assert refused.json() == {"error": "Astrologer is not available"}
    assert availability_of(other, astrologer) == "busy"
