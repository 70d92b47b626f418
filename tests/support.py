"""Test helpers: a real server subprocess, an API client, a socket client that waits for frames."""

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
import websocket

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "test-password"


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

    @property
    def id(self) -> int:
        return self.user["id"]

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

    def socket(self, **kw) -> "Socket":
        return Socket(f"{self.server.ws_url}/api/ws?token={self.token}", **kw)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


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
    api = Api(server, r.json()["token"], r.json()["user"])
    if balance_paise:
        assert api.post("/api/wallet/recharge", {"amountPaise": balance_paise}).status_code == 200
    return api


def create_astrologer(server: Server, rate: int = 6000) -> Api:
    """Create an astrologer with the operator CLI (as API.md says), then sign in."""
    username = unique("a")
    result = server.cli(
        "create-user", username, "--password", PASSWORD, "--role", "astrologer", "--rate", str(rate)
    )
    assert result.returncode == 0, result.stderr
    r = requests.post(
        server.url + "/api/auth/token",
        json={"username": username, "password": PASSWORD},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return Api(server, r.json()["token"], r.json()["user"])


def start_session(user: Api, astrologer: Api) -> dict:
    """Request and accept: returns the active session object."""
    r = user.post("/api/sessions", {"astrologerId": astrologer.id})
    assert r.status_code == 201, r.text
    r = astrologer.post(f"/api/sessions/{r.json()['id']}/accept")
    assert r.status_code == 200, r.text
    return r.json()


class Socket:
    """A websocket-client connection with a reader thread, so server pings are answered
    and frames can be awaited by condition."""

    def __init__(self, url: str, headers=None, origin=None):
        self.frames: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        self.ws = websocket.create_connection(
            url, timeout=10, header=headers or [], origin=origin, suppress_origin=origin is None
        )
        # The 10 s timeout is for the handshake; the reader then blocks as long as the
        # socket lives (server pings keep it honest), or idle sockets would die at 10 s.
        self.ws.settimeout(None)
        self.closed = threading.Event()
        self.close_code = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        try:
            while True:
                opcode, data = self.ws.recv_data(control_frame=False)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    self.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                    break
                self.frames.put(json.loads(data))
        except (websocket.WebSocketException, OSError, ValueError):
            pass
        finally:
            self.closed.set()

    def send(self, event: str, data: dict | None = None, **top) -> None:
        self.ws.send(json.dumps({"event": event, "data": data or {}, **top}))

    def send_raw(self, text: str) -> None:
        self.ws.send(text)

    def wait_for(self, event: str, timeout: float = 10.0, where=lambda data: True) -> dict:
        """Return the next frame named `event` whose data satisfies `where`."""
        return self._next(lambda f: f["event"] == event and where(f["data"]), timeout, event)

    def wait_for_any(self, *events: str, timeout: float = 10.0) -> dict:
        """Return the next frame named any of `events` (e.g. a reply or an error)."""
        return self._next(lambda f: f["event"] in events, timeout, events)

    def _next(self, matches, timeout: float, wanted) -> dict:
        """The first frame, seen or still to come, that `matches`; others are kept in `seen`."""
        for frame in self.seen:
            if matches(frame):
                self.seen.remove(frame)
                return frame
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {wanted!r} frame within {timeout}s; saw {self.seen[-5:]}")
            try:
                frame = self.frames.get(timeout=remaining)
            except queue.Empty:
                continue
            if matches(frame):
                return frame
            self.seen.append(frame)

    def count(self, event: str, settle: float = 0.5) -> int:
        """How many `event` frames arrived, after draining for `settle` seconds of quiet."""
        while True:
            try:
                self.seen.append(self.frames.get(timeout=settle))
            except queue.Empty:
                break
        return sum(1 for f in self.seen if f["event"] == event)

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass

    def drop(self) -> None:
        """Vanish without a close frame, like a phone losing signal."""
        sock = self.ws.sock  # the reader thread sets ws.sock to None once it sees the EOF
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()


_CREATE_ASTROLOGERS = """
import sys

from app import app

runner = app.test_cli_runner()
password, rate, *usernames = sys.argv[1:]
for username in usernames:
    args = ["create-user", username, "--password", password, "--role", "astrologer", "--rate", rate]
    result = runner.invoke(args=args)
    if result.exit_code:
        sys.exit(f"create-user {username} failed: {result.output}")
"""


class AstrologerBatch:
    """Astrologers made ahead by the operator CLI's `create-user`, run `count` times in one
    background process (one interpreter start instead of `count`); `take()` signs one in."""

    def __init__(self, server: Server, count: int, rate: int = 6000):
        self.server, self.rate = server, rate
        self.usernames = [unique("a") for _ in range(count)]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CREATE_ASTROLOGERS, PASSWORD, str(rate), *self.usernames],
            cwd=ROOT,
            env=server.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lock = threading.Lock()
        self._created = False

    def take(self) -> Api:
        """A fresh, signed-in astrologer (made on the spot once the batch is used up)."""
        with self._lock:
            if not self._created:
                _, stderr = self.proc.communicate(timeout=120)
                assert self.proc.returncode == 0, stderr
                self._created = True
            if not self.usernames:
                return create_astrologer(self.server, rate=self.rate)
            username = self.usernames.pop()
        r = requests.post(
            self.server.url + "/api/auth/token",
            json={"username": username, "password": PASSWORD},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return Api(self.server, r.json()["token"], r.json()["user"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()
