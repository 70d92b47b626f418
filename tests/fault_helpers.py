"""Helpers for the fault, race and security tests: the books checked against a live database,
browsers signed in by cookie, and a raw socket client for the HTML socket."""

import re
import threading
from pathlib import Path

import requests
import websocket
from support import PASSWORD, Api, Server, unique, wait_until

_apps: dict[str, object] = {}
_apps_lock = threading.Lock()


def books_app(database_url: str):
    """An in-process app on the same database as a server subprocess: only for reading it.

    Nothing here serves requests or starts a scheduler; it exists to run `ledger_audit.check`
    against the very file the server writes (SQLite WAL lets both read and write at once).
    """
    with _apps_lock:
        if database_url not in _apps:
            from consult import create_app

            _apps[database_url] = create_app(
                {"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "books"}
            )
        return _apps[database_url]


def ledger_report(target):
    """Run the reconciliation against a server's (or a URL's) database; returns the report."""
    from consult import ledger_audit

    url = target.database_url if isinstance(target, Server) else target
    with books_app(url).app_context():
        return ledger_audit.check()


def assert_books_balance(target) -> object:
    """Fail naming every broken invariant; return the report when the books are sound."""
    report = ledger_report(target)
    assert report.ok, "the reconciliation found problems:\n" + "\n".join(
        str(p) for p in report.problems
    )
    return report


def query(target, sql: str, **params) -> list:
    """Read rows straight from a server's database (for counts the API does not expose)."""
    from sqlalchemy import text

    from consult.db import db

    url = target.database_url if isinstance(target, Server) else target
    with books_app(url).app_context():
        try:
            return [tuple(row) for row in db.session.execute(text(sql), params)]
        finally:
            db.session.rollback()


def settlements_of(target, session_id: int) -> int:
    [(count,)] = query(
        target, "SELECT count(*) FROM transfers WHERE consultation_id = :id", id=session_id
    )
    return count


def ended_events_of(target, session_id: int) -> int:
    [(count,)] = query(
        target,
        "SELECT count(*) FROM session_events WHERE consultation_id = :id AND kind = 'ended'",
        id=session_id,
    )
    return count


# ---------------------------------------------------------------- browsers


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """A browser's cookie jar against a server: signs in through the login form."""

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

    def sign_in(self, username: str, password: str = PASSWORD) -> "Browser":
        page = self.get("/login")
        self.csrf = CSRF_INPUT.search(page.text).group(1)
        r = self.post("/login", {"username": username, "password": password})
        assert r.status_code == 302, r.text
        return self

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())

    def socket(self, path: str = "/ws") -> "RawSocket":
        """A socket authenticated by this browser's cookie, from the app's own origin."""
        return RawSocket(
            self.server.ws_url + path,
            headers=[f"Cookie: {self.cookie_header()}"],
            origin=self.server.url,
        )


class RawSocket:
    """A socket client that keeps every text frame as text (the HTML socket sends fragments,
    not JSON) and records how the server closed it."""

    def __init__(self, url: str, headers=None, origin=None):
        self.texts: list[str] = []
        self.closed = threading.Event()
        self.close_code = None
        self.close_reason = ""
        self.ws = websocket.create_connection(
            url, timeout=10, header=headers or [], origin=origin, suppress_origin=origin is None
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while True:
                opcode, data = self.ws.recv_data(control_frame=False)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    if len(data) >= 2:
                        self.close_code = int.from_bytes(data[:2], "big")
                        self.close_reason = data[2:].decode("utf-8", "replace")
                    break
                self.texts.append(data.decode("utf-8", "replace"))
        except (websocket.WebSocketException, OSError):
            pass
        finally:
            self.closed.set()

    def send(self, text: str) -> None:
        self.ws.send(text)

    def wait_for_text(self, needle: str, timeout: float = 10.0) -> str:
        return wait_until(
            lambda: next((t for t in self.texts if needle in t), None),
            timeout=timeout,
            message=f"a frame containing {needle!r}",
        )

    def close(self) -> None:
        hang_up(self)


def hang_up(ws) -> None:
    """Close a Socket or RawSocket with a close handshake but without websocket-client's
    3 s wait in `close()`: the reader thread is the one that reads the server's answer."""
    sock = ws.ws.sock
    if ws.closed.is_set() or sock is None or sock.fileno() == -1:
        return
    try:
        ws.ws.send_close()
    except Exception:  # closed meanwhile
        pass
    ws.closed.wait(2)
    try:
        ws.ws.shutdown()
    except Exception:
        pass


def server_log_tail(server: Server, lines: int = 40) -> str:
    path = server.log_path
    if not path or not Path(path).exists():
        return ""
    return "\n".join(Path(path).read_text().splitlines()[-lines:])


def make_account(server: Server, role: str, rate: int = 6000, balance: int = 0) -> Api:
    """Create an account straight in the server's database (faster than an operator CLI
    process per account) and sign it in over HTTP; users get `balance` by a real recharge."""
    from consult import accounts
    from consult.clock import utcnow

    username = unique(role[0])
    with books_app(server.database_url).app_context():
        accounts.create_user(
            username,
            PASSWORD,
            role=role,
            now=utcnow(),
            rate_paise_per_minute=rate if role == "astrologer" else None,
        )
    r = requests.post(
        server.url + "/api/auth/token",
        json={"username": username, "password": PASSWORD},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    api = Api(server, r.json()["token"], r.json()["user"])
    if balance:
        assert api.post("/api/wallet/recharge", {"amountPaise": balance}).status_code == 200
    return api


# ---------------------------------------------------------------- hostile chat text

HOSTILE_MESSAGES = [
    "<script>alert(1)</script>",
    "<script src=/static/app.js></script>",
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="window.__xss=1">',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<body onload=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<a href="javascript:alert(1)">click me</a>',
    "javascript:alert(document.cookie)",
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    "<div hx-get=/admin hx-trigger=load>",
    '<div hx-get="/admin/" hx-trigger="load" hx-swap="outerHTML">x</div>',
    '<button hx-post="/logout" hx-trigger="load">bye</button>',
    '<div hx-on:htmx:load="alert(1)">x</div>',
    '<div hx-on::load="alert(1)">x</div>',
    '<div data-hx-get="/admin" data-hx-trigger="load">x</div>',
    '<div hx-get="/admin" hx-trigger="every 1s">x</div>',
    '<div hx-swap-oob="true" id="main">owned</div>',
    '<div id="toasts" hx-swap-oob="innerHTML">owned</div>',
    '<div ws-send hx-trigger="load">x</div>',
    '<form hx-post="/api/sessions/end" hx-trigger="load"></form>',
    "</textarea><script>alert(1)</script>",
    "</p><img src=x onerror=alert(1)>",
    "</div></section><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    '" onmouseover="alert(1)',
    "' autofocus onfocus='alert(1)",
    "{{7*7}}",
    "{{ config }}",
    "{% for x in range(3) %}{{x}}{% endfor %}",
    "${7*7}",
    "#{7*7}",
    "<%= 7*7 %>",
    "{{constructor.constructor('alert(1)')()}}",
    "<style>body{display:none}</style>",
    '<link rel="stylesheet" href="//evil.example/x.css">',
    '<meta http-equiv="refresh" content="0;url=/admin">',
    '<base href="//evil.example/">',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<marquee onstart=alert(1)>x</marquee>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;img src=x onerror=alert(1)&#62;",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<IMG SRC=x ONERROR=alert(1)>",
    "<!--<img src=x onerror=alert(1)>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<template><img src=x onerror=alert(1)></template>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<x onclick=alert(1)>click</x>",
]
