"""WebSocket frames as the server sends them (RFC 6455, 5.2), built once and sent as bytes.

A frame from the server is a header and the payload, unmasked: the first byte is FIN and
the opcode, the second the payload's length, or 126 / 127 followed by the length in two /
eight bytes. An event for many sockets is framed once (`Event.framed`) and each socket
sends the same bytes; going through wsproto instead cost each socket the JSON's encoding
and a frame object of its own.
"""

import struct

TEXT = 0x81  # FIN, opcode 1: a whole text message
PING = b"\x89\x00"  # FIN, opcode 9, no payload (5.5.2)


def text(payload: str) -> bytes:
    """One unfragmented text frame carrying `payload`."""
    data = payload.encode()
    size = len(data)
    if size < 126:
        header = bytes((TEXT, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", TEXT, 127, size)
    return header + data
