"""One greenlet per socket: simple-websocket's reader runs in the request handler's greenlet.

simple-websocket reads each connection in a thread of its own (under gevent, a greenlet)
and hands complete messages over through `receive()`, which the route's handler (the WSGI
server's greenlet for that connection) waits on. So an idle socket kept two suspended
greenlets for its whole life, each with its saved C stack and a page or more of Python
frames, and the reader a Thread with its locks and events: ~11 KB of a socket's ~47 KB
(bench/mem.py). Two of simple-websocket's options let the handler run the reader itself:

- `InlineReader`, its `thread_class`, starts nothing: `sockets.serve` calls `run()`, which
  is simple-websocket's reader loop, and it returns once the connection has closed (its
  socket closes by lingering: `linger.LingeringSocket`).
- `Arrivals`, its `event_class`, is what the reader sets each time it has added a message
  to `input_buffer`, and when the connection ends: it calls `on_arrival`, which handles
  what arrived, in that same greenlet. Nobody waits on it: `receive()` is not used.

So frames are handled in order as they are read, and while one is handled the next is not
read (TCP holds it back); the writer greenlet and the keep-alive still write meanwhile.
Only the reader sets an `Arrivals`: anyone else who wants the reader to stop shuts the
socket, which wakes it.
"""

from collections.abc import Callable

from .linger import LingeringSocket


class Arrivals:
    """simple-websocket's `event_class`: "a message has arrived, or the connection ended"."""

    __slots__ = ("on_arrival",)

    def __init__(self):
        self.on_arrival: Callable[[], None] | None = None

    def set(self) -> None:
        if self.on_arrival is not None:
            self.on_arrival()

    def clear(self) -> None:
        pass

    def is_set(self) -> bool:
        return False

    def wait(self, timeout=None) -> bool:
        raise RuntimeError("this connection's messages go to on_arrival: receive() is unused")


class InlineReader:
    """simple-websocket's `thread_class`: made once per connection, right after the
    handshake; the loop it is given runs when the handler calls `run()`."""

    __slots__ = ("name", "_target")

    def __init__(self, target, **kwargs):
        self.name = "simple-websocket reader"  # simple-websocket renames it
        self._target = target
        connection = getattr(target, "__self__", None)
        if connection is not None:
            adopt_server_socket(connection)
            connection.sock = LingeringSocket(connection.sock)

    def start(self) -> None:
        """Nothing to start: the handler runs the loop."""

    def run(self) -> None:
        """Read the connection until it closes: simple-websocket's loop, in this greenlet."""
        target, self._target = self._target, None  # no cycle through the connection after
        if target is not None:
            target()


def adopt_server_socket(connection) -> None:
    """Under gevent's WSGI server: one descriptor per connection, and no idle read buffer.

    simple-websocket finds the connection's socket through the request's buffered reader
    (`wsgi.input`) and `dup()`s it: two descriptors per socket, so the usual limit of
    20,000 capped a process near 10,000 sockets. And the reader, with its 8 KB buffer,
    lives as long as the request, the socket's whole life, though nothing reads it once
    the connection is upgraded. So the copy is closed and the connection is served on the
    server's own socket, and the reader is closed (the socket stays open). The server,
    seeing its reader closed, closes the socket once the handler returns, rather than wait
    for another request on it; by then the connection's reader has finished with it.
    """
    if connection.mode != "gevent":
        return
    reader = connection.environ.get("wsgi.input")
    own = getattr(getattr(reader, "raw", None), "_sock", None)  # as simple-websocket finds it
    if own is None:
        return
    reader.close()
    if own is not connection.sock:
        connection.sock.close()
        connection.sock = own
