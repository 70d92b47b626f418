"""simple-websocket's reader run in the handler's greenlet (consult/web/reader.py): each
message reaches `on_arrival` as it is read, in order, and `run()` returns once the peer has
closed. It leans on how simple-websocket uses its thread and event classes, so this pins
that down against the version in requirements.txt."""

import os
from types import SimpleNamespace

import gevent
import gevent.socket
import pytest
from simple_websocket import Server

from consult.web.reader import Arrivals, ClientFrames, InlineReader
from helpers.handshake import handshake


def masked(opcode: int, payload: bytes) -> bytes:
    """A client's frame (FIN set), masked with a zero key: the payload as it is."""
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def frame(payload: bytes, *, first: int = 0x81, mask: bytes | None = None) -> bytes:
    """A client's frame of any size, masked with a random key unless given one."""
    mask = os.urandom(4) if mask is None else mask
    size = len(payload)
    if size < 126:
        length = bytes([0x80 | size])
    elif size < 1 << 16:
        length = bytes([0x80 | 126]) + size.to_bytes(2)
    else:
        length = bytes([0x80 | 127]) + size.to_bytes(8)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([first]) + length + mask + body


def reader(limit=64 * 1024):
    heard = []
    connection = SimpleNamespace(
        connected=True, max_message_size=limit, input_buffer=[], pong_received=False
    )
    connection.event = SimpleNamespace(set=lambda: heard.append(connection.input_buffer.pop()))
    return ClientFrames(connection), connection, heard


def test_whole_text_frames_and_pongs_are_read_without_wsproto_however_they_are_cut():
    texts = ["{}", "namaste 🙏 नमस्ते", "x" * 300, "y" * 70_000]  # 7-bit, 16-bit, 64-bit sizes
    stream = b"".join(frame(t.encode()) for t in texts[:2]) + frame(b"", first=0x8A)
    stream += b"".join(frame(t.encode()) for t in texts[2:])
    for cut in (1, 3, 7, 4096, len(stream)):  # byte by byte, odd pieces, all at once
        frames, connection, heard = reader(limit=100_000)
        rest = b"".join(frames.take(stream[i : i + cut]) for i in range(0, len(stream), cut))
        assert rest == b""  # wsproto saw nothing
        assert heard == texts and connection.pong_received


KEY = b"\x37\xfa\x21\x3d"  # fixed: parameters must be the same in every test worker
ODD_FRAMES = {
    "a fragment (FIN clear)": frame(b"part", first=0x01, mask=KEY),
    "binary": frame(b"\x00\x01", first=0x82, mask=KEY),
    "a ping, answered by wsproto": frame(b"", first=0x89, mask=KEY),
    "a close": frame(b"\x03\xe8", first=0x88, mask=KEY),
    "a reserved bit": frame(b"{}", first=0xC1, mask=KEY),
    "text that is not UTF-8": frame("é".encode("latin-1"), mask=KEY),
    "a control frame over 125 bytes": frame(b"z" * 200, first=0x8A, mask=KEY),
    "over the size limit": frame(b"z" * 1025, mask=KEY),
    "not masked": bytes([0x81, 2]) + b"{}",
    "a 2-byte length in 16 bits": bytes([0x81, 0x80 | 126, 0, 2]) + b"\0\0\0\0{}",
    "a 300-byte length in 64 bits": bytes([0x81, 0x80 | 127])
    + (300).to_bytes(8)
    + b"\0\0\0\0"
    + b"x" * 300,
}


@pytest.mark.parametrize("odd", ODD_FRAMES.values(), ids=ODD_FRAMES.keys())
def test_any_other_frame_and_all_after_it_go_to_wsproto(odd):
    frames, connection, heard = reader(limit=1024)
    after = frame(b'{"event":"later"}', mask=KEY)
    # The odd one arrives in two pieces: handed over whole, from its first byte on.
    handed = frames.take(frame(b"first") + odd[:3]) + frames.take(odd[3:] + after)
    assert handed == odd + after
    assert frames.take(after) == after  # handed over for good: wsproto's state is its own
    assert heard == ["first"]


def test_what_wsproto_is_handed_it_answers_as_before():
    """Bad text closes with 1007, a ping is answered with its pong, a fragmented message
    still arrives whole, and frames after the hand-over keep their order."""
    pong = b"\x8a\x02hi"  # the server's frames are not masked
    for odd, heard_after, closed_with, first_answer in (
        (frame(b"\xff\xfe"), [], 1007, b""),
        (frame(b"hi", first=0x89), ["after"], None, pong),
        (frame(b"frag", first=0x01) + frame(b"ment", first=0x80), ["fragment", "after"], None, b""),
    ):
        server_side, client = gevent.socket.socketpair()
        try:
            ws = Server(handshake(server_side), thread_class=InlineReader, event_class=Arrivals)
            heard = []

            def on_arrival(ws=ws, heard=heard):
                while ws.input_buffer:
                    heard.append(ws.input_buffer.pop(0))

            ws.event.on_arrival = on_arrival

            def peer(client=client, odd=odd):
                assert b"101 Switching Protocols" in client.recv(4096)
                client.sendall(frame(b"before") + odd + frame(b"after"))
                client.sendall(frame((1000).to_bytes(2), first=0x88))
                replies = b""
                while chunk := client.recv(4096):
                    replies += chunk
                return replies

            answered = gevent.spawn(peer)
            with gevent.Timeout(5):
                ws.thread.run()
                replies = answered.get()
            assert heard == ["before", *heard_after]
            assert replies.startswith(first_answer)
            close = replies[len(first_answer) :]
            assert close[:1] == b"\x88"  # a close frame
            assert int.from_bytes(close[2:4]) == (closed_with or 1000)
        finally:
            client.close()
            server_side.close()


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


def test_an_unmasked_frame_is_handed_over_at_once_not_read_as_a_masked_one():
    frames, connection, heard = reader()
    unmasked = bytes([0x81, 5]) + b"hello"
    assert frames.take(unmasked) == unmasked and heard == []


def test_a_frame_at_the_limit_is_read_and_a_length_wsproto_refuses_is_handed_over():
    frames, connection, heard = reader(limit=1024)
    assert frames.take(frame(b"a" * 1024)) == b""
    assert heard == ["a" * 1024]
    frames, connection, heard = reader(limit=None)  # no limit: 2**63 is still no length
    huge = bytes([0x81, 0x80 | 127]) + (1 << 63).to_bytes(8) + KEY + b"x" * 100
    assert frames.take(huge) == huge


def test_nothing_more_is_read_once_a_handler_has_closed_the_connection():
    frames, connection, heard = reader()

    def handle():
        heard.append(connection.input_buffer.pop())
        connection.connected = False  # as `SocketConnection.close` leaves it

    connection.event = SimpleNamespace(set=handle)
    assert frames.take(frame(b"closing") + frame(b"after")) == b""
    assert heard == ["closing"]
