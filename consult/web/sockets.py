"""WebSockets: `/api/ws` speaks JSON frames (API.md); `/ws` feeds htmx pages HTML fragments.

Handlers stay thin: authenticate and check the Origin before the handshake, release the
database session, attach to the hub, loop on receive, detach in `finally`. Each connection
has its own send queue and writer, so one slow client never stalls a broadcast.
"""

import io
import json
import logging
import queue
import threading

from flask import Flask, abort, current_app, g, request
from flask_login import current_user
from simple_websocket import ConnectionClosed

from .. import chat, consultations
from ..accounts import User
from ..clock import utcnow
from ..db import db
from ..errors import DomainError, Forbidden, Invalid
from ..realtime import Event
from . import render
from .api import billing_status_for, end_for_caller
from .common import services
from .security import SIGNED_OUT, browser_session_key, origin_allowed

log = logging.getLogger(__name__)
SOCKET_PATHS = ("/ws", "/api/ws")
WATCHABLE = frozenset({"presence"})
QUEUE_LIMIT = 1000  # a client this far behind is dropped rather than buffered forever
_SIGN_OFF = object()  # queued for the writer: say goodbye, then close


class SocketConnection:
    """One live socket of one user; `deliver` only queues, the writer thread sends."""

    def __init__(
        self,
        app: Flask,
        ws,
        user_id: int,
        html: bool,
        environ: dict | None = None,
        browser_session: str | None = None,
        topics: frozenset[str] = frozenset(),
    ):
        self.app, self.ws, self.user_id, self.html = app, ws, user_id, html
        self.topics = topics  # broadcasts it watches: "presence" on the astrologer list
        self.environ = environ or {}
        self.browser_session = browser_session  # None: authenticated by a bearer token
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_LIMIT)
        self._writer = threading.Thread(target=self._write, daemon=True)

    def start(self) -> None:
        self._writer.start()

    def deliver(self, event: Event) -> None:
        if event.name == SIGNED_OUT:  # never sent on: it only closes this browser's sockets
            if self.browser_session is not None and (
                event.data.get("browserSession") == self.browser_session
            ):
                self._enqueue(_SIGN_OFF)
            return
        self._enqueue(event)

    def _enqueue(self, item) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            log.warning("dropping a socket of user %s: %d events behind", self.user_id, QUEUE_LIMIT)
            self.close()

    def send(self, event: Event, request_id: str | None = None) -> None:
        """Answer the client directly, echoing its requestId when it sent one."""
        self.deliver(event if request_id is None else _Reply(event, request_id))

    def close(self) -> None:
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        try:
            self.ws.close()
        except Exception:  # already closed by the peer
            pass

    def _write(self) -> None:
        while (item := self._queue.get()) is not None:
            if item is _SIGN_OFF:
                try:
                    self.ws.close(reason=1000, message="Signed out")
                except ConnectionClosed:
                    pass
                return
            try:
                text = self._render(item)
                if text:
                    self.ws.send(text)
            except ConnectionClosed:
                return
            except Exception:
                log.exception(
                    "could not send %s to user %s", getattr(item, "name", item), self.user_id
                )

    def _render(self, item) -> str | None:
        if not self.html:
            return json.dumps(
                item.frame()
                if isinstance(item, _Reply)
                else {"event": item.name, "data": item.data}
            )
        # Fragments use url_for, the signed-in user and the CSRF token: render them in a
        # request context rebuilt from the handshake (its cookie and host), not the live socket.
        with self.app.request_context({**self.environ, "wsgi.input": io.BytesIO()}):
            return render.fragments(self.user_id, item.event if isinstance(item, _Reply) else item)


class _Reply:
    """A direct answer to a client frame: carries that frame's requestId."""

    def __init__(self, event: Event, request_id: str):
        self.event, self.request_id = event, request_id
        self.name = event.name

    def frame(self) -> dict:
        return {"event": self.event.name, "data": self.event.data, "requestId": self.request_id}


def init_app(app: Flask) -> None:
    from . import sock

    @app.before_request
    def guard_handshake():
        if request.path not in SOCKET_PATHS:
            return None
        if not origin_allowed():
            abort(403, "Origin not allowed")
        if not current_user.is_authenticated:
            abort(401, "Authentication required")
        return None

    @sock.route("/api/ws")
    def api_socket(ws):
        serve(ws, html=False)

    @sock.route("/ws")
    def page_socket(ws):
        serve(ws, html=True)


def serve(ws, *, html: bool) -> None:
    app = current_app._get_current_object()
    user_id = current_user.id
    db.session.remove()  # never hold a pooled connection for the socket's whole life
    hub = services().hub
    handshake = {k: v for k, v in request.environ.items() if isinstance(v, str)}
    # Only a page showing the astrologer list asks for presence (`?watch=presence`): a
    # broadcast to every socket would cost O(sockets) per login.
    topics = frozenset(t for t in request.args.getlist("watch") if t in WATCHABLE)
    connection = SocketConnection(
        app, ws, user_id, html, handshake, browser_session_key(), topics=topics
    )
    connection.start()
    if not html:
        connection.deliver(Event("session:state", _state(user_id)))
    hub.attach(connection)
    try:
        while True:
            raw = ws.receive()
            if raw is None:
                continue
            _handle(connection, raw)
            db.session.remove()
    except ConnectionClosed:
        pass
    finally:
        hub.detach(connection)
        connection.close()


def _state(user_id: int):
    viewer = db.session.get(User, user_id)
    active = consultations.active_for(viewer)
    state = active.to_api() if active else None
    db.session.remove()
    return state


def _handle(connection: SocketConnection, raw) -> None:
    request_id = None
    session_id = None
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
        viewer = db.session.get(User, connection.user_id)
        g._login_user = viewer  # the views' helpers read current_user
        g.request_id = request_id or g.get("request_id")
        reply = _dispatch(viewer, name, data)
        if reply is not None:
            connection.send(reply, request_id)
    except DomainError as error:
        body = {"message": error.message}
        if isinstance(session_id, int):
            body["sessionId"] = session_id
        connection.send(Event("error", body), request_id)


def _parse(raw):
    """Decode a frame's JSON; whatever a client can send that is not JSON is its error.

    Besides syntax errors, that is text that is not UTF-8, nesting deep enough to exhaust
    the parser's recursion, and integers longer than Python will convert (a ValueError):
    each would otherwise escape the handler and kill the socket.
    """
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise Invalid("Frames must be JSON text") from None


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


def _dispatch(viewer: User, name, data: dict) -> Event | None:
    if name == "endSession":
        answer = end_for_caller(
            data.get("sessionId"),
            key=data.get("idempotencyKey"),
            fingerprint_text=f"WS endSession {data.get('sessionId')}",
        )
        return Event("endSession:result", answer)
    if name == "billing:status":
        if viewer.role not in ("user", "astrologer"):  # as GET /api/billing/status answers
            raise Forbidden("Only users or astrologers can do this")
        return Event("billing:status", billing_status_for(viewer, data.get("sessionId")))
    if name == "chat:send":
        chat.post_message(
            viewer, data.get("sessionId"), data.get("text"), at=utcnow(), hub=services().hub
        )
        return None
    raise Invalid(f"Unknown event: {str(name)[:40]}")
