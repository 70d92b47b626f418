"""One greenlet per socket: simple-websocket's reader runs in the request handler's greenlet.

simple-websocket reads each connection in a thread of its own (under gevent, a greenlet)
and hands complete messages over through `receive()`, which the route's handler (the WSGI
server's greenlet for that connection) waits on. So an idle socket kept two suspended
greenlets for its whole life, each with its saved C stack and a page or more of Python
frames, and the reader a Thread with its locks and events: ~11 KB of a socket's ~47 KB
(bench/mem.py). Two of simple-websocket's options let the handler run the reader itself:

- `InlineReader`, its `thread_class`, starts nothing: `sockets.serve` calls `run()`, which
  is simple-websocket's reader loop (with the frames clients send all the time read by
  `ClientFrames`, not wsproto), and it returns once the connection has closed (its socket
  closes by lingering: `linger.LingeringSocket`).
- `Arrivals`, its `event_class`, is what the reader sets each time it has added a message
  to `input_buffer`, and when the connection ends: it calls `on_arrival`, which handles
  what arrived, in that same greenlet. Nobody waits on it: `receive()` is not used.

So frames are handled in order as they are read, and while one is handled the next is not
read (TCP holds it back); the writer greenlet and the keep-alive still write meanwhile.
Only the reader sets an `Arrivals`: anyone else who wants the reader to stop shuts the
socket, which wakes it.
"""

from collections.abc import Callable

from wsproto.utilities import LocalProtocolError

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
        """Read the connection until it closes, in this greenlet: simple-websocket's loop,
        with the frames every client sends read by `ClientFrames`."""
        target, self._target = self._target, None  # no cycle through the connection after
        connection = getattr(target, "__self__", None)
        if connection is None or connection.ping_interval:  # its loop alone pings
            if target is not None:
                target()
            return
        _read(connection)


def _read(connection) -> None:
    """simple-websocket's reader loop (`Base._thread` without pings), with what
    `ClientFrames` cannot read handed to wsproto and simple-websocket as before."""
    frames = ClientFrames(connection)
    sock = connection.sock
    try:
        while connection.connected:
            data = sock.recv(connection.receive_bytes)
            if not data:
                raise OSError("the peer closed the connection")
            rest = frames.take(data)
            if rest:
                connection.ws.receive_data(rest)
                connection.connected = connection._handle_events()
    except (OSError, LocalProtocolError):
        connection.connected = False
        connection.event.set()
    finally:
        sock.close()


class ClientFrames:
    """Reads the frames a client sends all the time, whole masked text frames and pongs,
    without wsproto; hands anything else to wsproto, for good.

    wsproto parses a frame through a state machine, a frame object, an incremental UTF-8
    decoder and an event: ~10 µs of Python a chat message here, against ~1 µs for the few
    lines below. Its state stays what it would have been: every frame read here is whole
    and unfragmented, so wsproto, which never sees it, is between messages before and
    after. The first frame of any other kind (a fragment, a binary or close or ping frame,
    reserved bits, an unmasked frame, one over the size limit, text that is not UTF-8)
    and everything after it go to wsproto, which answers it as it always did (a close
    with 1002, 1007 or 1009, a pong, a binary message). Once a handler has closed the
    connection, nothing more is read from it (simple-websocket went on handling what had
    arrived with the closing frame).
    """

    __slots__ = ("_connection", "_pending", "_handed_over")

    def __init__(self, connection):
        self._connection = connection
        self._pending = b""  # the start of a frame not yet whole
        self._handed_over = False

    def take(self, data: bytes) -> bytes:
        """Read the whole frames in `data` it can; returns the bytes wsproto must read."""
        if self._handed_over:
            return data
        buffer = self._pending + data if self._pending else data
        connection, at, end = self._connection, 0, len(buffer)
        # No limit set: still below 2**63, which wsproto refuses as a length (RFC 6455, 5.2).
        limit = connection.max_message_size or (1 << 63) - 1
        while end - at >= 2 and connection.connected:
            first, second = buffer[at], buffer[at + 1]
            if not second & 0x80:  # a client's frame must be masked: wsproto says so
                return self._hand_over(buffer[at:])
            size = second & 0x7F
            head = at + 2 + _EXTENDED.get(size, 0)  # where the mask starts
            if end < head + 4:  # the header is not all here yet
                break
            if size >= 126:
                size, shortest = int.from_bytes(buffer[at + 2 : head]), _SHORTEST[size]
                if size < shortest:  # a length in more bytes than needed: wsproto refuses it
                    return self._hand_over(buffer[at:])
            if size > limit or (first != _TEXT and (first != _PONG or size > 125)):
                return self._hand_over(buffer[at:])
            start = head + 4
            if end < start + size:  # the payload is not all here yet
                break
            payload = _unmask(buffer[start : start + size], buffer[head:start])
            if first == _PONG:
                connection.pong_received = True
            else:
                try:
                    text = payload.decode()
                except UnicodeDecodeError:
                    return self._hand_over(buffer[at:])
                connection.input_buffer.append(text)
                connection.event.set()  # handled now, in this greenlet (`Arrivals`)
            at = start + size
        self._pending = buffer[at:]
        return b""

    def _hand_over(self, rest: bytes) -> bytes:
        self._handed_over, self._pending = True, b""
        return rest


_EXTENDED = {126: 2, 127: 8}  # bytes of extended payload length (RFC 6455, 5.2)
_SHORTEST = {126: 126, 127: 1 << 16}  # the least length each may carry: the shortest form
_TEXT = 0x81  # FIN, no reserved bits, opcode 1
_PONG = 0x8A  # FIN, no reserved bits, opcode 10


def _unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR the payload with the repeated four-byte mask (RFC 6455, 5.3), as one integer."""
    size = len(payload)
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload) ^ int.from_bytes(key)).to_bytes(size)


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
