"""Serve Consult: HTTP and WebSockets on gevent. `python app.py --help` lists the options."""

from gevent import config, monkey

config.track_greenlet_tree = False  # a socket's greenlets need not keep their spawning stacks
monkey.patch_all()  # first: before anything imports psycopg, redis, ssl or threading

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402

from consult import create_app, start_background  # noqa: E402

app = create_app()


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Serve Consult (HTTP and WebSockets) with gevent. DATABASE_URL, REDIS_URL, "
        "SECRET_KEY and the *_SECONDS settings come from the environment (see README)."
    )
    parser.add_argument(
        "--host", default=os.environ.get("HOST", "127.0.0.1"), help="default 127.0.0.1"
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PORT", 5000)), help="default 5000"
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    from gevent.pywsgi import WSGIServer

    class NoDelayWSGIServer(WSGIServer):
        """Small answers and socket frames go out at once: without TCP_NODELAY, Nagle and
        delayed ACKs held every keep-alive response for ~40 ms (measured, scripts/bench.py)."""

        def handle(self, sock, address):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().handle(sock, address)

    scheduler = start_background(app)
    server = NoDelayWSGIServer(
        (args.host, args.port), app, log=None, error_log=logging.getLogger("wsgi")
    )
    print(f"Consult is serving on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.stop()


if __name__ == "__main__":
    main()
