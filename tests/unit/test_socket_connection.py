"""A program's socket sends an event's frame at once, from the publisher's greenlet: a peer
already gone must cost the publisher nothing but the frame (an end's events go out after
its commit, and its answer must still reach the one who ended it)."""

import gevent.socket
from flask import Flask
from simple_websocket import Server

from consult.accounts import Caller
from consult.realtime import Event
from consult.web.reader import Arrivals, InlineReader
from consult.web.sockets import SocketConnection
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
