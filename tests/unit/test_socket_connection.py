"""A program's socket sends an event's frame at once, from the publisher's greenlet: a peer
already gone must cost the publisher nothing but the frame (an end's events go out after
its commit, and its answer must still reach the one who ended it)."""

import gevent.socket
from flask import Flask
from simple_websocket import Server

from consult.accounts import Caller
from consult.realtime import Event
from consult.web.reader import Arrivals, InlineReader
from consult.web.sockets import _TOO_FAST, SocketConnection
from helpers.handshake import handshake


def _connection():
    server_side, client = gevent.socket.socketpair()
    ws = Server(handshake(server_side), thread_class=InlineReader, event_class=Arrivals)
    response = b""
    while not response.endswith(b"\r\n\r\n"):  # the handshake's answer
        response += client.recv(1)
    app = Flask(__name__)
    app.config["SOCKET_FRAMES_PER_SECOND"] = 20
    return SocketConnection(app, ws, Caller(1, "user"), html=False), client


def test_an_event_goes_out_at_once_as_its_one_frame():
    connection, client = _connection()
    event = Event("consult:ended", {"sessionId": 7})
    connection.deliver(event)
    assert connection._writer is None  # no greenlet was needed
    assert client.recv(len(event.framed) + 10) == event.framed
    client.close()


def test_a_peer_gone_before_the_frame_costs_the_publisher_nothing():
    connection, client = _connection()
    client.close()
    connection.deliver(Event("consult:ended", {"sessionId": 7}))  # must not raise
    assert connection._closed
    connection.deliver(Event("session:ended-by-user", {"sessionId": 7}))  # nor later ones
    assert connection._writer is None


def test_what_a_handler_delivers_to_its_own_socket_leaves_in_one_write_in_order():
    connection, client = _connection()
    ended, answer = Event("consult:ended", {"sessionId": 7}), Event("endSession:result", {})
    writes = []
    real_send = connection.ws.sock.send
    connection.ws.sock.send = lambda data, *a, **k: writes.append(data) or real_send(data, *a, **k)
    connection.hold()
    connection.deliver(ended)
    connection.send(answer, "r1")
    assert writes == []  # held while the frame is handled
    connection.release()
    assert len(writes) == 1
    assert writes[0].startswith(ended.framed) and writes[0].endswith(b'"requestId": "r1"}')
    assert client.recv(len(writes[0]) + 10) == writes[0]
    client.close()


def test_another_greenlets_event_and_a_goodbye_go_after_what_was_held():
    connection, client = _connection()
    writes = []
    real_send = connection.ws.sock.send
    connection.ws.sock.send = lambda data, *a, **k: writes.append(data) or real_send(data, *a, **k)
    first, second = Event("chat:message", {"text": "1"}), Event("chat:message", {"text": "2"})
    connection.hold()
    connection.deliver(first)
    gevent.spawn(connection.deliver, second).join()  # not the holder: sent at once, after
    assert writes == [first.framed, second.framed]
    connection.release()
    connection.hold()
    connection.deliver(first)
    connection.close_after(_TOO_FAST)
    assert writes[2] == first.framed  # released before the goodbye was queued
    client.close()
