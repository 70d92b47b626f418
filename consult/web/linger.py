"""Closing a socket's TCP connection so that its close frame arrives.

simple-websocket sends a close frame (1009 for a frame over the limit) and closes the TCP
socket at once. If the client is still sending (say, the rest of a 1 MiB frame), the
kernel answers the unread bytes with a reset, and the client never reads the close frame:
it sees its connection reset. Closing lingers instead: the server's side is shut first
(the server closes first, as RFC 6455 asks), what the client still sends is read and
dropped until it closes too, for a short while at most, then the socket is closed.
"""

import socket
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
