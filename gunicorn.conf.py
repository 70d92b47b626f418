"""gunicorn with gevent workers: `gunicorn -c gunicorn.conf.py app:app`."""

import os

# A socket's greenlets need not keep their spawning stacks (gevent reads this in the worker).
os.environ.setdefault("GEVENT_TRACK_GREENLET_TREE", "false")

bind = os.environ.get("BIND", "127.0.0.1:5000")
worker_class = "gevent"  # gunicorn patches with gevent before loading the app
workers = int(os.environ.get("WEB_CONCURRENCY", 1))
if workers > 1 and not os.environ.get("REDIS_URL"):
    # Without Redis each worker would think itself alone: events would miss the sockets of
    # other workers, and a booting worker would settle its siblings' live sessions.
    raise SystemExit("WEB_CONCURRENCY > 1 needs REDIS_URL (see README: more than one machine)")
worker_connections = 10_000  # HTTP and WebSockets share this cap
control_socket_disable = True  # gunicorn 27 would otherwise share $HOME/.gunicorn/ between servers
timeout = 60
graceful_timeout = 20


def post_worker_init(worker):
    """Each worker runs crash recovery (only when no other instance is alive) and a scheduler."""
    from app import app
    from consult import start_background

    start_background(app)


# Metrics (README, "Operations"): with PROMETHEUS_MULTIPROC_DIR set in the environment, each
# worker writes its metrics to files there and any worker's /metrics adds them all up.
METRICS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def on_starting(server):
    """Start the counts afresh: files left by an earlier run would be added to this one's."""
    if METRICS_DIR:
        os.makedirs(METRICS_DIR, exist_ok=True)
        for name in os.listdir(METRICS_DIR):
            if name.endswith(".db"):
                os.remove(os.path.join(METRICS_DIR, name))


def child_exit(server, worker):
    """A dead worker's sockets are gone: drop its gauge from the sum (its counters stay)."""
    if METRICS_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
