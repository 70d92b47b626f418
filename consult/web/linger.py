"""Closing a socket's TCP connection so that its close frame arrives.

simple-websocket sends a close frame (1009 for a frame over the limit) and closes the TCP
socket at once. If the client is still sending (say, the rest of a 1 MiB frame), the
kernel answers the unread bytes with a reset, and the client never reads the close frame:
it sees its connection reset. Closing lingers instead: the server's side is shut first
(the server closes first, as RFC 6455 asks), what the client still sends is read and
dropped until it closes too, for a short while at most, then the socket is closed.
"""

import socket
import threading
import time

LINGER_SECONDS = 2.0
LINGER_BYTES = 16 * 1024 * 1024


class LingeringSocket:
    """A connection's socket whose `close` lingers; everything else is the socket's own."""

    def __init__(self, sock):
        self._sock = sock
        # Bound once: a frame's every read and write would otherwise go through __getattr__.
        self.recv, self.send, self.sendall = sock.recv, sock.send, sock.sendall

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
            deadline, left = time.monotonic() + LINGER_SECONDS, LINGER_BYTES
            while left > 0 and (remaining := deadline - time.monotonic()) > 0:
                self._sock.settimeout(remaining)
                data = self._sock.recv(65536)
                if not data:
                    break
                left -= len(data)
        except OSError:  # reset, timed out, or already gone: close all the same
            pass
        finally:
            self._sock.close()


class LingeringCloseThread(threading.Thread):
    """simple-websocket's `thread_class`: the connection it runs closes by lingering.

    Made once per connection, right after the handshake, so it is also where the
    connection gives up what the handshake no longer needs (`adopt_server_socket`).
    """

    def __init__(self, target, **kwargs):
        connection = getattr(target, "__self__", None)
        if connection is not None:
            adopt_server_socket(connection)
            connection.sock = LingeringSocket(connection.sock)
        super().__init__(target=target, **kwargs)


def adopt_server_socket(connection) -> None:
    """Under gevent's WSGI server: one descriptor per connection, and no idle read buffer.

    simple-websocket finds the connection's socket through the request's buffered reader
    (`wsgi.input`) and `dup()`s it: two descriptors per socket, so the usual limit of
    20,000 capped a process near 10,000 sockets. And the reader, with its 8 KB buffer,
    lives as long as the request, the socket's whole life, though nothing reads it once
    the connection is upgraded. So the copy is closed and the connection is served on the
    server's own socket, and the reader is closed (the socket stays open).

    The server, seeing its reader closed, closes the socket as soon as the handler returns
    (it no longer waits for another request on it), so the handler returns only once
    simple-websocket's reader has finished with the socket (`sockets.serve`).
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
