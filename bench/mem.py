"""Where a socket's memory goes: RSS, descriptors and the heap before and after N sockets.

    .venv/bin/python bench/mem.py [--sockets N] [--trace] [--people DIR] [--out DIR]

Serves a fresh copy of a seeded database with bench/mem_serve.py, snapshots it (SIGUSR1),
opens N `/api/ws` sockets with bench/sockets.cjs (as bench/scale does), waits, snapshots
again and prints RSS and descriptors per socket, the collector's objects per socket by
type and, with --trace (PYTHONTRACEMALLOC=25: it costs memory of its own, so its RSS is
not the plain server's), the traced bytes per socket by file and by traceback.
`--people DIR` reuses a folder that bench/seed.py seeded (consult.db, users.jsonl).
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import (  # noqa: E402
    VENV,
    Processes,
    Sockets,
    free_port,
    wait_healthy,
)

ROOT = Path(__file__).resolve().parent.parent


def env_of(work: Path) -> dict:
    out = subprocess.run(
        ["bash", "-c", f". {ROOT}/bench/env.sh && env -0"], capture_output=True, check=True
    ).stdout
    env = dict(line.split("=", 1) for line in out.decode().split("\0") if "=" in line)
    env.update(DATABASE_URL=f"sqlite:///{work}/consult.db", SECRET_KEY="bench-mem")
    return env


def seed(work: Path, users: int) -> None:
    env = env_of(work)
    subprocess.run([VENV / "flask", "--app", "app", "init-db"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [VENV / "python", ROOT / "bench/seed.py", "people", "--users", str(users)]
        + ["--astrologers", "1", "--out", str(work)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def snapshot(pid: int, out: Path, n: int) -> dict:
    os.kill(pid, signal.SIGUSR1)
    path = out / f"snap-{n}.json"
    deadline = time.monotonic() + 120
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    return json.loads(path.read_text())


def per_socket(before: dict, after: dict, n: int, top: int = 25) -> list[str]:
    lines = []
    for key in sorted(after):
        growth = after[key] - before.get(key, 0)
        if abs(growth) >= n / 2:
            lines.append((growth, key))
    lines.sort(reverse=True)
    return [f"{g / n:10.2f}  {k}" for g, k in lines[:top]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--trace", action="store_true", help="tracemalloc, 25 frames")
    parser.add_argument("--people", type=Path, help="a seeded folder to copy")
    parser.add_argument("--out", type=Path, help="keep the snapshots here")
    parser.add_argument("--settle", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes at a time")
    parser.add_argument("--traceback-top", type=int, default=30)
    args = parser.parse_args()

    procs = Processes()
    work = Path(tempfile.mkdtemp(prefix="consult-mem-"))
    out = args.out or work
    out.mkdir(parents=True, exist_ok=True)
    try:
        if args.people:
            for name in ("consult.db", "users.jsonl", "astrologers.jsonl"):
                shutil.copy(args.people / name, work / name)
        else:
            seed(work, args.sockets)
        env = {**env_of(work), "MEM_OUT": str(out)}
        if args.trace:
            env["PYTHONTRACEMALLOC"] = "25"
        port = free_port()
        with open(work / "server.log", "w") as log:
            server = procs.start(
                [VENV / "python", ROOT / "bench/mem_serve.py", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_healthy(port, server)
        time.sleep(2)
        s0 = snapshot(server.pid, out, 0)
        users = work / "people.jsonl"
        lines = (work / "users.jsonl").read_text().splitlines()[: args.sockets]
        users.write_text("\n".join(lines) + "\n")
        client = Sockets(
            procs, f"http://127.0.0.1:{port}", [users, "--concurrency", str(args.concurrency)]
        )
        time.sleep(args.settle)
        s1 = snapshot(server.pid, out, 1)
        n = client.opened["open"]
        client.close()
        procs.stop(server)
    finally:
        procs.stop_all()

    print(f"sockets open {n}, failed {client.opened['failed']}")
    a, b = s0["status"], s1["status"]
    print(
        f"RSS {a['VmRSS'] / 1024:.1f} -> {b['VmRSS'] / 1024:.1f} MB: "
        f"{(b['VmRSS'] - a['VmRSS']) / n:.2f} KB/socket "
        f"(anon {(b['RssAnon'] - a['RssAnon']) / n:.2f}); "
        f"fds {(b['fds'] - a['fds']) / n:.2f}/socket; maps {(b['maps'] - a['maps']) / n:.2f}/socket"
    )
    print(
        f"greenlets {(b_g := s1['greenlets']) - s0['greenlets']} ({(b_g - s0['greenlets']) / n:.2f}"
        f"/socket); gc-tracked objects {(s1['gc_tracked'] - s0['gc_tracked']) / n:.1f}/socket"
    )
    print("\ngreenlets by kind: count, saved C stack, Python frames and their bytes, per greenlet:")
    for key, (count, saved, frames, size, pages) in sorted(s1["greenlet_kinds"].items()):
        before = s0["greenlet_kinds"].get(key, [0])[0]
        print(
            f"  {count - before:6d} new ({count} in all) {saved / count:8.0f} B stack"
            f" {frames / count:5.1f} frames {size / count:6.0f} B,"
            f" {pages / count:4.2f} resident data stack pages  {key}"
        )
    print("\nobjects per socket by type (count):")
    print("\n".join(per_socket(s0["gc_counts"], s1["gc_counts"], n)))
    print("\nbytes per socket by type (sys.getsizeof, shallow):")
    print("\n".join(per_socket(s0["gc_sizes"], s1["gc_sizes"], n)))
    if args.trace:
        t0 = tracemalloc.Snapshot.load(str(out / "snap-0.tracemalloc"))
        t1 = tracemalloc.Snapshot.load(str(out / "snap-1.tracemalloc"))
        diff = t1.compare_to(t0, "filename")
        total = sum(d.size_diff for d in diff)
        print(f"\ntraced bytes per socket: {total / n:.0f}; by file:")
        for d in diff[:25]:
            print(f"{d.size_diff / n:10.0f} B {d.count_diff / n:6.2f} blocks  {d.traceback}")
        print("\nby traceback:")
        for d in t1.compare_to(t0, "traceback")[: args.traceback_top]:
            print(f"\n{d.size_diff / n:10.0f} B {d.count_diff / n:6.2f} blocks")
            for frame in d.traceback.format(most_recent_first=True)[::2][:14]:
                print("    " + frame.strip().replace(str(ROOT) + "/", ""))
    if args.out:  # the snapshots are there already; the server's log joins them
        shutil.copy(work / "server.log", out / "server.log")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
