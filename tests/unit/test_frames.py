"""The server's frames, built by hand once per event, read back by wsproto as a client."""

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import Ping, TextMessage

from consult import frames
from consult.realtime import Event


def _as_client_reads(data: bytes) -> list:
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(data)
    return list(client.events())


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_text_frame_of_any_length_reads_back_whole(size):
    payload = "x" * size
    (message,) = _as_client_reads(frames.text(payload))
    assert isinstance(message, TextMessage)
    assert message.data == payload
    assert message.message_finished


def test_the_length_counts_bytes_not_characters():
    payload = "नमस्ते " * 20  # 140 characters, 380 bytes: past the one-byte length
    data = frames.text(payload)
    assert data[1] == 126 and int.from_bytes(data[2:4], "big") == len(payload.encode())
    (message,) = _as_client_reads(data)
    assert message.data == payload


def test_frames_follow_one_another_on_a_stream():
    stream = frames.text("one") + frames.PING + frames.text("two")
    events = _as_client_reads(stream)
    assert [type(e) for e in events] == [TextMessage, Ping, TextMessage]
    assert [events[0].data, events[2].data] == ["one", "two"]


def test_an_event_is_framed_once_for_all_its_sockets():
    event = Event("consult:ended", {"sessionId": 7})
    assert event.framed is event.framed
    (message,) = _as_client_reads(event.framed)
    assert message.data == event.frame
