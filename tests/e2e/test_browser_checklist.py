"""QA-CHECKLIST.md, every line, in real Chromium.

A user and an astrologer, each in a browser context of their own, against a real server.
Assertions are about what a person sees (roles, labels, words), and every amount shown is
checked against the server's own figures (the JSON API, read with a bearer token).

Two module-wide sessions keep the suite quick: `active` (a live session both parties watch;
tests on it leave it live) and `ended` (a session the user ended through the dialog, which
the lines about the ended state inspect without changing it). Everything else starts its
own users and session.
"""

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from consult.money import rupees
from helpers.books import ended_events_of, settlements_of
from helpers.browser import (
    REQUEST_LOST,
    SERVER_DOWN,
    answered,
    axe_violations,
    browser_for,
    make_user,
    open_as,
    open_page,
    paise,
    seconds,
    shot,
    socket_open,
)
from helpers.server import Api, Astrologers, Server, start_session, wait_until
from helpers.sockets import delivered

RATE = 6000  # ₹60.00 a minute: ₹1.00 a second, so every figure is easy to check by eye
COMMISSION_PERCENT = 20  # the server's default PLATFORM_COMMISSION_PERCENT

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.astrologers(24, rate=RATE)]


# ---------------------------------------------------------------- the cast


@dataclass
class Live:
    """A session between a user and an astrologer, each watching it in their own browser:
    the user on the session page, the astrologer on the dashboard."""

    server: Server
    user: Api
    astrologer: Api
    session_id: int
    user_context: BrowserContext
    astro_context: BrowserContext
    user_page: Page
    astro_page: Page
    extra: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.server.url}/sessions/{self.session_id}"

    def user_panel(self, page: Page | None = None):
        return (page or self.user_page).locator(f"#session-{self.session_id}")

    def astro_panel(self, page: Page | None = None):
        return (page or self.astro_page).locator(f"#session-{self.session_id}")

    def session(self) -> dict:
        return self.user.get(f"/api/sessions/{self.session_id}").json()

    def wallet(self) -> int:
        return self.user.get("/api/wallet").json()["balancePaise"]

    def bill_status(self) -> dict:
        return self.user.get(f"/api/billing/status?sessionId={self.session_id}").json()


def begin(
    browser: Browser, server: Server, astrologers, made: list, balance=50_000, astro_page=True
) -> Live:
    """Start a session through the API, then open both parties' pages on it (or only the
    user's, for tests about the user's page alone: a page load is the costly part)."""
    user = make_user(server, balance)
    astrologer = astrologers.take()
    session = start_session(user, astrologer)
    user_context = browser_for(browser, server, user)
    astro_context = browser_for(browser, server, astrologer)
    made.extend([user_context, astro_context])
    url = f"{server.url}/sessions/{session['id']}"
    live = Live(
        server=server,
        user=user,
        astrologer=astrologer,
        session_id=session["id"],
        user_context=user_context,
        astro_context=astro_context,
        user_page=open_page(user_context, url),
        astro_page=open_page(astro_context, f"{server.url}/dashboard") if astro_page else None,
    )
    # The pages keep their parties present from here: closing one is a party leaving.
    user.leave()
    if astro_page:
        astrologer.leave()
    return live


@pytest.fixture
def live(browser, server, astrologers, contexts) -> Live:
    return begin(browser, server, astrologers, contexts)


@pytest.fixture
def user_live(browser, server, astrologers, contexts) -> Live:
    """A live session with only the user's page open (the astrologer acts through the API)."""
    return begin(browser, server, astrologers, contexts, astro_page=False)


@pytest.fixture(scope="module")
def active(browser, server, astrologers):
    """A session that stays live for the whole module; tests reload its pages, never end it.

    A spare tab per party keeps both present while a test reloads a page (a party with no
    connection for DISCONNECT_GRACE_SECONDS would end the session)."""
    made: list[BrowserContext] = []
    live = begin(browser, server, astrologers, made)
    open_page(live.user_context, live.url)
    open_page(live.astro_context, f"{server.url}/dashboard")
    yield live
    for context in made:
        context.close()


def reloaded(page: Page, url: str) -> Page:
    """The page afresh (a clean slate on a module-wide session), its socket open."""
    page.goto(url)
    socket_open(page)
    return page


@pytest.fixture(scope="module")
def ended(browser, server, astrologers):
    """A session with a chat both ways, ended by the user through the dialog."""
    made: list[BrowserContext] = []
    live = begin(browser, server, astrologers, made)
    say(live.user_page, live.user_panel(), "Will I travel this year?")
    expect(live.astro_panel().get_by_text("Will I travel this year?")).to_be_visible()
    say(live.astro_page, live.astro_panel(), "Yes: in the spring, to the coast.")
    expect(live.user_panel().get_by_text("Yes: in the spring")).to_be_visible()
    live.extra["wallet_before"] = live.wallet()
    dialog = open_dialog(live.user_page, live.user_panel())
    live.extra["confirmed_at"] = datetime.now(UTC)
    dialog.get_by_role("button", name="End Session").click()
    expect(ended_banner(live.user_panel())).to_be_visible(timeout=3000)
    live.extra["banner_at"] = datetime.now(UTC)
    yield live
    for context in made:
        context.close()


# ---------------------------------------------------------------- what a person does and sees


def say(page: Page, panel, text: str) -> None:
    panel.get_by_role("textbox", name="Message").fill(text)
    panel.get_by_role("button", name="Send").click()


def open_dialog(page: Page, panel):
    panel.get_by_role("button", name="End Session").click()
    dialog = page.get_by_role("dialog", name="End this session?")
    expect(dialog).to_be_visible()
    return dialog


def end_through_dialog(page: Page, panel) -> None:
    open_dialog(page, panel).get_by_role("button", name="End Session").click()


def ended_banner(panel):
    return panel.get_by_role("status").filter(has_text="Session ended.")


def bill(panel):
    return panel.get_by_role("region", name="Live bill")


def toasts(page: Page):
    return page.locator("#toasts [data-toast]")


def wallet_pill(page: Page):
    return page.locator("#wallet-balance")


def facts_of(container) -> dict[str, str]:
    """A <dl>'s terms and definitions, as a person reads them."""
    return container.locator("dl").evaluate(
        "dl => Object.fromEntries([...dl.children].map(d => ["
        "d.querySelector('dt').textContent.trim(), d.querySelector('dd').textContent.trim()]))"
    )


def pump_until(page: Page, condition, timeout: float = 10.0) -> None:
    """Wait for a condition that Playwright's own callbacks (a route handler) make true:
    they only run while the test calls into Playwright, so poll through the page."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the browser"
        page.wait_for_timeout(20)


def assert_settled_once(live: Live, wallet_before: int) -> dict:
    """The session ended once and the wallet paid exactly its settled cost, by the policy."""
    session = live.session()
    assert session["status"] == "ended"
    assert session["totalCostPaise"] == session["durationSeconds"] * RATE // 60
    assert live.wallet() == wallet_before - session["totalCostPaise"]
    ended_sessions = live.user.get("/api/sessions?status=ended").json()
    assert [s["id"] for s in ended_sessions] == [live.session_id]
    one = (
        settlements_of(live.server, live.session_id),
        ended_events_of(live.server, live.session_id),
    )
    assert one == (1, 1), "settled (and recorded as ended) more than once"
    return session


# ---------------------------------------------------------------- checklist, lines 1-10


def test_01_end_button_appears_only_while_the_session_is_active(
    browser, server, astrologers, contexts
):
    user, astrologer = make_user(server), astrologers.take()
    user_context = browser_for(browser, server, user)
    astro_context = browser_for(browser, server, astrologer)
    contexts.extend([user_context, astro_context])
    astro_page = open_page(astro_context, f"{server.url}/dashboard")
    user_page = open_page(user_context, f"{server.url}/")
    expect(user_page.get_by_role("button", name="End Session")).to_have_count(0)

    card = user_page.get_by_role("listitem").filter(
        has=user_page.get_by_role("heading", name=astrologer.name, exact=True)
    )
    card.get_by_role("button", name="Chat now").click()
    expect(user_page.get_by_text(f"Waiting for {astrologer.name} to accept")).to_be_visible()
    socket_open(user_page)
    expect(user_page.get_by_role("button", name="End Session")).to_have_count(0)  # requested

    requests = astro_page.get_by_role("region", name=re.compile("Incoming requests"))
    requests.get_by_role("button", name="Accept").click()
    user_end = user_page.get_by_role("button", name="End Session")
    expect(user_end).to_be_visible()
    expect(user_end).to_be_enabled()
    session_id = int(user_page.locator("[data-session]").get_attribute("data-session"))
    astro_end = astro_page.locator(f"#session-{session_id}").get_by_role(
        "button", name="End Session"
    )
    expect(astro_end).to_be_enabled()

    end_through_dialog(user_page, user_page.locator(f"#session-{session_id}"))
    expect(user_page.get_by_text("You ended the session")).to_be_visible()
    expect(user_page.get_by_role("button", name="End Session")).to_have_count(0)
    expect(astro_end).to_have_count(0)
    reloaded(user_page, f"{server.url}/sessions/{session_id}")
    expect(user_page.get_by_role("button", name="End Session")).to_have_count(0)


def test_02_the_confirmation_shows_the_time_the_amount_spent_and_the_astrologer(active):
    page = reloaded(active.user_page, active.url)
    server_before = active.bill_status()["elapsedSeconds"]
    dialog = open_dialog(page, active.user_panel())
    shown_time, shown_cost = dialog.locator("dl").evaluate(
        "dl => ['elapsed', 'cost'].map(f => dl.querySelector(`[data-field=${f}]`).textContent)"
    )
    server_after = active.bill_status()["elapsedSeconds"]
    expect(dialog.get_by_role("term").filter(has_text="Astrologer")).to_be_visible()
    expect(dialog.get_by_role("definition").first).to_have_text(active.astrologer.name)
    expect(dialog.get_by_role("term").filter(has_text="Session time")).to_be_visible()
    expect(dialog.get_by_role("term").filter(has_text="Spent so far")).to_be_visible()
    # The time shown is the server's (give or take the second that ticked meanwhile), and
    # the amount is that time at the astrologer's rate, to the paisa.
    assert server_before - 1 <= seconds(shown_time) <= server_after + 1
    assert paise(shown_cost) == seconds(shown_time) * RATE // 60
    assert seconds(shown_time) > 0
    dialog.get_by_role("button", name="Continue Session").click()

    # The astrologer's dialog names the user and what has been billed so far.
    astro = reloaded(active.astro_page, f"{active.server.url}/dashboard")
    astro_dialog = open_dialog(astro, active.astro_panel())
    expect(astro_dialog.get_by_role("definition").first).to_have_text(active.user.name)
    expect(astro_dialog).to_contain_text("Billed so far")
    astro_dialog.get_by_role("button", name="Continue Session").click()
    expect(astro.get_by_role("dialog")).to_have_count(0)


def test_03_continue_session_closes_the_modal_and_billing_goes_on(active):
    page = reloaded(active.user_page, active.url)
    ends = []
    page.on("request", lambda r: ends.append(r.url) if r.method == "POST" else None)
    panel = active.user_panel()
    dialog = open_dialog(page, panel)
    elapsed_then = active.bill_status()["elapsedSeconds"]
    dialog.get_by_role("button", name="Continue Session").click()

    expect(page.get_by_role("dialog")).to_have_count(0)
    end_button = panel.get_by_role("button", name="End Session")
    expect(end_button).to_be_enabled()
    timer = bill(panel).locator("[data-field=elapsed]")
    shown = timer.text_content()
    expect(timer).not_to_have_text(shown)  # the clock ticks on
    wait_until(lambda: active.bill_status()["elapsedSeconds"] > elapsed_then, message="billing")
    assert active.session()["status"] == "active"
    assert ends == []  # nothing was sent


def test_04_the_session_ends_the_moment_the_user_confirms(ended):
    session = ended.session()
    assert session["status"] == "ended" and session["endReason"] == "user_requested"
    ended_at = datetime.fromisoformat(session["endedAt"])
    # Billing stopped between the click and the banner: at the confirmation, not later.
    assert ended.extra["confirmed_at"] - timedelta(seconds=1) <= ended_at
    assert ended_at <= ended.extra["banner_at"]
    assert ended.extra["banner_at"] - ended.extra["confirmed_at"] < timedelta(seconds=3)
    expect(ended.user_panel().get_by_text("Ended", exact=True)).to_be_visible()  # the badge


def test_05_billing_stops_and_the_wallet_shows_the_balance_minus_the_settled_cost(ended):
    session = assert_settled_once(ended, ended.extra["wallet_before"])
    cost = session["totalCostPaise"]
    assert cost > 0
    balance = ended.extra["wallet_before"] - cost
    expect(wallet_pill(ended.user_page)).to_have_text(rupees(balance))
    expect(ended_banner(ended.user_panel())).to_contain_text(f"Charged {rupees(cost)}")
    # The wallet page tells the same story, line by line.
    wallet = ended.user_context.new_page()
    wallet.goto(f"{ended.server.url}/wallet")
    balance_card = wallet.get_by_role("region", name="Balance")
    expect(balance_card).to_contain_text(rupees(balance))
    row = wallet.get_by_role("row").filter(has_text=f"Consultation #{ended.session_id}")
    expect(row).to_contain_text(f"-{rupees(cost)}")
    wallet.close()
    # Billing has stopped for good: nothing moved while we looked.
    assert ended.session()["totalCostPaise"] == cost
    assert ended.wallet() == balance
    assert ended.user.get(f"/api/billing/status?sessionId={ended.session_id}").status_code == 404


def test_06_the_astrologer_is_told_that_the_user_ended_the_session(ended):
    panel = ended.astro_panel()
    expect(ended_banner(panel)).to_contain_text("The user ended the session")
    notice = toasts(ended.astro_page)
    expect(notice).to_have_count(1)
    expect(notice).to_have_role("status")
    expect(notice).to_contain_text(f"{ended.user.name} ended the session")


def test_07_the_user_sees_an_ended_banner_that_fits_the_reason(ended):
    banner = ended_banner(ended.user_panel())
    expect(banner).to_be_visible()
    cost = ended.session()["totalCostPaise"]
    expect(banner).to_have_text(
        re.compile(rf"You ended the session\. Charged {re.escape(rupees(cost))}")
    )
    expect(banner.get_by_role("link", name="View summary")).to_be_visible()


def test_08_the_chat_is_read_only_for_both_and_the_server_refuses_a_message(ended):
    for panel in (ended.user_panel(), ended.astro_panel()):
        expect(panel.get_by_role("textbox", name="Message")).to_be_disabled()
        expect(panel.get_by_role("button", name="Send")).to_be_disabled()
    # Someone forces the form open in another tab and sends anyway: the socket refuses it.
    page = open_page(ended.user_context, ended.url)
    compose = page.locator(f"#session-{ended.session_id}-compose")
    compose.evaluate(
        "f => { f.removeAttribute('aria-disabled');"
        " f.querySelectorAll('[disabled]').forEach(e => { e.disabled = false; }); }"
    )
    say(page, compose, "One more question, please")
    refusal = toasts(page)
    expect(refusal).to_have_role("alert")
    expect(refusal).to_contain_text("Session has ended")
    expect(page.get_by_role("log").get_by_text("One more question")).to_have_count(0)
    page.close()
    # And so does the API.
    r = ended.user.post(f"/api/sessions/{ended.session_id}/messages", {"text": "And another"})
    assert r.status_code == 409 and r.json() == {"error": "Session has ended"}
    texts = [m["text"] for m in ended.user.get(f"/api/sessions/{ended.session_id}/messages").json()]
    assert texts == ["Will I travel this year?", "Yes: in the spring, to the coast."]


def test_09_no_bill_is_shown_for_an_ended_session_and_the_history_stays(ended):
    for panel in (ended.user_panel(), ended.astro_panel()):
        expect(bill(panel)).to_have_count(0)
        expect(panel.get_by_text(re.compile("Spent so far|Billed so far|Time left"))).to_have_count(
            0
        )
        log = panel.get_by_role("log")
        expect(log.get_by_text("Will I travel this year?")).to_be_visible()
        expect(log.get_by_text("Yes: in the spring, to the coast.")).to_be_visible()
    # A fresh load of the page shows the same.
    page = open_page(ended.user_context, ended.url)
    expect(bill(ended.user_panel(page))).to_have_count(0)
    expect(page.get_by_role("log").get_by_text("Will I travel this year?")).to_be_visible()
    page.close()


def test_10_the_summary_is_a_receipt_that_matches_the_server(ended):
    page = open_page(ended.user_context, ended.url)
    ended_banner(ended.user_panel(page)).get_by_role("link", name="View summary").click()
    expect(page).to_have_url(re.compile(rf"/sessions/{ended.session_id}/summary$"))
    summary = ended.user.get(f"/api/sessions/{ended.session_id}/summary").json()
    receipt = page.get_by_role("article", name=re.compile(r"₹"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(rupees(summary["totalCostPaise"]))

    facts = facts_of(receipt)
    duration = summary["durationSeconds"]
    assert f"({duration} s)" in facts["Billed time"]
    assert facts["Rate"].startswith(rupees(RATE) + "/min")
    assert facts["Cost"] == rupees(summary["totalCostPaise"])
    assert facts["Reason"].startswith("Ended by the user")
    assert facts["Balance after"] == rupees(summary["balanceAfterPaise"])
    assert summary["balanceAfterPaise"] == ended.wallet()
    assert facts["Ended by"] == ended.user.name
    assert facts["Astrologer"] == ended.astrologer.name
    expect(page.get_by_role("region", name="Transcript")).to_contain_text("Will I travel")
    shot(page, "summary-receipt")
    page.close()

    # The astrologer's copy shows their earnings after commission, not the user's balance.
    astro = ended.astro_context.new_page()
    astro.goto(f"{ended.server.url}/sessions/{ended.session_id}/summary")
    cost = summary["totalCostPaise"]
    earned = cost - cost * COMMISSION_PERCENT // 100
    assert facts_of(astro.get_by_role("article"))["Your earnings"].startswith(rupees(earned))
    expect(astro.get_by_text("Balance after")).to_have_count(0)
    astro.close()


# ---------------------------------------------------------------- UI states


def test_state_active_end_enabled_timer_and_cost_tick_input_enabled(active):
    page = reloaded(active.user_page, active.url)
    panel = active.user_panel()
    expect(panel.get_by_role("button", name="End Session")).to_be_enabled()
    expect(panel.get_by_role("textbox", name="Message")).to_be_enabled()
    for name in ("elapsed", "cost"):
        figure = bill(panel).locator(f"[data-field={name}]")
        expect(figure).not_to_have_text(figure.text_content())
    shot(page, "chat-active")


def test_state_ending_shows_a_spinner_closes_the_modal_and_sends_one_request(user_live):
    page, panel = user_live.user_page, user_live.user_panel()
    held = []
    page.route("**/sessions/*/end", lambda route: held.append(route))
    end_through_dialog(page, panel)
    pump_until(page, lambda: len(held) == 1)

    button = page.locator(f"#end-button-{user_live.session_id}")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(button).to_be_disabled()
    expect(button).to_have_accessible_name("Ending…")
    expect(button.locator(".spinner")).to_be_visible()
    shot(page, "ending", full_page=False)
    held[0].continue_()
    banner = ended_banner(panel)
    expect(banner).to_contain_text("You ended the session")
    expect(banner).to_be_focused()  # the End button is gone: focus lands on what happened
    assert len(held) == 1


def test_state_ended_banner_input_disabled_no_bill_history_visible(ended):
    for panel, words in (
        (ended.user_panel(), "You ended the session"),
        (ended.astro_panel(), "The user ended the session"),
    ):
        expect(ended_banner(panel)).to_contain_text(words)
        expect(panel.get_by_role("textbox", name="Message")).to_be_disabled()
        expect(bill(panel)).to_have_count(0)
        expect(panel.get_by_role("log").get_by_text("Will I travel")).to_be_visible()


# ---------------------------------------------------------------- every end reason, both sides


def test_reason_user_requested_seen_from_both_sides(ended):
    cost = rupees(ended.session()["totalCostPaise"])
    expect(ended_banner(ended.user_panel())).to_contain_text(
        f"You ended the session. Charged {cost}"
    )
    expect(ended_banner(ended.astro_panel())).to_contain_text(
        f"The user ended the session. Billed {cost}"
    )


def test_reason_insufficient_balance_seen_from_both_sides(browser, server, astrologers, contexts):
    user, astrologer = make_user(server, 400), astrologers.take()  # ₹4.00: four seconds
    user_context = browser_for(browser, server, user)
    astro_context = browser_for(browser, server, astrologer)
    contexts.extend([user_context, astro_context])
    astro_page = open_page(astro_context, f"{server.url}/dashboard")
    session_id = user.post("/api/sessions", {"astrologerId": astrologer.id}).json()["id"]
    user_page = open_page(user_context, f"{server.url}/sessions/{session_id}")
    assert astrologer.post(f"/api/sessions/{session_id}/accept").status_code == 200
    user_panel = user_page.locator(f"#session-{session_id}")

    # The countdown runs down and turns into a nudge with a one-click recharge...
    nudge = user_panel.get_by_role("alert").filter(has_text="Your balance is running low")
    expect(nudge).to_be_visible(timeout=5000)
    expect(nudge.get_by_role("button", name=re.compile("Add ₹200"))).to_be_enabled()
    # ...and, unheeded, the session ends when the money does.
    expect(ended_banner(user_panel)).to_contain_text("Your balance ran out", timeout=8000)
    expect(ended_banner(user_page.locator(f"#session-{session_id}"))).to_contain_text(
        "Charged ₹4.00"
    )
    expect(ended_banner(astro_page.locator(f"#session-{session_id}"))).to_contain_text(
        "the user's balance ran out"
    )
    session = user.get(f"/api/sessions/{session_id}").json()
    assert session["endReason"] == "insufficient_balance"
    assert session["totalCostPaise"] == 400  # every paisa, never more
    assert user.get("/api/wallet").json()["balancePaise"] == 0
    expect(wallet_pill(user_page)).to_have_text("₹0.00")
    expect(ended_banner(user_panel).get_by_role("link", name="Recharge")).to_be_visible()
    shot(user_page, "ended-balance-ran-out")


def test_reason_user_disconnected_seen_from_both_sides(browser, live, contexts):
    live.user_context.close()  # the user's only tab goes away
    astro_banner = ended_banner(live.astro_panel())
    expect(astro_banner).to_contain_text("The user disconnected", timeout=10_000)
    session = live.session()
    assert session["endReason"] == "user_disconnected"

    # On their return, the user finds the session ended, and why.
    page = open_as(browser, live.server, contexts, live.user, f"/sessions/{live.session_id}")
    banner = ended_banner(live.user_panel(page))
    expect(banner).to_contain_text("disconnected too long")
    expect(banner).to_contain_text(f"Charged {rupees(session['totalCostPaise'])}")
    expect(live.user_panel(page).get_by_role("textbox", name="Message")).to_be_disabled()
    expect(astro_banner).to_contain_text(f"Billed {rupees(session['totalCostPaise'])}")


def test_reason_astrologer_ended_seen_from_both_sides(live):
    before = live.wallet()
    dialog = open_dialog(live.astro_page, live.astro_panel())
    expect(dialog).to_contain_text(live.user.name)
    dialog.get_by_role("button", name="End Session").click()
    expect(ended_banner(live.astro_panel())).to_contain_text("You ended the session")
    user_banner = ended_banner(live.user_panel())
    expect(user_banner).to_contain_text("The astrologer ended the session")
    session = assert_settled_once(live, before)
    assert session["endReason"] == "astrologer_ended"
    expect(user_banner).to_contain_text(f"Charged {rupees(session['totalCostPaise'])}")
    expect(ended_banner(live.astro_panel())).to_contain_text(
        f"Billed {rupees(session['totalCostPaise'])}"
    )
    expect(toasts(live.user_page)).to_have_count(0)  # no "user ended" notice to anybody
    expect(toasts(live.astro_page)).to_have_count(0)


@pytest.mark.console_allows(*SERVER_DOWN)
def test_reason_system_error_seen_from_both_sides(browser, fresh_server, contexts):
    first = fresh_server()
    batch = Astrologers(first, count=1, rate=RATE)
    astrologer = batch.take()
    batch.close()
    user = make_user(first)
    session_id = start_session(user, astrologer)["id"]
    user_context = browser_for(browser, first, user)
    astro_context = browser_for(browser, first, astrologer)
    contexts.extend([user_context, astro_context])
    user_page = open_page(user_context, f"{first.url}/sessions/{session_id}")
    astro_page = open_page(astro_context, f"{first.url}/dashboard")
    timer = bill(user_page.locator(f"#session-{session_id}")).locator("[data-field=elapsed]")
    expect(timer).not_to_have_text(re.compile(r"^0:0[01]$"))  # two seconds or more billed

    first.stop(kill=True)  # a crash, mid-session
    expect(user_page.get_by_text("Reconnecting to Consult")).to_be_visible()
    restarted = Server(first.database_url, first.settings).start()
    try:
        user_page.goto(f"{restarted.url}/sessions/{session_id}")
        astro_page.goto(f"{restarted.url}/dashboard")
        user_banner = ended_banner(user_page.locator(f"#session-{session_id}"))
        expect(user_banner).to_contain_text("technical problem", timeout=15_000)
        astro_banner = ended_banner(astro_page.locator(f"#session-{session_id}"))
        expect(astro_banner).to_contain_text("technical problem", timeout=5000)

        user_api = Api(restarted, user.token, user.user)
        session = user_api.get(f"/api/sessions/{session_id}").json()
        assert session["endReason"] == "system_error"
        cost = session["totalCostPaise"]
        assert cost == session["durationSeconds"] * RATE // 60 and cost >= 200
        assert user_api.get("/api/wallet").json()["balancePaise"] == 50_000 - cost
        expect(user_banner).to_contain_text(f"Charged {rupees(cost)}")
        expect(astro_banner).to_contain_text(f"Billed {rupees(cost)}")
    finally:
        restarted.stop(kill=True)


# ---------------------------------------------------------------- errors


@pytest.mark.console_allows(*answered(409))
def test_error_ending_when_no_session_is_active_says_so(user_live):
    # A second tab whose socket reaches nobody: it will not hear that the session ended.
    stale = user_live.user_context.new_page()
    stale.route_web_socket(re.compile(r"/ws$"), lambda ws: None)
    stale.goto(user_live.url)
    socket_open(stale)
    assert user_live.astrologer.post(f"/api/sessions/{user_live.session_id}/end").status_code == 200
    expect(ended_banner(user_live.user_panel())).to_contain_text("The astrologer ended the session")

    stale_panel = user_live.user_panel(stale)
    stale_panel.get_by_role("button", name="End Session").click()
    error = toasts(stale)
    expect(error).to_have_role("alert")
    expect(error).to_contain_text("No active session found to end")
    expect(stale.get_by_role("dialog")).to_have_count(0)
    # The stale tab then re-syncs to the truth.
    expect(ended_banner(stale_panel)).to_contain_text("The astrologer ended the session")
    expect(stale_panel.get_by_role("button", name="End Session")).to_have_count(0)
    # A program asking to end "my active session" hears the same.
    r = user_live.user.post("/api/sessions/end")
    assert r.status_code == 404 and r.json() == {"error": "No active session found to end"}


@pytest.mark.console_allows(*REQUEST_LOST)
def test_error_network_drop_while_confirming_is_told_and_a_retry_charges_once(user_live):
    page, panel = user_live.user_page, user_live.user_panel()
    before = user_live.wallet()
    dialog = open_dialog(page, panel)
    user_live.user_context.set_offline(True)
    dialog.get_by_role("button", name="End Session").click()

    error = page.get_by_role("alert").filter(has_text="couldn't reach Consult")
    expect(error).to_be_visible()
    expect(error).to_contain_text("never be charged twice")
    expect(page.get_by_role("status").filter(has_text="Reconnecting")).to_be_visible()
    expect(panel.get_by_role("button", name="End Session")).to_be_enabled()  # not stuck
    assert user_live.session()["status"] == "active"

    user_live.user_context.set_offline(False)
    socket_open(page)
    expect(page.get_by_text("Reconnecting to Consult")).to_be_hidden()
    end_through_dialog(page, panel)
    expect(ended_banner(panel)).to_contain_text("You ended the session")
    session = assert_settled_once(user_live, before)
    expect(ended_banner(panel)).to_contain_text(f"Charged {rupees(session['totalCostPaise'])}")
    expect(wallet_pill(page)).to_have_text(rupees(user_live.wallet()))


@pytest.mark.console_allows(*REQUEST_LOST)
def test_error_answer_lost_after_the_server_ended_the_session_retry_charges_once(user_live):
    page, panel = user_live.user_page, user_live.user_panel()
    before = user_live.wallet()

    def lose_the_answer(route):
        route.fetch()  # the server ends the session...
        route.abort()  # ...and the answer is lost on the way back

    page.route("**/sessions/*/end", lose_the_answer, times=1)
    end_through_dialog(page, panel)
    # The socket still brings the truth (and, if the failure is noticed first, a notice
    # that the answer did not arrive): the page shows what the server settled.
    expect(ended_banner(panel)).to_contain_text("You ended the session")
    expect(panel.get_by_text("Ended", exact=True)).to_be_visible()
    session = assert_settled_once(user_live, before)

    # The retry a client would send answers the settled session and charges nothing more.
    csrf = json.loads(page.locator("body").get_attribute("hx-headers"))["X-CSRF-Token"]
    retry = page.request.post(
        f"{user_live.url}/end", headers={"X-CSRF-Token": csrf, "HX-Request": "true"}
    )
    assert retry.status == 200 and "You ended the session" in retry.text()
    assert assert_settled_once(user_live, before) == session


@pytest.mark.console_allows(*answered(404))
def test_error_an_invalid_or_foreign_session_id_gets_a_way_back(
    browser, server, astrologers, contexts
):
    owner, stranger, astrologer = make_user(server), make_user(server), astrologers.take()
    foreign = start_session(owner, astrologer)["id"]
    context = browser_for(browser, server, stranger)
    contexts.append(context)
    page = context.new_page()
    for path in (
        f"/sessions/{foreign}",
        f"/sessions/{foreign}/summary",
        "/sessions/987654",
        "/sessions/not-a-number",
    ):
        response = page.goto(server.url + path)
        assert response.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_have_text("We couldn't find that")
        expect(page.get_by_role("main")).to_contain_text(re.compile("Session not found|Not found"))
        expect(page.locator(f"#session-{foreign}")).to_have_count(0)
        expect(page.get_by_role("link", name="My sessions").last).to_be_visible()
    shot(page, "error-not-found", full_page=False)
    page.get_by_role("link", name="Back to Consult").click()
    expect(page).to_have_url(f"{server.url}/")
    expect(page.get_by_role("heading", name="Talk to an astrologer, live")).to_be_visible()
    assert owner.get(f"/api/sessions/{foreign}").json()["status"] == "active"


def test_error_double_click_on_end_sends_one_request_and_charges_once(user_live):
    page, panel = user_live.user_page, user_live.user_panel()
    before = user_live.wallet()
    sent = []
    page.on(
        "request",
        lambda r: sent.append((r.method, r.url.rsplit("/", 2)[-2:])) if "/end" in r.url else None,
    )
    panel.get_by_role("button", name="End Session").dblclick()
    dialog = page.get_by_role("dialog", name="End this session?")
    expect(dialog).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(1)
    dialog.get_by_role("button", name="End Session").dblclick()
    expect(ended_banner(panel)).to_contain_text("You ended the session")
    assert_settled_once(user_live, before)
    confirms = [s for s in sent if s == ("GET", ["end", "confirm"])]
    ends = [s for s in sent if s[0] == "POST"]
    assert len(confirms) == 1 and len(ends) == 1, sent


def test_error_a_repeated_confirmation_is_dropped_while_the_first_is_in_flight(user_live):
    page = user_live.user_page
    before = user_live.wallet()
    held = []
    page.route("**/sessions/*/end", lambda route: held.append(route))
    # Two confirmations in one go, as a bouncing key or a frantic tap would send them.
    page.locator(f"#end-form-{user_live.session_id}").evaluate(
        "form => { htmx.trigger(form, 'confirmed'); htmx.trigger(form, 'confirmed'); }"
    )
    pump_until(page, lambda: len(held) >= 1)
    held[0].continue_()
    expect(ended_banner(user_live.user_panel())).to_contain_text("You ended the session")
    assert len(held) == 1  # a second request would have been held too, and nothing ended it
    assert_settled_once(user_live, before)


def test_error_two_tabs_of_the_same_user_both_show_the_end(live):
    before = live.wallet()
    second = open_page(live.user_context, live.url)
    end_through_dialog(live.user_page, live.user_panel())
    session = assert_settled_once(live, before)
    for page in (live.user_page, second):
        panel = live.user_panel(page)
        expect(ended_banner(panel)).to_contain_text("You ended the session")
        expect(panel.get_by_role("textbox", name="Message")).to_be_disabled()
        expect(bill(panel)).to_have_count(0)
        expect(wallet_pill(page)).to_have_text(rupees(before - session["totalCostPaise"]))
    expect(toasts(live.astro_page)).to_have_count(1)  # one notice, however many tabs


def test_error_user_and_astrologer_ending_at_the_same_moment_end_it_once(live):
    before = live.wallet()
    user_socket, astro_socket = live.user.socket(), live.astrologer.socket()
    try:
        held = []
        for page in (live.user_page, live.astro_page):
            page.route("**/sessions/*/end", lambda route: held.append(route))
        end_through_dialog(live.user_page, live.user_panel())
        end_through_dialog(live.astro_page, live.astro_panel())
        pump_until(live.user_page, lambda: len(held) == 2)
        for route in held:  # both requests reach the server together
            route.continue_()

        for panel in (live.user_panel(), live.astro_panel()):
            expect(ended_banner(panel)).to_have_count(1)
        session = assert_settled_once(live, before)
        by_user = session["endReason"] == "user_requested"
        assert session["endReason"] in ("user_requested", "astrologer_ended")
        delivered(live.server, user_socket, astro_socket)
        assert user_socket.count("consult:ended") == 1
        assert astro_socket.count("consult:ended") == 1
        assert astro_socket.count("session:ended-by-user") == (1 if by_user else 0)
        expect(toasts(live.astro_page)).to_have_count(1 if by_user else 0)
        expect(toasts(live.user_page)).to_have_count(0)
    finally:
        user_socket.drop()  # no close handshake to wait for: the session is over
        astro_socket.drop()


# ---------------------------------------------------------------- without JavaScript


def test_without_javascript_the_forms_request_accept_chat_and_end_with_a_confirmation(
    browser, server, astrologers, contexts
):
    user, astrologer = make_user(server), astrologers.take()
    before = user.get("/api/wallet").json()["balancePaise"]
    user_context = browser_for(browser, server, user, java_script_enabled=False)
    astro_context = browser_for(browser, server, astrologer, java_script_enabled=False)
    contexts.extend([user_context, astro_context])
    user_page, astro_page = user_context.new_page(), astro_context.new_page()

    user_page.goto(f"{server.url}/")
    card = user_page.get_by_role("listitem").filter(
        has=user_page.get_by_role("heading", name=astrologer.name, exact=True)
    )
    card.get_by_role("button", name="Chat now").click()
    expect(user_page.get_by_text(f"Waiting for {astrologer.name} to accept")).to_be_visible()
    session_id = int(user_page.locator("[data-session]").get_attribute("data-session"))
    url = f"{server.url}/sessions/{session_id}"
    expect(user_page).to_have_url(url)

    # A page without scripts holds no socket, and billing runs only while both parties hold
    # one (API.md, "Presence and billing"): their apps, open elsewhere, keep them present.
    user.present(), astrologer.present()
    astro_page.goto(f"{server.url}/dashboard")
    requests = astro_page.get_by_role("region", name=re.compile("Incoming requests"))
    requests.get_by_role("button", name="Accept").click()
    expect(astro_page).to_have_url(f"{server.url}/dashboard")
    expect(requests).to_contain_text("No requests right now")
    expect(bill(astro_page.get_by_role("region", name=user.name))).to_be_visible()

    user_page.goto(url)
    panel = user_page.locator(f"#session-{session_id}")
    say(user_page, panel, "Can you read me without scripts?")
    expect(user_page).to_have_url(url)  # the form posted, and the page came back
    expect(panel.get_by_role("log")).to_contain_text("Can you read me without scripts?")
    messages = user.get(f"/api/sessions/{session_id}/messages").json()
    assert [m["text"] for m in messages] == ["Can you read me without scripts?"]

    # The End button opens a confirmation page; Continue Session goes back, still live.
    panel.get_by_role("button", name="End Session").click()
    expect(user_page).to_have_url(re.compile(rf"/sessions/{session_id}/end/confirm\??$"))
    confirmation = user_page.get_by_role("region", name="End this session?")
    expect(confirmation.get_by_role("definition").first).to_have_text(astrologer.name)
    confirmation.get_by_role("link", name="Continue Session").click()
    expect(user_page).to_have_url(url)
    assert user.get(f"/api/sessions/{session_id}").json()["status"] == "active"

    panel.get_by_role("button", name="End Session").click()
    user_page.get_by_role("button", name="End Session").click()  # on the confirmation page
    expect(user_page).to_have_url(url)
    expect(ended_banner(panel)).to_contain_text("You ended the session")
    expect(panel.get_by_role("textbox", name="Message")).to_be_disabled()
    expect(bill(panel)).to_have_count(0)
    session = user.get(f"/api/sessions/{session_id}").json()
    assert session["status"] == "ended" and session["endReason"] == "user_requested"
    assert user.get("/api/wallet").json()["balancePaise"] == before - session["totalCostPaise"]
    expect(wallet_pill(user_page)).to_have_text(rupees(before - session["totalCostPaise"]))

    astro_page.reload()
    astro_panel = astro_page.locator(f"#session-{session_id}")
    expect(ended_banner(astro_panel)).to_contain_text("The user ended the session")
    expect(astro_panel.get_by_role("log")).to_contain_text("Can you read me without scripts?")
    for page in (user_page, astro_page):  # no script ran: app.js marks the socket's state
        expect(page.locator("body[data-socket]")).to_have_count(0)


# ---------------------------------------------------------------- reconnecting


def test_reconnect_says_so_and_re_syncs_to_an_end_that_happened_meanwhile(live):
    page = live.user_page
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    live.user_context.set_offline(True)
    notice = page.get_by_role("status").filter(has_text="Reconnecting to Consult")
    expect(notice).to_be_visible()
    shot(page, "reconnecting", full_page=False)
    assert live.astrologer.post(f"/api/sessions/{live.session_id}/end").status_code == 200
    expect(ended_banner(live.astro_panel())).to_be_visible()
    expect(ended_banner(live.user_panel())).to_have_count(0)  # this page cannot know yet

    live.user_context.set_offline(False)
    socket_open(page)
    expect(notice).to_be_hidden()
    panel = live.user_panel()
    expect(ended_banner(panel)).to_contain_text("The astrologer ended the session")
    expect(panel.get_by_role("textbox", name="Message")).to_be_disabled()
    expect(bill(panel)).to_have_count(0)
    expect(wallet_pill(page)).to_have_text(rupees(live.wallet()))
    assert navigations == []  # re-synced in place, not reloaded


def test_reconnect_while_live_keeps_the_session_and_its_bill(live):
    page, panel = live.user_page, live.user_panel()
    live.user_context.set_offline(True)
    expect(page.get_by_text("Reconnecting to Consult")).to_be_visible()
    live.user_context.set_offline(False)
    socket_open(page)
    expect(page.get_by_text("Reconnecting to Consult")).to_be_hidden()
    timer = bill(panel).locator("[data-field=elapsed]")
    expect(timer).not_to_have_text(timer.text_content())
    assert live.session()["status"] == "active"
    say(page, panel, "Still there?")
    expect(live.astro_panel().get_by_text("Still there?")).to_be_visible()


# ---------------------------------------------------------------- accessibility and size


def test_the_end_dialog_is_modal_escape_continues_and_focus_returns(active):
    page = reloaded(active.user_page, active.url)
    end_button = active.user_panel().get_by_role("button", name="End Session")
    end_button.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="End this session?")
    expect(dialog).to_be_visible()
    expect(page.locator("dialog:modal")).to_have_count(1)  # opened with showModal()
    expect(dialog.get_by_role("button", name="Continue Session")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="End Session")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(end_button).to_be_focused()
    assert active.session()["status"] == "active"


def test_buttons_and_live_regions_are_labelled(active, ended):
    page = reloaded(active.user_page, active.url)
    panel = page.get_by_role("region", name=active.astrologer.name)
    expect(panel.get_by_role("region", name="Live bill")).to_be_visible()
    expect(panel.get_by_role("log", name=f"Chat with {active.astrologer.name}")).to_be_visible()
    expect(panel.get_by_role("textbox", name="Message")).to_be_visible()
    expect(panel.get_by_role("button", name="Send")).to_be_visible()
    expect(panel.get_by_role("button", name="End Session")).to_be_visible()
    expect(page.locator("#connection")).to_have_role("status")
    expect(page.locator("#toasts")).to_have_attribute("aria-live", "polite")
    astro = reloaded(active.astro_page, f"{active.server.url}/dashboard")
    for name in ("Earnings", re.compile("Incoming requests"), "Your sessions"):
        expect(astro.get_by_role("region", name=name)).to_be_visible()
    expect(ended_banner(ended.user_panel())).to_have_role("status")


# axe-core's every rule, at every impact (minor to critical): none may fail on the pages a
# paying user and an astrologer live in.


def test_axe_finds_no_violations_on_the_chat_page(active):
    page = open_page(active.user_context, active.url)
    assert axe_violations(page, active.server) == []
    page.close()


def test_axe_finds_no_violations_in_the_open_end_dialog(active):
    page = reloaded(active.user_page, active.url)
    open_dialog(page, active.user_panel())
    assert axe_violations(page, active.server) == []
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)


def test_axe_finds_no_violations_on_the_confirmation_page_without_javascript(active):
    page = open_page(active.user_context, f"{active.url}/end/confirm")
    expect(page.get_by_role("heading", level=1)).to_have_text("End this session?")
    assert axe_violations(page, active.server) == []
    page.close()


def test_axe_finds_no_violations_on_the_dashboard(active):
    page = open_page(active.astro_context, f"{active.server.url}/dashboard")
    expect(active.astro_panel(page)).to_be_visible()
    assert axe_violations(page, active.server) == []
    page.close()


def test_axe_finds_no_violations_on_the_ended_chat_and_the_summary(ended):
    page = open_page(ended.user_context, ended.url)
    assert axe_violations(page, ended.server) == []
    page.goto(f"{ended.url}/summary")
    assert axe_violations(page, ended.server) == []
    page.close()


def phone(browser, server, person, contexts) -> BrowserContext:
    context = browser_for(browser, server, person, viewport={"width": 375, "height": 800})
    contexts.append(context)
    return context


def assert_fits(page: Page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, f"the page is {width}px wide on a 375px screen"


def test_chat_and_bill_fit_a_375px_phone(browser, active, contexts):
    page = open_page(phone(browser, active.server, active.user, contexts), active.url)
    panel = active.user_panel(page)
    for control in (
        panel.get_by_role("button", name="End Session"),
        panel.get_by_role("textbox", name="Message"),
        bill(panel).locator("[data-field=cost]"),
    ):
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    expect(panel.get_by_role("button", name="End Session")).to_be_in_viewport()
    assert_fits(page)
    shot(page, "mobile-chat")
    dialog = open_dialog(page, panel)
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    expect(dialog.get_by_role("button", name="Continue Session")).to_be_in_viewport()
    expect(dialog.get_by_role("button", name="End Session")).to_be_in_viewport()
    shot(page, "mobile-confirm", full_page=False)
    page.keyboard.press("Escape")


def test_dashboard_ended_chat_and_summary_fit_a_375px_phone(browser, active, ended, contexts):
    astro = open_page(
        phone(browser, active.server, active.astrologer, contexts), f"{active.server.url}/dashboard"
    )
    expect(active.astro_panel(astro).get_by_role("button", name="End Session")).to_be_visible()
    assert_fits(astro)
    shot(astro, "mobile-dashboard")
    user = phone(browser, ended.server, ended.user, contexts).new_page()
    for url in (ended.url, f"{ended.url}/summary"):
        user.goto(url)
        expect(user.get_by_role("main")).to_contain_text("You ended the session")
        assert_fits(user)
    shot(user, "mobile-summary")


# ---------------------------------------------------------------- polish


def test_low_balance_nudge_recharges_in_one_click_and_re_syncs_the_bill(
    browser, fresh_server, contexts
):
    srv = fresh_server(LOW_BALANCE_WARNING_SECONDS=30)  # a nudge in view from the start
    batch = Astrologers(srv, count=1, rate=RATE)
    astrologer = batch.take()
    batch.close()
    user = make_user(srv, 1500)  # ₹15.00: fifteen seconds
    session_id = start_session(user, astrologer)["id"]
    page = open_as(browser, srv, contexts, user, f"/sessions/{session_id}")
    panel = page.locator(f"#session-{session_id}")
    left = bill(panel).locator(".meter [data-field=left]")

    nudge = panel.get_by_role("alert").filter(has_text="Your balance is running low")
    expect(nudge).to_be_visible()
    assert seconds(left.text_content()) <= 15
    shot(page, "low-balance")
    nudge.get_by_role("button", name=re.compile("Add ₹200")).dblclick()  # pays once

    expect(nudge).to_be_hidden()
    expect(wallet_pill(page)).to_have_text("₹215.00")
    expect(left).to_have_text(re.compile(r"^3:\d\d$"))  # ₹215 funds 3:35, less time spent
    assert user.get("/api/wallet").json()["balancePaise"] == 21_500
    status = user.get(f"/api/billing/status?sessionId={session_id}").json()
    shown = paise(bill(panel).locator("[data-field=balance]").text_content())
    assert abs(shown - status["balancePaise"]) <= 2 * RATE // 60  # within two seconds' ticking


def test_the_dashboard_shows_requests_and_sessions_live_without_reloading(
    browser, server, astrologers, contexts
):
    user, astrologer = make_user(server), astrologers.take()
    page = open_as(browser, server, contexts, astrologer, "/dashboard")
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    requests = page.get_by_role("region", name=re.compile("Incoming requests"))
    earnings = page.get_by_role("region", name="Earnings")
    expect(requests).to_contain_text("No requests right now")
    expect(earnings).to_contain_text("₹0.00")

    session_id = user.post("/api/sessions", {"astrologerId": astrologer.id}).json()["id"]
    request = requests.locator(f"#request-{session_id}")
    expect(request).to_contain_text(user.name)
    expect(requests.get_by_role("heading")).to_contain_text("1")
    user.present()  # the user's app is open: billing runs from the accept
    request.get_by_role("button", name="Accept").click()

    panel = page.get_by_role("region", name=user.name)
    expect(bill(panel)).to_be_visible()
    expect(requests).to_contain_text("No requests right now")
    user.post(f"/api/sessions/{session_id}/messages", {"text": "Namaste! What do my stars say?"})
    expect(panel.get_by_role("log")).to_contain_text("What do my stars say?")
    expect(bill(panel).locator("[data-field=cost]")).not_to_have_text("₹0.00")
    shot(page, "dashboard")

    assert user.post("/api/sessions/end").status_code == 200
    expect(ended_banner(panel)).to_contain_text("The user ended the session")
    cost = user.get(f"/api/sessions/{session_id}").json()["totalCostPaise"]
    expect(earnings).to_contain_text(rupees(cost - cost * COMMISSION_PERCENT // 100))
    assert navigations == []  # all of it arrived over the socket
