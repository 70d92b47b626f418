"""A WebSocket handshake's WSGI environ, for serving simple-websocket over a socket pair."""


def handshake(sock) -> dict:
    return {
        "werkzeug.socket": sock,
        "HTTP_HOST": "localhost",
        "HTTP_UPGRADE": "websocket",
        "HTTP_CONNECTION": "Upgrade",
        "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ==",
        "HTTP_SEC_WEBSOCKET_VERSION": "13",
    }
