"""What a serving process sets once, after start-up and before it serves: how the garbage
collector treats its heap.

CPython's full collection walks every object that can hold references, and a live socket
holds about 135 of them (its greenlets, its request context, wsproto's and gevent's state).
With 5,000 live sessions (10,000 sockets) one full collection took half a second of CPU in
one go while no socket was served (bench/scale --profile). Start-up's objects (modules,
classes, the app, SQLAlchemy's metadata: ~117,000) live as long as the process, so they are
frozen and no collection walks them again (`services.start_background`, where a serving
process begins). gevent's greenlet tree is off as well (app.py, gunicorn.conf.py): each
greenlet kept the frames of its spawning stack.

Measured with 5,000 live sessions over two minutes: 854,000 tracked objects and a 519 ms
full collection before; 675,000 (117,000 of them frozen) and none after. Spacing the young
collections out (10,000 allocations instead of 700) cost 15 % more CPU per end (bench/ab),
so the young thresholds stay CPython's.

The full collections themselves are spaced out ten times more (`FULL_AFTER`). Frozen objects
do not count toward the heap a full collection waits to grow by a quarter, so with start-up
frozen a full collection came every few seconds under load, walking every socket's objects
again: 15–56 ms each with 1,000 live sessions, three in a round of 1,000 ends at 200/s, and
each found 30–250 objects to free. That was the p99 of an end (`bench/ab`, five rounds: p99
4.3 → 4.1 ms at the median, 40 → 11 ms in the worst round, the slowest end 88 → 23 ms; p50
and CPU unchanged, 1.08 / 0.92 against 1.05 / 0.89 ms).
"""

import gc

FULL_AFTER = 100  # collections of the middle generation between full ones (CPython: 10)


def settle_heap() -> None:
    """Collect start-up's garbage, freeze the rest, and space the full collections out."""
    gc.collect()
    gc.freeze()
    young, middle, _full = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_AFTER)
