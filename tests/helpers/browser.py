"""Playwright helpers: people signed in to browser contexts of their own, money and times
read off the page, axe-core, screenshots. (Astrologers in a batch: `helpers.server`.)"""

import os
import re

from playwright.sync_api import Browser, BrowserContext, Page, expect

from helpers import PASSWORD
from helpers.server import Api, PlainBrowser, Server, register_user, token_for, unique

# `make screenshots` points this at docs/screenshots, the ones the README shows.
SHOTS = os.environ.get("SCREENSHOT_DIR", "test-results/screenshots")


def make_user(server: Server, balance_paise: int = 50_000, username: str | None = None) -> Api:
    """Sign a user up through the API (a readable username, for the screenshots) and recharge."""
    user = register_user(server, balance_paise, prefix="asha.", username=username)
    user.name = user.user["username"]  # a user's display name is their username
    return user


def browser_for(browser: Browser, server: Server, person: Api, **context_args) -> BrowserContext:
    """A browser context signed in as `person` through the sign-in form's own POST.

    Signing in by typing is tested once (test_browser_flow.py); here the cookie the form
    sets is handed to the context, which saves a page load per party per test."""
    http = PlainBrowser(server).sign_in(person.user["username"]).http
    context = browser.new_context(**context_args)
    context.add_cookies(
        [{"name": c.name, "value": c.value, "url": server.url} for c in http.cookies]
    )
    return context


def sign_in(context: BrowserContext, server: Server, username: str) -> Page:
    """A page signed in the way a person does it: typing into the sign-in form."""
    page = context.new_page()
    page.goto(server.url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    socket_open(page)
    return page


def open_page(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.goto(url)
    socket_open(page)
    return page


def socket_open(page: Page, timeout: float = 10_000) -> None:
    """Wait for the page's socket (app.js marks <body data-socket=open>): clicks before it race."""
    expect(page.locator("body[data-socket=open]")).to_have_count(1, timeout=timeout)


def paise(text: str) -> int:
    """'₹1,234.56' -> 123456: read money off the page as the integer the server holds."""
    match = re.search(r"(-?)₹([\d,]+)\.(\d\d)", text)
    assert match, f"no rupee amount in {text!r}"
    value = int(match.group(2).replace(",", "")) * 100 + int(match.group(3))
    return -value if match.group(1) else value


def seconds(text: str) -> int:
    """'1:05' or '1:02:03' -> seconds."""
    parts = [int(p) for p in text.strip().split(":")]
    total = 0
    for part in parts:
        total = total * 60 + part
    return total


ALL_IMPACTS = ("minor", "moderate", "serious", "critical")


def axe_violations(page: Page, server: Server, impacts=ALL_IMPACTS) -> list[str]:
    """Run axe-core in the page; return the violations of the given impacts, readably."""
    if page.evaluate("() => typeof window.axe") == "undefined":
        page.add_script_tag(url=server.url + "/static/vendor/axe.min.js")
    results = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
        }"""
    )
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) at {', '.join(v['nodes'])}"
        for v in results
        if v["impact"] in impacts
    ]


def shot(page: Page, name: str, full_page: bool = True) -> None:
    os.makedirs(SHOTS, exist_ok=True)
    # Playwright hides the caret by styling every input and leaves them an empty style
    # attribute; htmx, settling a swap over that input, copies it and the page's CSP refuses
    # it (a violation of the test's making): leave the caret alone.
    page.screenshot(path=f"{SHOTS}/{name}.png", full_page=full_page, caret="initial")


# ---------------------------------------------------------------- the operator's pages

PHONE = {"width": 375, "height": 800}  # a phone's viewport


def operator(server: Server) -> Api:
    """An admin, made with the operator CLI as the README says, signed in over the API."""
    username = unique("ops.")
    result = server.cli("create-user", username, "--password", PASSWORD, "--role", "admin")
    assert result.returncode == 0, result.stderr
    return token_for(server, username)


def open_as(browser: Browser, server: Server, contexts, person: Api, path: str, **args) -> Page:
    """`path` in a context of its own signed in as `person` (the test's `contexts` close it)."""
    context = browser_for(browser, server, person, **args)
    contexts.append(context)
    return open_page(context, server.url + path)


def open_with_htmx_held(browser: Browser, server: Server, contexts, person: Api, path: str):
    """`path` signed in as `person`, parsed but with htmx's script held back, as a slow
    network would: the page and a call that lets htmx (and the deferred scripts after it)
    load."""
    context = browser_for(browser, server, person)
    contexts.append(context)
    page = context.new_page()
    held = []
    page.route("**/vendor/htmx.min.js", lambda route: held.append(route))
    with page.expect_request("**/vendor/htmx.min.js"):
        page.goto(server.url + path, wait_until="commit")

    def release() -> None:
        assert len(held) == 1, "htmx was not held back"
        held[0].continue_()

    return page, release


def serious(page: Page, server: Server) -> list[str]:
    """The serious and critical axe violations of the page."""
    return axe_violations(page, server, impacts=("serious", "critical"))


def fits_the_width(page: Page) -> bool:
    """Nothing scrolls sideways."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def checked(
    page: Page, server: Server, name: str | None = None, *, phone=False, full_page=True
) -> None:
    """The page has no serious or critical axe violation (and, on a `phone`, nothing scrolls
    sideways); then, given a `name`, its screenshot."""
    if phone:
        assert fits_the_width(page), f"{page.url} scrolls sideways"
    violations = serious(page, server)
    assert violations == [], violations
    if name:
        shot(page, name, full_page=full_page)


# ---------------------------------------------------------------- a clean console

# Chromium writes a refused inline style or script to the console itself; the page's own
# event is heard too, so a violation is caught however the browser chooses to log it.
REPORT_VIOLATIONS = """document.addEventListener('securitypolicyviolation', e =>
    console.error('securitypolicyviolation: ' + e.effectiveDirective + ' refused '
                  + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber));"""


# What Chromium and htmx log for an error a test causes on purpose, for its `console_allows`
# mark: an answer of this status; a request lost on the way (offline, or aborted by a route);
# the server killed under the page (its socket cannot reconnect; htmx logs the ws error event).
def answered(status: int) -> tuple[str, ...]:
    return (rf"status of {status} ", rf"Response Status Error Code {status} ")


REQUEST_LOST = (r"Failed to load resource: net::ERR_", r"htmx:sendError", r"htmx:afterRequest")
SERVER_DOWN = (
    r"WebSocket connection to '.*/ws' failed",
    r": \[object Event\] \(.*/htmx\.min\.js\)",
)


class ConsoleWatch:
    """Every console error, uncaught script error and Content-Security-Policy violation of
    every page of the browser contexts it watches, until the next `take()`."""

    def __init__(self):
        self.problems: list[str] = []

    def watch(self, context: BrowserContext) -> None:
        context.add_init_script(REPORT_VIOLATIONS)
        context.on("console", self._console)
        context.on("weberror", self._uncaught)

    def _console(self, message) -> None:
        if message.type != "error":
            return
        source = message.location.get("url") or ""
        page = message.page.url if message.page else "?"
        # "Failed to load resource" names no URL: its source does.
        self.problems.append(f"{page}: {message.text}" + (f" ({source})" if source else ""))

    def _uncaught(self, error) -> None:
        page = error.page.url if error.page else "?"
        self.problems.append(f"{page}: uncaught {error.error}")

    def take(self) -> list[str]:
        problems, self.problems = self.problems, []
        return problems
