"""End to end: real server subprocesses (one per module and backend, or one of a test's
own), their sockets, and Debian's Chromium driven by pytest-playwright."""

import os
import re
import shutil
import socket

import pytest
from playwright.sync_api import Browser

from helpers import require
from helpers.browser import ConsoleWatch, operator
from helpers.databases import database
from helpers.server import FAST, Astrologers, Server, close_presence


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "astrologers(count, rate=..., names=...): the batch of the `astrologers` fixture",
    )
    config.addinivalue_line(
        "markers",
        "console_allows(*patterns): console errors a browser test causes on purpose (regular "
        "expressions searched in each), e.g. a 4xx answer Chromium logs as 'Failed to load "
        "resource'; anything else in the console fails the test",
    )


@pytest.fixture(scope="session", autouse=True)
def _console_watch():
    """Watch every browser context any test or fixture opens (module-scoped ones included),
    from its first page on: `Browser.new_context` is wrapped for the whole session."""
    console = ConsoleWatch()
    new_context = Browser.new_context

    def watched(self, *args, **kwargs):
        context = new_context(self, *args, **kwargs)
        console.watch(context)
        return context

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Browser, "new_context", watched)
        yield console


def _server_gone(messages: list[str]) -> list[str]:
    """Without what a page logs once its server has stopped (a module's server, or a test's
    own, stopped while a page of it was still open in the worker's browser): a refused
    connection; a reset one to a server that no longer listens (a reconnect the kernel had
    queued when the server closed its listening socket); and htmx's note of the failed
    socket on that same page. No app can cause either."""
    stopped = [m for m in messages if _to_a_stopped_server(m)]
    gone = {m.split(": ", 1)[0] for m in stopped}
    return [
        m
        for m in messages
        if m not in stopped and not (m.split(": ", 1)[0] in gone and "[object Event]" in m)
    ]


def _to_a_stopped_server(message: str) -> bool:
    return "net::ERR_CONNECTION_REFUSED" in message or (
        "net::ERR_CONNECTION_RESET" in message and not _listening(message)
    )


def _listening(message: str) -> bool:
    """Whether anything still listens at the first local address the message names."""
    found = re.search(r"//(127\.0\.0\.1|localhost):(\d+)/", message)
    if found is None:
        return True  # nothing to check: keep the message
    try:
        socket.create_connection((found[1], int(found[2])), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(autouse=True)
def clean_console(request, _console_watch):
    """A browser test fails at teardown if any page showed a console error, an uncaught
    script error or a CSP violation meanwhile (in its own contexts or a module's), bar what
    its `console_allows` mark lets through."""
    yield
    if "browser" not in request.fixturenames:
        return
    browser = request.getfixturevalue("browser")
    for context in browser.contexts:  # a round trip to each open page delivers its messages
        for page in context.pages:
            page.evaluate("0")
    mark = request.node.get_closest_marker("console_allows")
    allowed = [re.compile(pattern) for pattern in (mark.args if mark else ())]
    problems = [
        p for p in _server_gone(_console_watch.take()) if not any(a.search(p) for a in allowed)
    ]
    if problems:
        pytest.fail("The browser's console was not clean:\n" + "\n".join(problems))


@pytest.fixture(autouse=True)
def _presence_sockets():
    """The sockets `Api.present` held for the test's accounts close when it ends."""
    yield
    close_presence()


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory, request):
    """One real server per test module (and backend); tests use fresh users."""
    with database(backend, tmp_path_factory.mktemp("server"), request) as url:
        srv = Server(url, dict(FAST)).start()
        yield srv
        srv.stop()


@pytest.fixture
def fresh_server(backend, tmp_path, request):
    """A server of one's own on a fresh database, for tests that kill or restart it.

    Calling it again starts another instance on the same database."""
    servers = []
    with database(backend, tmp_path, request) as url:

        def start(**settings):
            srv = Server(url, {**FAST, **settings}).start()
            servers.append(srv)
            return srv

        yield start
        for srv in servers:
            srv.stop(kill=True)


@pytest.fixture(scope="module")
def astrologers(server, request):
    """The module's batch of astrologers made ahead with the operator CLI (`take()` hands
    out a fresh one); its size, rate and display names are the module's `astrologers` mark."""
    mark = request.node.get_closest_marker("astrologers")
    assert mark, "mark the module with pytest.mark.astrologers(count, rate=..., names=...)"
    batch = Astrologers(server, *mark.args, **mark.kwargs).wait()
    yield batch
    batch.close()


@pytest.fixture(scope="module")
def admin(server):
    """An operator, made with the operator CLI as the README says, signed in over the API."""
    return operator(server)


@pytest.fixture(scope="session")
def chromium_path():
    path = shutil.which("chromium") or "/usr/bin/chromium"
    require(os.path.exists(path), "Chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(chromium_path):
    """pytest-playwright launches Debian's Chromium: Playwright's own download fails here."""
    return {
        "executable_path": chromium_path,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def contexts():
    """Browser contexts a test opens (it appends them); closed when it ends."""
    made: list = []
    yield made
    for context in made:
        context.close()
