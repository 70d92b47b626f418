"""Who may do what: bearer tokens, CSRF tokens, socket origins, login throttling, headers."""

import hashlib
import io
import secrets

from flask import Flask, abort, current_app, g, request, session
from flask_login import AnonymousUserMixin
from flask_wtf.csrf import CSRFError, CSRFProtect

from .. import accounts
from ..clock import utcnow
from ..errors import DomainError

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_FIELD = "csrf_token"
LOGIN_MARKER = "login_id"  # names one sign-in of one browser, so sign-out can find its sockets
SIGNED_OUT = "session:logout"  # a hub event: close the sockets of that browser's sign-in


class CsrfError(DomainError):
    """A cookie-authenticated change arrived without this session's CSRF token."""


CSRF_REFUSED = "The form expired or the CSRF token is missing; reload the page and try again"
# Flask-WTF's CSRF protection, checked only where a cookie carries the sign-in (below):
# bearer-token calls cannot be forged by another page, and need no token.
csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # `check_csrf` decides when
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # a long chat's End button still works
    csrf.init_app(app)  # also the templates' csrf_token()

    @app.before_request
    def authenticate_and_check_csrf():
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        if request.content_length is not None and request.content_length > limit:
            abort(413)  # every route, even one that never reads its body
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if request.content_length is None and chunked:
            _limit_chunked_body(limit)
        token = bearer_token()
        if token is not None:
            # A bearer request is the token's owner alone, whatever cookie rides along;
            # it needs no CSRF token, since a foreign page cannot set this header.
            user = accounts.user_for_token(token, now=utcnow())
            g._login_user = user or AnonymousUserMixin()
            g.token_auth = user is not None
            return None
        if request.method in MUTATING and _cookie_matters():
            check_csrf()
        return None

    @app.after_request
    def security_headers(response):
        # 'self' covers the page's own ws:// and wss:// (CSP level 3), so nothing a client
        # sends (its Host header) is echoed into the policy (issue 13 F9).
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; "
            "base-uri 'self'; form-action 'self'; object-src 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.endpoint != "static":
            # Wallets, bills, chats and CSRF tokens: no browser or proxy keeps a copy (a
            # shared computer's back button included). Static files cache as Flask says.
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _cookie_matters() -> bool:
    """API calls without a signed-in cookie carry no ambient credential a forger could ride."""
    return not request.path.startswith("/api/") or "_user_id" in session


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()
    if request.path.endswith("/ws") and request.args.get("token"):
        return request.args["token"]
    return None


def start_browser_session(user) -> None:
    """Mark a fresh sign-in of this browser (call right after `login_user`): a new marker,
    recorded so that sign-out can close it server-side, and a new CSRF token, so no token
    seen before the sign-in (say, on the login form of a shared machine) works after it."""
    session[LOGIN_MARKER] = secrets.token_urlsafe(16)
    session.pop(CSRF_FIELD, None)
    accounts.open_sign_in(user, browser_session_key(), at=utcnow())


def end_browser_session() -> str | None:
    """Close this browser's sign-in server-side and forget the whole cookie session; returns
    the sign-in's key (to close its sockets)."""
    key = browser_session_key()
    if key is not None:
        accounts.close_sign_in(key, at=utcnow())
    session.clear()
    return key


def browser_sign_in_is_open(user) -> bool:
    """Whether the cookie's sign-in is still open (not signed out, here or from a copy)."""
    return accounts.sign_in_is_open(user.id, browser_session_key())


def browser_session_key() -> str | None:
    """Which browser sign-in a cookie-authenticated request belongs to; None for bearer tokens.

    Sockets keep it from their handshake, and sign-out closes the ones with its key. Only a
    digest travels through the hub. Sessions signed in before the marker existed fall back
    to their CSRF token, which is just as much one browser's own.
    """
    if bearer_token() is not None:
        return None
    marker = session.get(LOGIN_MARKER) or session.get(CSRF_FIELD)
    if not marker:
        return None
    return hashlib.sha256(marker.encode()).hexdigest()[:32]


def _limit_chunked_body(limit: int) -> None:
    """A chunked body has no Content-Length to check up front, and Werkzeug cuts it off
    at the limit without a word (the view then sees broken JSON): read one byte past the
    limit to tell "over" from "exactly", and hand the views what was read."""
    body = request.environ["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        abort(413)
    request.environ["wsgi.input"] = io.BytesIO(body)


def check_csrf() -> None:
    """Flask-WTF's check: the form's `csrf_token` or the `X-CSRF-Token` header (htmx sends
    it) must be this session's signed token."""
    try:
        csrf.protect()
    except CSRFError:
        raise CsrfError(CSRF_REFUSED) from None


def origin_allowed() -> bool:
    """Browsers always send Origin on a socket handshake; it must be ours (or configured)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # a program, not a browser
    # Exact matches only: scheme, host and port, never a prefix or a substring.
    own = f"{request.scheme}://{request.host}"
    allowed = {o.strip() for o in current_app.config["ALLOWED_ORIGINS"].split(",") if o.strip()}
    return origin == own or origin in allowed
