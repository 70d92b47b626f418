"""Socket clients against a real server, and `delivered`: the point after which a socket
holds every frame the server owes it, so "exactly once" is counted, not waited out.

Why `delivered` is exact: the scheduler that holds the lease renews it in the database at
every tick, so two renewals after a call mean a whole tick began and finished after it
(ticks run one after another); a tick publishes what it ends before it finishes, and the
server queues a socket's frames, direct answers included, in one queue per socket. So once
the scheduler has ticked past a moment and a `billing:status` sent on the socket has been
answered, every frame published for that socket up to that moment has arrived: whatever
the requests before it and the scheduler could send. (Two instances: test_scale_out.py.)
"""

import json
import queue
import socket
import threading
import time
from datetime import datetime

import websocket

from helpers.books import books_app, query
from helpers.server import unique, wait_until


class _Client:
    """A websocket-client connection with a reader thread, so server pings are answered
    and what arrives can be awaited; it records how the server closed it."""

    def __init__(self, url: str, headers=None, origin=None):
        self.closed = threading.Event()
        self.close_code = None
        self.close_reason = ""
        self.ws = websocket.create_connection(
            url, timeout=10, header=headers or [], origin=origin, suppress_origin=origin is None
        )
        # The 10 s timeout is for the handshake; the reader then blocks as long as the
        # socket lives (server pings keep it honest), or idle sockets would die at 10 s.
        self.ws.settimeout(None)
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
                self._received(data)
        except (websocket.WebSocketException, OSError, ValueError):
            pass
        finally:
            self.closed.set()

    def _received(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Close with a close handshake but without websocket-client's 3 s wait in
        `close()`: the reader thread is the one that reads the server's answer."""
        sock = self.ws.sock
        if self.closed.is_set() or sock is None or sock.fileno() == -1:
            return  # closed by the server, or dropped
        try:
            self.ws.send_close()
        except Exception:  # closed meanwhile
            pass
        self.closed.wait(2)
        try:
            self.ws.shutdown()
        except Exception:
            pass

    def drop(self) -> None:
        """Vanish without a close frame, like a phone losing signal."""
        sock = self.ws.sock  # the reader thread sets ws.sock to None once it sees the EOF
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()


class Socket(_Client):
    """The JSON socket (`/api/ws`): frames are awaited by condition, and counted."""

    def __init__(self, url: str, headers=None, origin=None):
        self.frames: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        super().__init__(url, headers, origin)

    def _received(self, data: bytes) -> None:
        self.frames.put(json.loads(data))

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

    def round_trip(self, timeout: float = 10.0) -> None:
        """Ask `billing:status` and wait for its answer (a reply or an error, with our
        requestId): the server sends a socket's frames in order, so whatever was queued for
        this socket before the question has arrived once the answer has."""
        marker = unique("sync-")
        self.send("billing:status", {}, requestId=marker)
        self._next(lambda f: f.get("requestId") == marker, timeout, f"the answer to {marker}")

    def count(self, event: str) -> int:
        """How many `event` frames have arrived and were not taken by a wait: exact only
        after `delivered`, which makes sure nothing more is on its way."""
        while True:
            try:
                self.seen.append(self.frames.get_nowait())
            except queue.Empty:
                return sum(1 for f in self.seen if f["event"] == event)


class RawSocket(_Client):
    """The pages' socket (`/ws`): every text frame is kept as text (it sends HTML
    fragments, not JSON)."""

    def __init__(self, url: str, headers=None, origin=None):
        self.texts: list[str] = []
        super().__init__(url, headers, origin)

    def _received(self, data: bytes) -> None:
        self.texts.append(data.decode("utf-8", "replace"))

    def send(self, text: str) -> None:
        self.ws.send(text)

    def wait_for_text(self, needle: str, timeout: float = 10.0) -> str:
        return wait_until(
            lambda: next((t for t in self.texts if needle in t), None),
            timeout=timeout,
            message=f"a frame containing {needle!r}",
        )


def _lease_renewed_at(target):
    rows = query(target, "SELECT expires_at FROM leases WHERE name = 'scheduler'")
    return rows[0][0] if rows else None


def ticked_past(server, moment: datetime, timeout: float) -> None:
    """Return once the server's scheduler has begun a tick after `moment` (aware, UTC), by
    the server's clock: the lease renewed at each tick's start ends `lease_ttl` after it."""
    from sqlalchemy import select

    from consult.db import db
    from consult.scheduler import SCHEDULER_LEASE, Lease, lease_ttl

    ttl = lease_ttl(float(server.settings["SCHEDULER_INTERVAL_SECONDS"]))

    def past() -> bool:
        with books_app(server.database_url).app_context():
            ends = db.session.scalar(select(Lease.expires_at).where(Lease.name == SCHEDULER_LEASE))
            db.session.rollback()
        return ends is not None and ends - ttl > moment

    wait_until(past, timeout=timeout, interval=0.05, message=f"a scheduler tick after {moment}")


def scheduler_ticked(target, timeout: float = 10.0) -> None:
    """Return once the server's scheduler has run a whole tick that began after this call.

    The lease holder renews its lease at the start of every tick's work: the first renewal
    seen after the call is a tick that began after it, and the next one means that tick
    has finished (missed renewals only make the wait longer)."""
    last, renewals = _lease_renewed_at(target), 0

    def renewed_twice():
        nonlocal last, renewals
        now = _lease_renewed_at(target)
        if now != last:
            last, renewals = now, renewals + 1
        return renewals >= 2

    wait_until(renewed_twice, timeout=timeout, interval=0.02, message="two scheduler ticks")


def delivered(server, *sockets: Socket) -> None:
    """Return once each socket holds every frame the server owes it up to now: whatever
    requests made, and whatever the scheduler's next tick would publish (see the module's
    docstring). Then `Socket.count` is exact: a late duplicate would be counted."""
    scheduler_ticked(server)
    for ws in sockets:
        ws.round_trip()
