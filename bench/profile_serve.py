"""Serve Consult like `python app.py`, with a CPU-time stack sampler ready for bench/profile.

py-spy sees this gevent server poorly (a handful of samples in non-blocking mode, a frozen
server in blocking mode); tracing profilers (cProfile, yappi) triple the cost of every
Python call, which inflates SQLAlchemy's share; a sampling thread only runs when the server
drops the GIL, so it lands on I/O. So the kernel's profiling timer (ITIMER_PROF, which
counts this process's CPU time) interrupts the server every millisecond of CPU and the
handler records the stack it interrupted. SIGUSR1 starts, SIGUSR2 stops and writes
collapsed stacks (`frame;frame;... count`) to $PROFILE_OUT.

Signals that fall due while the process is in C code coalesce into one, so a long stretch
there (a garbage collection of the whole heap) shows as a single sample. The collector's
own callbacks time it instead: `<gc generation N>` counts its milliseconds of CPU.
"""

import collections
import gc
import os
import signal
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import gevent  # noqa: E402
from gevent import monkey  # noqa: E402

import app  # noqa: E402  (it patches the standard library for gevent, before any use)

_signal = monkey.get_original("signal", "signal")
INTERVAL = 0.001
_stacks: collections.Counter = collections.Counter()


def _label(frame) -> str:
    code = frame.f_code
    path = code.co_filename
    for marker in ("site-packages/", ROOT + "/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{code.co_name} ({path}:{frame.f_lineno})"


def _sample(signum, frame) -> None:
    stack = []
    while frame is not None:
        stack.append(_label(frame))
        frame = frame.f_back
    _stacks[";".join(reversed(stack))] += 1


_gc_began = 0.0


def _collecting(phase: str, info: dict) -> None:
    global _gc_began
    if phase == "start":
        _gc_began = time.process_time()
    else:
        spent = round((time.process_time() - _gc_began) / INTERVAL)
        _stacks[f"<gc generation {info['generation']}>"] += spent


def _start() -> None:
    _stacks.clear()
    _signal(signal.SIGPROF, _sample)
    signal.setitimer(signal.ITIMER_PROF, INTERVAL, INTERVAL)
    gc.callbacks.append(_collecting)


def _stop() -> None:
    signal.setitimer(signal.ITIMER_PROF, 0, 0)
    gc.callbacks.remove(_collecting)
    with open(os.environ["PROFILE_OUT"], "w") as out:
        for stack, count in _stacks.items():
            out.write(f"{stack} {count}\n")


gevent.signal_handler(signal.SIGUSR1, _start)
gevent.signal_handler(signal.SIGUSR2, _stop)

if __name__ == "__main__":
    app.main()
