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


def test_the_due_are_pinged_in_batches_and_one_closed_meanwhile_is_skipped(monkeypatch):
    """Between batches the loop serves other sockets; one of them may close meanwhile."""
    monkeypatch.setattr("consult.web.keepalive.gevent.spawn", lambda run: object())
    monkeypatch.setattr("consult.web.keepalive.PING_BATCH", 2)
    keepalive = KeepAlive(1)
    sockets = [Socket() for _ in range(5)]
    for sock in sockets:
        keepalive.watch(sock)
    turns = []

    def let_sockets_in():
        turns.append(sum(s.pings for s in sockets))
        keepalive.forget(sockets[3])  # closed while the loop had its turn

    monkeypatch.setattr("consult.web.keepalive.off_the_loop.let_sockets_in", let_sockets_in)
    assert keepalive.ping_due(1e12) == 4
    assert turns == [1, 3]  # before the 2nd and the 4th: a batch of two each time
    assert [s.pings for s in sockets] == [1, 1, 1, 0, 1]
    assert keepalive.ping_due(2e12) == 4  # the closed one is not back on the schedule
