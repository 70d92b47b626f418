"""What a serving process sets once, after start-up and before it serves: how the garbage
collector treats a heap of long-lived sockets.

CPython's full collection walks every object that can hold references, and a live socket
holds about 150 of them (its greenlets, its request context, wsproto's and gevent's state).
With 5,000 live sessions (10,000 sockets) one full collection took half a second of CPU in
one go, every minute or so, while no socket was served (bench/scale --profile). So:

- start-up's objects (modules, classes, the app, SQLAlchemy's metadata) live as long as the
  process: frozen, no collection walks them again;
- young collections run every 10,000 allocations, not 700, so fewer of a request's
  short-lived objects are alive at one and get promoted toward the old generation, whose
  growth is what triggers a full collection.

Measured with 5,000 live sessions (bench/scale's idle scenario): 854,000 tracked objects
and a 519 ms full collection within two minutes; then 675,000 (117,000 of them frozen)
and none. gevent's greenlet tree is off as well (app.py, gunicorn.conf.py): each greenlet
kept the frames of its spawning stack, a dozen objects per socket.
"""

import gc

YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """Collect start-up's garbage, freeze the rest, and space the young collections out."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
