"""A real server subprocess and a program's view of it: accounts, sessions, a browser's
cookie jar. The socket clients are in `helpers.sockets`."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from helpers import PASSWORD
from helpers.databases import NO_MAKE_GOOD, ROOMY_LIMITS

ROOT = Path(__file__).resolve().parents[2]

# Fast clocks so every end reason can be reached in seconds.
FAST = {
    **NO_MAKE_GOOD,
    **ROOMY_LIMITS,
    "DISCONNECT_GRACE_SECONDS": 2,
    "REQUEST_TIMEOUT_SECONDS": 3,
    "LOW_BALANCE_WARNING_SECONDS": 2,
    "MIN_SESSION_SECONDS": 1,
    "SCHEDULER_INTERVAL_SECONDS": 0.1,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout=10.0, interval=0.05, message="condition"):
    """Poll `condition` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def run_together(calls, timeout=30):
    """Start every call at once (a barrier) and return their results in order."""
    start = threading.Barrier(len(calls))
    results = [None] * len(calls)
    errors = []

    def run(i):
        try:
            start.wait(timeout=10)
            results[i] = calls[i]()
        except Exception as error:  # reported below with its call
            errors.append((i, error))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a call hung"
    assert errors == [], errors
    return results


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass
class Server:
    """`python app.py` in a subprocess: the real gevent server, scheduler and all."""

    database_url: str
    settings: dict = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
        env.update({"DATABASE_URL": self.database_url, "SECRET_KEY": "test-secret-key"})
        env.update({k: str(v) for k, v in self.settings.items()})
        return env

    def start(self) -> "Server":
        self.port = free_port()
        self.log_path = Path(f"/tmp/consult-server-{self.port}.log")
        log = open(self.log_path, "w")  # noqa: SIM115 -- the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log()}")
            try:
                return requests.get(self.url + "/api/astrologers", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(ready, timeout=20, message="the server to answer")
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """Run an operator command (`flask --app app ...`) against this server's database."""
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )


class Api:
    """A program's view of Consult: bearer token, JSON in and out."""

    def __init__(self, server: Server, token: str | None = None, user: dict | None = None):
        self.server, self.token, self.user = server, token, user
        self.sockets: list = []  # every socket opened through `socket()`

    @property
    def id(self) -> int:
        return self.user["id"]

    def on(self, server: Server) -> "Api":
        """The same account (its token survives a restart) against another server process."""
        return Api(server, self.token, self.user)

    def headers(self, extra=None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra or {})
        return headers

    def get(self, path, **kw):
        return requests.get(
            self.server.url + path, headers=self.headers(kw.pop("headers", None)), timeout=10, **kw
        )

    def post(self, path, json_body=None, **kw):
        return self._send(requests.post, path, json_body, **kw)

    def put(self, path, json_body=None, **kw):
        return self._send(requests.put, path, json_body, **kw)

    def _send(self, method, path, json_body, **kw):
        return method(
            self.server.url + path,
            json=json_body,
            headers=self.headers(kw.pop("headers", None)),
            timeout=10,
            **kw,
        )

    def socket(self, **kw):
        from helpers.sockets import Socket

        ws = Socket(f"{self.server.ws_url}/api/ws?token={self.token}", **kw)
        self.sockets.append(ws)
        return ws

    def present(self) -> "Api":
        """Make sure this account holds an open socket, as an open app would: billing runs
        only while both parties are connected (docs/websocket.md, "Presence and billing").
        One of the test's own will do; else one is opened and held until the test ends."""
        ws = next((s for s in self.sockets if not s.closed.is_set()), None)
        if ws is None:
            ws = self.socket()
            PRESENCE.append(ws)
        ws.round_trip()  # answered only once the server has attached the socket
        return self

    def leave(self) -> None:
        """Close the sockets `present()` opened (say, once the account's page holds its own)."""
        for ws in self.sockets:
            if ws in PRESENCE:
                PRESENCE.remove(ws)
                ws.close()


PRESENCE: list = []  # the sockets `Api.present` holds; the tests' fixture closes them


def close_presence() -> None:
    while PRESENCE:
        PRESENCE.pop().close()


def token_for(server: Server, username: str) -> Api:
    """Sign an existing account in over the API."""
    r = requests.post(
        server.url + "/api/auth/token",
        json={"username": username, "password": PASSWORD},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return Api(server, r.json()["token"], r.json()["user"])


def recharged(api: Api, balance_paise: int) -> Api:
    if balance_paise:
        r = api.post("/api/wallet/recharge", {"amountPaise": balance_paise})
        assert r.status_code == 200, r.text
    return api


def register_user(
    server: Server, balance_paise: int = 0, prefix: str = "u", username: str | None = None
) -> Api:
    """Sign a new user up through the API and recharge the wallet."""
    username = username or unique(prefix)
    r = requests.post(
        server.url + "/api/auth/register",
        json={"username": username, "password": PASSWORD},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return recharged(Api(server, r.json()["token"], r.json()["user"]), balance_paise)


def create_astrologer(server: Server, rate: int = 6000) -> Api:
    """Create an astrologer with the operator CLI (as the README says), then sign in."""
    username = unique("a")
    result = server.cli(
        "create-user", username, "--password", PASSWORD, "--role", "astrologer", "--rate", str(rate)
    )
    assert result.returncode == 0, result.stderr
    return token_for(server, username)


def make_account(server: Server, role: str, rate: int = 6000, balance: int = 0) -> Api:
    """Create an account straight in the server's database (faster than an operator CLI
    process per account) and sign it in over HTTP; users get `balance` by a real recharge."""
    from consult import accounts
    from consult.clock import utcnow
    from helpers.books import books_app

    username = unique(role[0])
    with books_app(server.database_url).app_context():
        accounts.create_user(
            username,
            PASSWORD,
            role=role,
            now=utcnow(),
            rate_paise_per_minute=rate if role == "astrologer" else None,
        )
    return recharged(token_for(server, username), balance)


def start_session(user: Api, astrologer: Api, present: bool = True) -> dict:
    """Request and accept, both parties connected first unless not `present` (then
    billing starts paused): returns the active session object."""
    r = user.post("/api/sessions", {"astrologerId": astrologer.id})
    assert r.status_code == 201, r.text
    if present:
        user.present(), astrologer.present()
    r = astrologer.post(f"/api/sessions/{r.json()['id']}/accept")
    assert r.status_code == 200, r.text
    return r.json()


def ended_session(user: Api, astrologer: Api, seconds: float = 3) -> dict:
    """A session with a few billed seconds, ended by its user through the API: returns the
    ended session object."""
    session = start_session(user, astrologer)
    wait_until(
        lambda: user.get("/api/billing/status").json()["elapsedSeconds"] >= seconds,
        message=f"{seconds} s billed",
    )
    assert user.post("/api/sessions/end").status_code == 200
    return user.get(f"/api/sessions/{session['id']}").json()


_CREATE_ASTROLOGERS = """
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
            [sys.executable, "-c", _CREATE_ASTROLOGERS, PASSWORD, str(rate), names] + usernames,
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
        """A fresh, signed-in astrologer; `.name` is the display name the batch gave it."""
        self.wait()
        with self._lock:
            assert self._made, "the batch of astrologers is used up: make it bigger"
            number, username = self._made.pop()
        astrologer = token_for(self.server, username)
        astrologer.name = self.names.format(n=number)
        return astrologer

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        self.errors.close()


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


class PlainBrowser:
    """A browser without JavaScript: a cookie jar that signs in through the login form, posts
    forms with the session's CSRF token and opens sockets with its cookie."""

    def __init__(self, server: Server):
        self.server = server
        self.http = requests.Session()
        self.csrf = None

    def get(self, path, **kw):
        return self.http.get(self.server.url + path, timeout=10, **kw)

    def post(self, path, data=None, csrf=True, **kw):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.csrf)
        return self.http.post(
            self.server.url + path, data=data, timeout=10, allow_redirects=False, **kw
        )

    def sign_in(self, username: str, password: str = PASSWORD) -> "PlainBrowser":
        page = self.get("/login")
        self.csrf = CSRF_INPUT.search(page.text).group(1)
        r = self.post("/login", {"username": username, "password": password})
        assert r.status_code == 302, r.text
        # Signing in replaces the CSRF token: take the new one from the page it lands on.
        home = self.get(r.headers["Location"])
        self.csrf = CSRF_INPUT.search(home.text).group(1)
        return self

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())

    def socket(self, path: str = "/ws"):
        """A socket authenticated by this browser's cookie, from the app's own origin."""
        from helpers.sockets import RawSocket

        return RawSocket(
            self.server.ws_url + path,
            headers=[f"Cookie: {self.cookie_header()}"],
            origin=self.server.url,
        )
