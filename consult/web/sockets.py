"""WebSockets: `/api/ws` speaks JSON frames (docs/websocket.md); `/ws` feeds htmx pages
HTML fragments.

Handlers stay thin: authenticate and check the Origin before the handshake, release the
database session, attach to the hub, loop on receive, detach in `finally`. Each connection
has its own send queue and writer, so one slow client never stalls a broadcast.
"""

import io
import json
import logging
import socket
import time
from collections import Counter, deque
from dataclasses import dataclass

import gevent
from flask import Flask, abort, current_app, g, request
from flask_babel import force_locale
from flask_login import current_user
from simple_websocket import ConnectionClosed

from .. import chat, consultations, frames, metrics, text, wire
from ..accounts import Caller, User
from ..clock import utcnow
from ..db import db
from ..errors import DomainError, Forbidden, Invalid
from ..realtime import Event
from . import keepalive, language, rate_limits, render
from .common import services
from .reader import Arrivals, InlineReader
from .security import SIGNED_OUT, browser_session_key, origin_allowed

log = logging.getLogger(__name__)
SOCKET_PATHS = ("/ws", "/api/ws")
# Broadcast topics a socket may watch (`?watch=`), by who may watch them: presence for the
# astrologer list, the live console's changes for admins alone.
WATCHABLE = {"presence": ("user", "astrologer", "admin"), consultations.live.TOPIC: ("admin",)}
QUEUE_LIMIT = 1000  # a client this far behind is dropped rather than buffered forever


@dataclass(frozen=True)
class _Goodbye:
    """Queued for the writer: what was queued before still goes, then the socket closes."""

    code: int
    reason: str


_SIGN_OFF = _Goodbye(1000, "Signed out")
_TOO_FAST = _Goodbye(1008, "Too many frames")


class SocketConnection:
    """One live socket of one user; `deliver` never blocks.

    A program's socket (JSON) sends an event's frame at once when nothing is queued before
    it, as much as the kernel takes without waiting; whatever is left, and every page's
    fragment (rendered per viewer), goes to a writer greenlet. The writer, and its queue,
    exist only while there is something to send: an idle socket costs this object and its
    frame budget, and a slow client delays only its own frames. One per socket, so it has
    slots rather than a dict, and no empty deque (a 64-slot block) waiting.
    """

    __slots__ = (
        "app",
        "ws",
        "caller",
        "html",
        "user_id",
        "topics",
        "environ",
        "lang",
        "browser_session",
        "frames",
        "_queue",
        "_writer",
        "_closed",
        "_cut_next_turn",
    )

    def __init__(
        self,
        app: Flask,
        ws,
        caller: Caller,
        html: bool,
        environ: dict | None = None,
        browser_session: str | None = None,
        topics: frozenset[str] = frozenset(),
        lang: str = language.DEFAULT,
    ):
        self.app, self.ws, self.caller, self.html = app, ws, caller, html
        self.user_id = caller.id
        self.topics = topics  # broadcasts it watches: "presence" on the astrologer list
        self.environ = environ  # pages only: fragments render in a rebuilt request context
        self.lang = lang  # pages only: the viewer's, as chosen at the handshake
        self.browser_session = browser_session  # None: authenticated by a bearer token
        self._queue: deque | None = None  # while a writer runs
        self._writer = None
        self._closed = False
        self._cut_next_turn = False
        self.frames = rate_limits.FrameBudget(app.config["SOCKET_FRAMES_PER_SECOND"])

    def deliver(self, event: Event) -> None:
        if event.name == SIGNED_OUT:  # never sent on: it only closes this browser's sockets
            # ...or, with "everywhere" (an admin suspended the account), every socket the
            # user has, bearer-token ones included; what was queued before still goes first.
            if event.data.get("everywhere") or (
                self.browser_session is not None
                and event.data.get("browserSession") == self.browser_session
            ):
                self.close_after(_SIGN_OFF)
            return
        if self._writer is None and not self.html:  # nothing queued: no greenlet needed
            self._send_now(event.framed)
        else:
            self._enqueue(event)

    def _send_now(self, frame: bytes) -> bool:
        """Send what the kernel takes at once and queue the rest for the writer; False if
        the connection is gone. Only while no writer runs, so frames keep their order."""
        if self._closed or not self.ws.connected:
            self._closed = True
            return False
        try:
            sent = keepalive.send_now(self.ws.sock, frame)
        except OSError:  # reset or broken: the peer is gone
            self._closed = True
            return False
        if sent < len(frame):  # the kernel's buffer was full: the writer sends the rest
            self._enqueue(frame[sent:])
        return True

    def _enqueue(self, item) -> None:
        if self._closed:
            return
        if self._queue is None:
            self._queue = deque()
        elif len(self._queue) >= QUEUE_LIMIT:
            log.warning("dropping a socket of user %s: %d events behind", self.user_id, QUEUE_LIMIT)
            self.close()
            return
        self._queue.append(item)
        if self._writer is None:
            self._writer = gevent.spawn(self._write)

    def close_after(self, goodbye: _Goodbye) -> None:
        """Close once what is queued has gone, with the goodbye's code and reason."""
        self._enqueue(goodbye)

    def send(self, event: Event, request_id: str | None = None) -> None:
        """Answer the client directly, echoing its requestId when it sent one."""
        self.deliver(event if request_id is None else _Reply(event, request_id))

    def close(self) -> None:
        self._closed = True
        self._queue = None
        try:
            self.ws.close()
        except Exception:  # already closed by the peer
            pass

    def ping(self) -> None:
        """The keep-alive's turn: queue a ping, or hang up if the last one went unanswered."""
        if self._closed:
            # Our close went out (a goodbye, a full queue) and the reader still waits for
            # the peer's: a peer that never answers it is cut at the turn after next.
            if self._cut_next_turn:
                self._shut()
            self._cut_next_turn = True
            return
        if not self.ws.pong_received:
            gevent.spawn(self._hang_up)
            return
        self.ws.pong_received = False
        if self._writer is not None:  # after what is being written
            self._enqueue(frames.PING)
        elif not self._send_now(frames.PING):
            gevent.spawn(self._hang_up)

    def _hang_up(self) -> None:
        """The peer stopped answering: a close frame if it can go at once (and no frame is
        being written), then the connection is shut, which wakes its reader (`serve`)."""
        busy = self._writer is not None
        self._closed = True
        self._queue = None
        ws = self.ws
        if not busy:
            with gevent.Timeout(1, False):
                try:
                    ws.close(reason=1008, message="Ping/Pong timeout")
                except Exception:  # gone meanwhile
                    pass
        self._shut()

    def _shut(self) -> None:
        """Shut the connection: its reader (`serve`) wakes and sees it gone."""
        self.ws.connected = False
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _write(self) -> None:
        try:
            while self._queue:
                item = self._queue.popleft()
                if isinstance(item, _Goodbye):  # nothing after the goodbye is sent
                    self._closed = True
                    self._queue = None
                    self.ws.close(reason=item.code, message=item.reason)
                elif isinstance(item, bytes):  # (the rest of) a frame
                    self.ws.sock.sendall(item)
                elif frame := self._framed(item):
                    if not self.ws.connected:  # the peer's close arrived
                        raise ConnectionClosed()
                    self.ws.sock.sendall(frame)
        except (ConnectionClosed, OSError):
            self._closed = True
        finally:
            self._writer = None
            self._queue = None  # drained (no switch since the loop found it empty) or closed

    def _framed(self, item) -> bytes | None:
        """The item's frame; one that cannot be rendered is logged and skipped, not fatal."""
        if not self.html:
            return item.framed
        # Fragments use url_for, the signed-in user and the CSRF token: render them in a
        # request context rebuilt from the handshake (its cookie and host), not the live socket.
        try:
            with (
                self.app.request_context({**self.environ, "wsgi.input": io.BytesIO()}),
                force_locale(self.lang),
            ):
                html = render.fragments(
                    self.user_id, item.event if isinstance(item, _Reply) else item
                )
        except Exception:
            log.exception("could not render %s for user %s", item.name, self.user_id)
            return None
        return frames.text(html) if html else None


class _Reply:
    """A direct answer to a client frame: carries that frame's requestId."""

    def __init__(self, event: Event, request_id: str):
        self.event, self.request_id = event, request_id
        self.name = event.name

    @property
    def framed(self) -> bytes:
        return frames.text(
            json.dumps(
                {"event": self.event.name, "data": self.event.data, "requestId": self.request_id}
            )
        )


def init_app(app: Flask) -> None:
    from . import sock

    # The handler's greenlet reads the connection itself (reader.py: one greenlet per
    # socket), and a close frame (1009 for a frame over the limit) must arrive however much
    # the client is still sending: the connection's socket closes by lingering.
    app.config["SOCK_SERVER_OPTIONS"] = {
        **app.config["SOCK_SERVER_OPTIONS"],
        "thread_class": InlineReader,
        "event_class": Arrivals,
    }

    @app.before_request
    def guard_handshake():
        if request.path not in SOCKET_PATHS:
            return None
        if not origin_allowed():
            abort(403, "Origin not allowed")
        if not current_user.is_authenticated:
            abort(401, "Authentication required")
        if _open_sockets(current_app)[current_user.id] >= current_app.config["SOCKETS_PER_USER"]:
            abort(429, "Too many open connections")
        # No permessage-deflate, whatever the client offers (browsers always do): our frames
        # are a few hundred bytes, and a compressor with its context kept cost each socket
        # ~110 KB more memory (163 against 56 KB, measured) and CPU on every frame sent.
        request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return None

    @sock.route("/api/ws")
    def api_socket(ws):
        serve(ws, html=False)

    @sock.route("/ws")
    def page_socket(ws):
        serve(ws, html=True)


def serve(ws, *, html: bool) -> None:
    app = current_app._get_current_object()
    caller = Caller(current_user.id, current_user.role)
    db.session.remove()  # never hold a pooled connection for the socket's whole life
    hub = services().hub
    handshake = {k: v for k, v in request.environ.items() if isinstance(v, str)} if html else None
    # Only a page showing the astrologer list asks for presence (`?watch=presence`): a
    # broadcast to every socket would cost O(sockets) per login.
    topics = frozenset(
        t for t in request.args.getlist("watch") if caller.role in WATCHABLE.get(t, ())
    )
    connection = SocketConnection(
        app,
        ws,
        caller,
        html,
        handshake,
        browser_session_key(),
        topics=topics,
        lang=language.chosen() if html else language.DEFAULT,
    )
    if not html:
        connection.deliver(Event("session:state", _state(caller.id)))
    hub.attach(connection)
    pings = keepalive.of(app)
    pings.watch(connection)
    _open_sockets(app)[caller.id] += 1
    metrics.OPEN_SOCKETS.inc()
    ws.event.on_arrival = lambda: _handle_arrivals(connection)
    try:
        ws.thread.run()  # simple-websocket's reader, in this greenlet, until the socket closes
    finally:
        ws.event.on_arrival = None
        open_sockets = _open_sockets(app)
        open_sockets[caller.id] -= 1
        if not open_sockets[caller.id]:  # no entry per user who ever connected
            del open_sockets[caller.id]
        hub.detach(connection)
        pings.forget(connection)
        metrics.OPEN_SOCKETS.dec()
        connection.close()


def _handle_arrivals(connection: SocketConnection) -> None:
    """Handle, in order, the frames the reader has just read (`reader.Arrivals`).

    A frame whose handling fails unexpectedly closes its socket, as it used to by ending
    the handler, and is logged; the reader then sees the close through.
    """
    buffer = connection.ws.input_buffer
    while buffer:
        raw = buffer.pop(0)
        try:
            _handle(connection, raw)
        except Exception:
            log.exception("a frame of user %s failed: closing its socket", connection.user_id)
            buffer.clear()
            connection.close()
        finally:
            db.session.remove()


def _open_sockets(app: Flask) -> Counter:
    """Open sockets per account on this instance (the cap is per instance)."""
    return app.extensions.setdefault("consult_open_sockets", Counter())


def _state(user_id: int):
    viewer = db.session.get(User, user_id)
    active = consultations.active_for(viewer)
    state = wire.session(active) if active else None
    db.session.remove()
    return state


def _handle(connection: SocketConnection, raw) -> None:
    request_id = None
    session_id = None
    # Every frame counts against the socket's budget, junk included; past it, only
    # `endSession` goes through: billing must always be able to stop.
    over_budget = not connection.frames.take(time.monotonic())
    try:
        frame = _parse(raw)
        if not isinstance(frame, dict):
            raise Invalid("Frames must be JSON objects")
        request_id = frame.get("requestId")
        if request_id is not None and not isinstance(request_id, str):
            request_id = None
            raise Invalid("requestId must be a string")
        name, data = _command(frame, connection.html)
        session_id = data.get("sessionId")
        if over_budget and name != "endSession":
            raise rate_limits.Throttled(connection.frames.message, 1)
        reply = _dispatch(connection.caller, name, data, request_id or g.get("request_id"))
        if reply is not None:
            connection.send(reply, request_id)
    except DomainError as error:
        body = {"message": error.message}
        if isinstance(session_id, int):
            body["sessionId"] = session_id
        connection.send(Event("error", body), request_id)
        if connection.frames.goes_on:  # twice the budget in a second: goodbye
            connection.close_after(_TOO_FAST)


def _parse(raw):
    """Decode a frame's JSON; whatever a client can send that is not JSON is its error.

    Besides syntax errors, that is text that is not UTF-8, nesting deep enough to exhaust
    the parser's recursion, and integers longer than Python will convert (a ValueError):
    each would otherwise escape the handler and kill the socket. Binary frames are refused
    whatever they hold: the protocol is JSON text.
    """
    if not isinstance(raw, str):
        raise Invalid("Frames must be JSON text, not binary")
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):
        raise Invalid("Frames must be JSON text") from None
    if not text.is_clean(frame):
        raise Invalid("Frames must be valid Unicode text")
    return frame


def _command(frame: dict, html: bool) -> tuple[str, dict]:
    """Read the event name and data; htmx forms send flat string fields instead."""
    if html:
        data = {k: v for k, v in frame.items() if k not in ("HEADERS", "event")}
        if isinstance(data.get("sessionId"), str) and data["sessionId"].isdigit():
            data["sessionId"] = int(data["sessionId"])
        return frame.get("event"), data
    name, data = frame.get("event"), frame.get("data", {})
    if not isinstance(name, str):
        raise Invalid("A frame needs an event name")
    if not isinstance(data, dict):
        raise Invalid("data must be a JSON object")
    return name, data


def _dispatch(caller: Caller, name, data: dict, request_id: str | None) -> Event | None:
    s = services()
    if name == "endSession":
        outcome = consultations.end_for_caller(
            caller,
            data.get("sessionId"),
            at=utcnow(),
            hub=s.hub,
            policy=s.policy,
            request_id=request_id,
            idempotency_key=data.get("idempotencyKey"),
            fingerprint=f"WS endSession {data.get('sessionId')}",
        )
        return Event("endSession:result", wire.end_answer(outcome, viewer_id=caller.id))
    if name == "billing:status":
        if caller.role not in ("user", "astrologer"):  # as GET /api/billing/status answers
            raise Forbidden("Only users or astrologers can do this")
        viewer = db.session.get(User, caller.id)
        bill = consultations.bill_for(viewer, data.get("sessionId"), at=utcnow())
        return Event("billing:status", wire.bill(bill, viewer_id=caller.id))
    if name == "chat:send":
        rate_limits.spend("message", caller.id)
        chat.post_message(caller, data.get("sessionId"), data.get("text"), at=utcnow(), hub=s.hub)
        return None
    raise Invalid(f"Unknown event: {str(name)[:40]}")
