"""The keep-alive's schedule: each socket pinged once per interval, from when it connected."""

import gevent
import gevent.socket

from consult.frames import PING
from consult.web.keepalive import KeepAlive, send_now


class Socket:
    def __init__(self, fails: bool = False):
        self.pings, self.fails = 0, fails

    def ping(self) -> None:
        self.pings += 1
        if self.fails:
            raise OSError("gone")


def test_each_socket_is_pinged_once_per_interval_on_its_own_schedule(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("consult.web.keepalive.time.monotonic", lambda: clock[0])
    monkeypatch.setattr("consult.web.keepalive.gevent.spawn", lambda run: object())
    keepalive = KeepAlive(25)
    early, late = Socket(), Socket()
    keepalive.watch(early)
    clock[0] = 110.0
    keepalive.watch(late)
    assert keepalive.ping_due(124.9) == 0
    assert keepalive.ping_due(125.0) == 1 and (early.pings, late.pings) == (1, 0)
    assert keepalive.ping_due(135.0) == 1 and (early.pings, late.pings) == (1, 1)
    assert keepalive.ping_due(149.9) == 0
    assert keepalive.ping_due(150.0) == 1 and early.pings == 2
    keepalive.forget(early)
    assert keepalive.ping_due(1_000.0) == 1 and (early.pings, late.pings) == (2, 2)


def test_a_socket_that_fails_to_ping_does_not_stop_the_others(monkeypatch):
    monkeypatch.setattr("consult.web.keepalive.gevent.spawn", lambda run: object())
    keepalive = KeepAlive(1)
    broken, fine = Socket(fails=True), Socket()
    keepalive.watch(broken)
    keepalive.watch(fine)
    assert keepalive.ping_due(float("inf")) == 2
    assert (broken.pings, fine.pings) == (1, 1)


def test_a_ping_never_waits_on_a_peer_whose_buffer_is_full():
    """The pinger is one greenlet for every socket: a full buffer must not stall it."""
    ours, theirs = gevent.socket.socketpair()
    try:
        assert send_now(ours, PING) == 2
        assert theirs.recv(2) == PING
        while send_now(ours, b"x" * 65536):  # a peer that reads nothing more
            pass
        with gevent.Timeout(5):  # were it to wait, the timeout would say so
            assert send_now(ours, PING) == 0
    finally:
        ours.close()
        theirs.close()
