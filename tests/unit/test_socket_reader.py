"""simple-websocket's reader run in the handler's greenlet (consult/web/reader.py): each
message reaches `on_arrival` as it is read, in order, and `run()` returns once the peer has
closed. It leans on how simple-websocket uses its thread and event classes, so this pins
that down against the version in requirements.txt."""

import gevent
import gevent.socket
from simple_websocket import Server

from consult.web.reader import Arrivals, InlineReader
from helpers.handshake import handshake


def masked(opcode: int, payload: bytes) -> bytes:
    """A client's frame (FIN set), masked with a zero key: the payload as it is."""
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def test_each_message_is_handled_as_it_is_read_and_run_returns_once_the_peer_closed():
    server_side, client = gevent.socket.socketpair()
    try:
        ws = Server(handshake(server_side), thread_class=InlineReader, event_class=Arrivals)
        assert isinstance(ws.thread, InlineReader)
        heard = []

        def on_arrival():
            while ws.input_buffer:
                heard.append(ws.input_buffer.pop(0))

        ws.event.on_arrival = on_arrival

        def peer():
            assert b"101 Switching Protocols" in client.recv(4096)
            client.sendall(masked(1, b"one") + masked(1, b"two"))  # one read, two messages
            while heard != ["one", "two"]:  # handled as read, before the next one is sent
                gevent.sleep(0.005)  # (bounded: the Timeout below)
            client.sendall(masked(1, b"three") + masked(8, (1000).to_bytes(2, "big")))
            reply = client.recv(4096)
            client.close()
            return reply

        answered = gevent.spawn(peer)
        with gevent.Timeout(5):
            ws.thread.run()  # in this greenlet, as `sockets.serve` runs it
            reply = answered.get()
        assert heard == ["one", "two", "three"]
        assert reply[:1] == b"\x88"  # the close frame answered
        assert not ws.connected
    finally:
        client.close()
        server_side.close()


def test_nobody_waits_on_arrivals():
    arrivals = Arrivals()
    arrivals.set()  # nobody to tell yet: nothing happens
    calls = []
    arrivals.on_arrival = lambda: calls.append(1)
    arrivals.set()
    arrivals.clear()
    assert calls == [1] and not arrivals.is_set()
