"""Serve Consult like `python app.py`, with a memory snapshot on SIGUSR1 (for bench/mem.py).

Each SIGUSR1 writes $MEM_OUT/snap-N.json: the process's RSS (and smaps_rollup), the count
and summed `sys.getsizeof` of the collector's objects by type, and the greenlets' count;
with tracemalloc running (PYTHONTRACEMALLOC=25), also $MEM_OUT/snap-N.tracemalloc.
RSS is read first, before the snapshot allocates anything.
"""

import collections
import ctypes
import gc
import json
import os
import signal
import sys
import tracemalloc
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import gevent  # noqa: E402
import greenlet  # noqa: E402

import app  # noqa: E402  (it patches the standard library for gevent, before any use)

_taken = 0


def _status() -> dict:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmData"):
            out[key] = int(value.split()[0])
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        out["rollup " + key] = int(value.split()[0])
    out["fds"] = len(os.listdir("/proc/self/fd"))
    out["maps"] = len(Path("/proc/self/maps").read_text().splitlines())
    return out


def _frame_bytes(code) -> int:
    """What a frame of `code` takes on its greenlet's data stack (CPython 3.11's
    co_framesize: locals, cells, free variables, the value stack and ~9 words of its own)."""
    slots = len(code.co_varnames) + len(code.co_cellvars) + len(code.co_freevars)
    return 8 * (slots + code.co_stacksize + 9)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
PAGE = os.sysconf("SC_PAGE_SIZE")
CHUNK = 16 * 1024  # CPython 3.11's DATA_STACK_CHUNK_SIZE: a greenlet's first data stack chunk


def _resident_chunk_pages(bottom) -> int:
    """Resident pages of the data stack chunk that holds a greenlet's first frame: 3.11's
    PyFrameObject points at its _PyInterpreterFrame (f_frame, after the header and f_back),
    and the first frame of a chunk sits 32 bytes into it (measured)."""
    interpreter_frame = ctypes.c_void_p.from_address(id(bottom) + 24).value
    base = interpreter_frame - 32  # (3.11 reserves a slot after the header)
    if base % PAGE:  # not at the start of a chunk: do not guess
        return -1
    vec = ctypes.create_string_buffer(CHUNK // PAGE)
    if _libc.mincore(base, CHUNK, vec):
        return -1
    return sum(b & 1 for b in vec.raw)


def _greenlets() -> dict:
    """Suspended greenlets by the function at the bottom of their stack: how many, their
    saved C stacks (`_stack_saved`), and their Python frames and those frames' bytes."""
    kinds: dict = {}
    for obj in gc.get_objects():
        if not isinstance(obj, greenlet.greenlet) or obj.gr_frame is None:
            continue
        frames, size, bottom = 0, 0, None
        frame = obj.gr_frame
        while frame is not None:
            frames += 1
            size += _frame_bytes(frame.f_code)
            bottom = frame
            frame = frame.f_back
        top = obj.gr_frame.f_code
        key = f"{bottom.f_code.co_name} ... {top.co_filename.rsplit('/', 1)[-1]}:{top.co_name}"
        entry = kinds.setdefault(key, [0, 0, 0, 0, 0])
        entry[4] += _resident_chunk_pages(bottom)
        entry[0] += 1
        entry[1] += obj._stack_saved
        entry[2] += frames
        entry[3] += size
    return kinds


def _snapshot() -> None:
    global _taken
    out = Path(os.environ["MEM_OUT"])
    status = _status()
    if tracemalloc.is_tracing():  # before the walks below allocate (frames, lists)
        tracemalloc.take_snapshot().dump(str(out / f"snap-{_taken}.tracemalloc"))
    counts, sizes = collections.Counter(), collections.Counter()
    greenlets = 0
    for obj in gc.get_objects():
        kind = type(obj)
        name = f"{kind.__module__}.{kind.__qualname__}"
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj)
        if isinstance(obj, greenlet.greenlet):
            greenlets += 1
    report = {
        "status": status,
        "greenlets": greenlets,
        "greenlet_kinds": _greenlets(),
        "gc_counts": dict(counts),
        "gc_sizes": dict(sizes),
        "gc_tracked": sum(counts.values()),
        "gc_frozen": gc.get_freeze_count(),
    }
    if tracemalloc.is_tracing():
        report["traced"] = tracemalloc.get_traced_memory()
    (out / f"snap-{_taken}.json").write_text(json.dumps(report))
    _taken += 1


gevent.signal_handler(signal.SIGUSR1, _snapshot)

if __name__ == "__main__":
    app.main()
