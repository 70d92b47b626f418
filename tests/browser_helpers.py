"""Helpers for the browser tests: people signed in to their own browser contexts, astrologers
made in one batch, money read off the page, axe-core, screenshots."""

import os
import re
import subprocess
import sys
import tempfile
import threading

import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect
from support import PASSWORD, ROOT, Api, Server, register_user, unique

# `make screenshots` points this at docs/screenshots, the ones the README shows.
SHOTS = os.environ.get("SCREENSHOT_DIR", "test-results/screenshots")

_CREATE = """
import sys

from app import app

runner = app.test_cli_runner()
password, rate, names, *usernames = sys.argv[1:]
for number, username in enumerate(usernames, 1):
    name = names.format(n=number)
    args = ["create-user", username, "--password", password, "--role", "astrologer", "--rate", rate,
            "--name", name]
    result = runner.invoke(args=args)
    if result.exit_code:
        sys.exit(f"create-user {username} failed: {result.output}")
    print(number, username)
"""


class Astrologers:
    """Astrologers made ahead with the operator CLI's `create-user`, all in one background
    process: one interpreter start instead of one per test.

    `take()` waits for the whole batch before handing out the first: while another process
    writes to the same SQLite file, the server's token issue (a read, then a write, outside
    BEGIN IMMEDIATE) can fail with "database is locked"."""

    def __init__(
        self, server: Server, count: int, rate: int = 6000, names="Tara Moon {n}", usernames=()
    ):
        self.server, self.names = server, names
        usernames = list(usernames) or [unique("astro") for _ in range(count)]
        # stderr to a file: a pipe nobody reads could fill up and stall the process
        self.errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 -- closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CREATE, PASSWORD, str(rate), names] + usernames,
            cwd=ROOT,
            env=server.env(),
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
        )
        self._lock = threading.Lock()
        self._made: list[tuple[str, str]] | None = None

    def wait(self) -> "Astrologers":
        """Wait until the whole batch is made."""
        with self._lock:
            if self._made is None:
                out, _ = self.proc.communicate(timeout=120)
                self.errors.seek(0)
                assert self.proc.returncode == 0, self.errors.read()[-2000:]
                self._made = [tuple(line.split()) for line in out.splitlines()][::-1]
        return self

    def take(self) -> Api:
        self.wait()
        with self._lock:
            assert self._made, "the batch of astrologers is used up: make it bigger"
            number, username = self._made.pop()
        astrologer = token_for(self.server, username)
        astrologer.name = self.names.format(n=number)  # as the batch named it
        return astrologer

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        self.errors.close()


def make_user(server: Server, balance_paise: int = 50_000, username: str | None = None) -> Api:
    """Sign a user up through the API (a readable username, for the screenshots) and recharge."""
    user = register_user(server, balance_paise, prefix="asha.", username=username)
    user.name = user.user["username"]  # a user's display name is their username
    return user


def token_for(server: Server, username: str) -> Api:
    r = requests.post(
        server.url + "/api/auth/token",
        json={"username": username, "password": PASSWORD},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return Api(server, r.json()["token"], r.json()["user"])


def browser_for(browser: Browser, server: Server, person: Api, **context_args) -> BrowserContext:
    """A browser context signed in as `person` through the sign-in form's own POST.

    Signing in by typing is tested once (test_browser_flow.py); here the cookie the form
    sets is handed to the context, which saves a page load per party per test."""
    http = requests.Session()
    form = http.get(server.url + "/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    r = http.post(
        server.url + "/login",
        data={"username": person.user["username"], "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 302, r.text
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
    page.screenshot(path=f"{SHOTS}/{name}.png", full_page=full_page)
