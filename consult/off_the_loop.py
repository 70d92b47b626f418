"""Blocking work off the event loop.

Under gevent one OS thread runs every greenlet, so a call that holds the CPU or waits on
the disk stalls every socket of the process. These run it in a real thread meanwhile (the
call must release the GIL: an fsync, a password hash); without gevent (the CLI, tests in
process) they simply call it.
"""


def _gevent_hub():
    """gevent's hub once gevent drives this process (threading patched), else None."""
    from gevent import monkey

    if not monkey.is_module_patched("threading"):
        return None
    import gevent

    return gevent.get_hub()


def run(function, *args, pool: "OwnPool | None" = None):
    """Call `function(*args)` in a thread (of `pool`, else gevent's shared pool) and wait for
    it; only this greenlet waits."""
    hub = _gevent_hub()
    if hub is None:
        return function(*args)
    threads = hub.threadpool if pool is None else pool.threads()
    return threads.apply(function, args)


def start(function) -> None:
    """Start `function()` in a thread and return at once (without gevent: call it now)."""
    if _gevent_hub() is None:
        function()
    else:
        import gevent

        gevent.spawn(run, function)


class OwnPool:
    """A few threads of their own, made on first use, for work that must not hold up what
    runs in gevent's shared pool (the WAL's fsyncs wait there)."""

    def __init__(self, size: int):
        self.size = size
        self._threads = None

    def threads(self):
        if self._threads is None:  # one OS thread runs the greenlets: no race to make two
            from gevent.threadpool import ThreadPool

            self._threads = ThreadPool(self.size)
        return self._threads


def let_sockets_in() -> None:
    """Between the steps of a long piece of housekeeping (the scheduler's tick, the pings),
    let the event loop serve the sockets with something waiting, so no frame waits for the
    whole of it. gevent's `sleep(0)` can resume before the loop polls; its shortest timer
    cannot. Without gevent, nothing to do: the caller is a thread of its own."""
    if _gevent_hub() is not None:
        import gevent

        gevent.sleep(0.0001)
