"""Keep-alive: one greenlet pings every socket of this instance in turn.

A peer that vanished without closing (a phone that lost its network) sends nothing, so only
an unanswered ping shows it is gone, and billing pauses only once the server notices. So
every socket is pinged every `SOCKET_PING_SECONDS`, and one whose previous ping went
unanswered is hung up, as simple-websocket's own `ping_interval` would. That option gave
each socket a timer and a selector on top of its reader, woken for every frame: 10,000 idle
sockets cost ~12 % of a core (bench/scale). Here one greenlet looks once a second for the
sockets due (each on its own schedule, from when it connected) and hands each a two-byte
frame, sent at once when nothing else is being written to it (a greenlet per ping cost a
fifth of the keep-alive's CPU).
"""

import logging
import time
from typing import Protocol

import gevent
from flask import Flask

from .. import off_the_loop

log = logging.getLogger(__name__)
# Pings sent before the sockets with frames waiting get a turn: 100 take ~1-2 ms here.
PING_BATCH = 100


def send_now(sock, data: bytes) -> int:
    """Send what the kernel takes at once, never waiting (gevent's `timeout=0.0`): the
    pinger must not stall on one peer whose buffer is full. Returns the bytes sent."""
    try:
        return sock.send(data, 0, timeout=0.0)
    except BlockingIOError:
        return 0


class Pingable(Protocol):
    def ping(self) -> None:
        """Queue a ping, or hang up if the previous one went unanswered."""


class KeepAlive:
    def __init__(self, interval: float):
        self.interval = interval
        self._due: dict[Pingable, float] = {}
        self._runner = None

    def watch(self, connection: Pingable) -> None:
        self._due[connection] = time.monotonic() + self.interval
        if self._runner is None:
            self._runner = gevent.spawn(self._run)

    def forget(self, connection: Pingable) -> None:
        self._due.pop(connection, None)

    def ping_due(self, now: float) -> int:
        """Ping every socket whose turn has come, a batch at a time; returns how many."""
        due = [c for c, at in self._due.items() if at <= now]
        pinged = 0
        for n, connection in enumerate(due, 1):
            if n % PING_BATCH == 0:  # sockets that connected together fall due together
                off_the_loop.let_sockets_in()
            if connection not in self._due:  # it closed meanwhile
                continue
            self._due[connection] = now + self.interval
            pinged += 1
            try:
                connection.ping()
            except Exception:  # one broken socket must not stop the pings of the others
                log.exception("could not ping a socket")
        return pinged

    def _run(self) -> None:
        while True:
            gevent.sleep(min(1.0, self.interval))
            self.ping_due(time.monotonic())


def of(app: Flask) -> KeepAlive:
    """This app's keep-alive (one per process and app)."""
    if "consult_keepalive" not in app.extensions:
        app.extensions["consult_keepalive"] = KeepAlive(app.config["SOCKET_PING_SECONDS"])
    return app.extensions["consult_keepalive"]
