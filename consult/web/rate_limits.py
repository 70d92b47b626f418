"""Rate limits, on Flask-Limiter: counted in Redis when `REDIS_URL` is set (every instance
and worker counts together, and a restart forgets nothing), in memory otherwise.

- Sign-in (the login form and `POST /api/auth/token`): failed attempts per address and
  username (the username in the one form sign-in looks it up by, so " victim" and
  "VICTIM " are one account), and five times that per address whatever the usernames.
  Only failures count: many people may share an address and sign in fine.
- Sign-up and recharge: per address, except a request straight from this machine (a
  support script, the benchmark's load client signing up thousands). Session requests,
  chat messages (REST, pages and socket alike) and reports: per account.
- Ending a session is never limited: billing must be able to stop.

Over a limit: `429` with `Retry-After` (seconds); over the socket, an `error` frame.
"""

import bisect
import functools
import ipaddress
import math
import threading
import time
from functools import wraps

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user
from limits import parse
from limits.storage import MemoryStorage

from .. import accounts
from ..errors import DomainError

TOO_MANY_SIGN_INS = "Too many sign-in attempts; try again later"

# One Limiter for the process, as Flask-Limiter's decorators want; `init_app` gives each
# app its own storage (a test's app counts on its own).
limiter = Limiter(key_func=get_remote_address, headers_enabled=True)

# Per-account limits: the setting that holds each, and what the person is told.
PER_ACCOUNT = {
    "session-request": ("SESSION_REQUEST_LIMIT", "Too many session requests; try again later"),
    "message": ("MESSAGE_LIMIT", "Too many messages; slow down a little"),
    "report": ("REPORT_LIMIT", "Too many reports; try again later"),
}


class Throttled(DomainError):
    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory storage, sweeping expired counts every few seconds, not every 10 ms.

    Its sweep walks every key, and with a key per chatting account it took a quarter of the
    server's CPU at 1,000 sessions (bench/profile --mode chat). An expired count is dropped
    when read anyway, so the sweep only gives memory back. (Overrides the pinned limits'
    private scheduling hook; tests/unit/test_rate_limit_storage.py notices if it moves.)
    """

    STORAGE_SCHEME = ["consult-memory"]
    SWEEP_SECONDS = 5.0
    _sweep_after = 0.0  # monotonic: no sweep is scheduled to run after this

    def _MemoryStorage__schedule_expiry(self) -> None:
        # Asked at every count: a clock comparison, not `timer.is_alive()` (a lock's
        # acquire and release under gevent, 3 % of a chat message's CPU).
        now = time.monotonic()
        if now < self._sweep_after:
            return
        self._sweep_after = now + self.SWEEP_SECONDS
        self.timer = threading.Timer(self.SWEEP_SECONDS, self._MemoryStorage__expire_events)
        self.timer.daemon = True
        self.timer.start()


def init_app(app: Flask) -> None:
    app.config.setdefault(
        "RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "consult-memory://"
    )
    app.config.setdefault("RATELIMIT_KEY_PREFIX", f"{app.config['REDIS_PREFIX']}:limits")
    app.config.setdefault("RATELIMIT_HEADER_RETRY_AFTER_VALUE", "delta-seconds")
    limiter.init_app(app)


def _sign_in_window(times: int):
    def limit() -> str:
        config = current_app.config
        most = config["LOGIN_ATTEMPTS_PER_WINDOW"] * times
        return f"{most} per {config['LOGIN_WINDOW_SECONDS']} seconds"

    return limit


def _failed(response) -> bool:
    return response.status_code == 401


def _address_and_username() -> str:
    body = request.get_json(silent=True) if request.is_json else request.form
    username = body.get("username", "") if hasattr(body, "get") else ""
    return f"{get_remote_address()}/{accounts.normal_username(username)}"


def sign_in(view):
    """The sign-in limits, shared by the login form and the token route."""
    for decorate in (
        limiter.shared_limit(
            _sign_in_window(1),
            scope="sign-in",
            key_func=_address_and_username,
            methods=["POST"],
            deduct_when=_failed,
            error_message=TOO_MANY_SIGN_INS,
        ),
        limiter.shared_limit(
            _sign_in_window(5),
            scope="sign-in-address",
            methods=["POST"],
            deduct_when=_failed,
            error_message=TOO_MANY_SIGN_INS,
        ),
    ):
        view = decorate(view)
    return view


RELAYED = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def from_this_machine() -> bool:
    """A request from a loopback address that no proxy relayed: a process on this machine,
    not a flood from the internet. A proxy on this machine adds its forwarding header, so
    what it relays still counts (against its address, as every request did before)."""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return address.is_loopback and not any(header in request.headers for header in RELAYED)


def per_address(setting: str, scope: str, message: str):
    """A limit per address from the setting `setting`, shared by the views it decorates."""
    return limiter.shared_limit(
        lambda: current_app.config[setting],
        scope=scope,
        methods=["POST"],
        error_message=message,
        exempt_when=from_this_machine,
    )


sign_up = per_address("SIGNUP_LIMIT", "sign-up", "Too many sign-ups from here; try again later")
recharge = per_address("RECHARGE_LIMIT", "recharge", "Too many recharges; try again later")


@functools.cache
def _parsed(limit: str):
    """A limit string, parsed once (a chat message spends one on every send)."""
    return parse(limit)


def spend(kind: str, account_id: int) -> None:
    """Count one `kind` action of the account; raise Throttled once over its limit."""
    setting, message = PER_ACCOUNT[kind]
    item = _parsed(current_app.config[setting])
    if not limiter.limiter.hit(item, kind, str(account_id)):
        reset_at = limiter.limiter.get_window_stats(item, kind, str(account_id)).reset_time
        raise Throttled(message, max(1, math.ceil(reset_at - time.time())))


def per_account(kind: str):
    """A view whose POST spends one `kind` action of the signed-in account before it runs."""

    def decorate(view):
        @wraps(view)
        def limited(*args, **kwargs):
            if request.method == "POST" and current_user.is_authenticated:
                spend(kind, current_user.id)
            return view(*args, **kwargs)

        return limited

    return decorate


class FrameBudget:
    """At most `per_second` frames in any second on one socket (it lives on one instance,
    so it is counted there). `goes_on` once twice that arrived within a second.

    One per socket, so it is small: the arrival times are short lists (at most
    `per_second` each) rather than deques, which allocate a 64-slot block each even empty.
    """

    __slots__ = ("per_second", "_taken", "_refused")

    def __init__(self, per_second: int):
        self.per_second = per_second
        self._taken: list[float] = []
        self._refused: list[float] = []

    @property
    def message(self) -> str:
        return f"Too many frames: at most {self.per_second} a second"

    def take(self, now: float) -> bool:
        for times in (self._taken, self._refused):
            del times[: bisect.bisect_right(times, now - 1)]  # those a second old or more
        if len(self._taken) >= self.per_second:
            self._refused.append(now)
            return False
        self._taken.append(now)
        return True

    @property
    def goes_on(self) -> bool:
        return len(self._refused) >= self.per_second
