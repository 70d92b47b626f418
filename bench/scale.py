"""Consult at scale: sockets and memory per socket, idle CPU with live sessions, funded-end
lateness, and two gunicorn workers on PostgreSQL + Redis against one (issue 9).

Run through `bench/scale` (it sources bench/env.sh and raises the descriptor limits);
`bench/scale --help` lists the options. Each scenario starts from a fresh database, seeds
it through the app's domain (bench/seed.py), serves it pinned to CPU 0 with its clients on
CPU 1, measures CPU time from /proc (utime + stime, not wall latency: other work shares
this machine), runs `audit-ledger` on it, and cleans up. Prints a Markdown table and
writes bench/results/scale.json.
"""

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from glob import glob
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv" / "bin"
RESULTS = ROOT / "bench" / "results"
TICK = os.sysconf("SC_CLK_TCK")
SERVER_CPU, CLIENT_CPU = "0", "1"
REDIS_DB = 13  # a Redis database nobody else here uses; flushed before and after
P99_LIMIT_MS = 100  # what "sustained" means for the workers' ladder, with no errors


# ---------------------------------------------------------------- processes


class Processes:
    """Everything a scenario starts, stopped on the way out whatever happened."""

    def __init__(self):
        self.started: list[subprocess.Popen] = []

    def start(self, argv, *, cpu=None, **kwargs) -> subprocess.Popen:
        if cpu is not None:
            argv = ["taskset", "-c", cpu, *argv]
        proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, grace: float = 10) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            try:
                self.stop(proc)
            except ProcessLookupError:
                pass


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}); see its log")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not answer /healthz")


# ---------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def descriptor_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise RuntimeError("no descriptor limit")


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def busy_percent(pids: list[int], seconds: float) -> float:
    """Share of one core the processes used over `seconds` of wall time."""
    before, t0 = sum(cpu_seconds(p) for p in pids), time.monotonic()
    time.sleep(seconds)
    used = sum(cpu_seconds(p) for p in pids) - before
    return 100 * used / (time.monotonic() - t0)


class MachineLoad:
    """How busy the machine's CPUs were (all of them, from /proc/stat) while a load ran:
    what gunicorn's workers share with PostgreSQL, Redis and the load client. Sampled every
    half second in a thread; `busy_percent` reads the last seconds (the measured phase)."""

    def __init__(self, every: float = 0.5):
        self.every = every
        self.samples: list[tuple[float, int, int]] = []  # (monotonic, busy, all jiffies)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "MachineLoad":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            with open("/proc/stat") as stat:
                user, nice, system, idle, iowait, irq, softirq, steal = map(
                    int, stat.readline().split()[1:9]
                )
            busy = user + nice + system + irq + softirq
            self.samples.append((time.monotonic(), busy, busy + idle + iowait + steal))
            if self._stop.wait(self.every):
                return

    def busy_percent(self, last_seconds: float) -> float:
        """Share of all CPUs busy over the last `last_seconds` sampled."""
        end = self.samples[-1]
        start = next(s for s in self.samples if s[0] >= end[0] - last_seconds)
        return round(100 * (end[1] - start[1]) / max(1, end[2] - start[2]), 1)


# ---------------------------------------------------------------- one SQLite server


class Bench:
    """A fresh database in a temporary folder, its people, a server and socket clients."""

    def __init__(self, procs: Processes, env: dict, label: str):
        self.procs, self.label = procs, label
        self.work = Path(tempfile.mkdtemp(prefix=f"consult-scale-{label}-"))
        self.env = {**env, "DATABASE_URL": f"sqlite:///{self.work}/consult.db"}
        self.env.pop("REDIS_URL", None)
        self.server: subprocess.Popen | None = None
        self.port = 0

    def flask(self, *args) -> str:
        return subprocess.run(
            [VENV / "flask", "--app", "app", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        ).stdout.strip()

    def seed(self, *args, timeout=1800) -> dict:
        out = subprocess.run(
            ["taskset", "-c", CLIENT_CPU, VENV / "python", ROOT / "bench" / "seed.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode:
            raise RuntimeError(f"bench/seed.py {args[0]} failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def prepare(self, users: int, astrologers: int) -> None:
        self.flask("init-db")
        self.seed(
            "people",
            "--users",
            str(users),
            "--astrologers",
            str(astrologers),
            "--out",
            str(self.work),
        )
        self.seed_args = ("--people", str(self.work))

    def serve(self) -> int:
        self.port = free_port()
        with open(self.work / "server.log", "w") as log:  # the child keeps its own copy
            # With PROFILE_OUT set, the same server with bench/profile's sampler in it.
            serve = "bench/profile_serve.py" if self.env.get("PROFILE_OUT") else "app.py"
            self.server = self.procs.start(
                [VENV / "python", serve, "--port", str(self.port)],
                cpu=SERVER_CPU,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_healthy(self.port, self.server)
        return self.server.pid

    def connect(self, *files: str) -> "Sockets":
        return Sockets(self.procs, f"http://127.0.0.1:{self.port}", [self.work / f for f in files])

    def ledger(self) -> str:
        return self.flask("audit-ledger").splitlines()[-1]

    def close(self) -> None:
        if self.server is not None:
            self.procs.stop(self.server)
        shutil.rmtree(self.work, ignore_errors=True)


class Sockets:
    """bench/sockets.cjs on the client's core: opens the sockets, then reports what they hear."""

    def __init__(self, procs: Processes, url: str, files: list[Path], timeout: float = 600):
        self.procs = procs
        self.proc = procs.start(
            ["node", ROOT / "bench" / "sockets.cjs", url, *files],
            cpu=CLIENT_CPU,
            env={**os.environ, "NODE_PATH": node_modules()},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.opened = self._first_line(timeout)

    def _first_line(self, timeout: float) -> dict:
        import selectors

        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError("the socket client did not open its sockets in time")
        return json.loads(self.proc.stdout.readline())

    def close(self) -> list[dict]:
        """Stop the client; return the lines it printed after the first."""
        self.proc.stdin.close()
        try:
            rest = self.proc.stdout.read()
        finally:
            self.procs.stop(self.proc)
        return [json.loads(line) for line in rest.splitlines() if line.strip()]


def node_modules() -> str:
    found = glob(f"{os.environ.get('TMPDIR', '/tmp')}/consult-bench-node-*/node_modules")
    if not found:
        raise SystemExit("run ../shared/bench/compare once first (it installs the `ws` package)")
    return found[0]


# ---------------------------------------------------------------- scenarios


def sockets_scenario(procs: Processes, env: dict, count: int, settle: float) -> dict:
    """`count` users, one `/api/ws` socket each, no sessions: RSS and descriptors before and
    after, and the server's CPU while they stay open (a ping each per 25 s included)."""
    bench = Bench(procs, env, "sockets")
    try:
        bench.prepare(users=count, astrologers=1)
        pid = bench.serve()
        time.sleep(2)
        rss0, fds0 = rss_kb(pid), descriptors(pid)
        baseline = busy_percent([pid], 15)  # the scheduler's ticks alone
        client = bench.connect("users.jsonl")
        time.sleep(settle)
        rss1, fds1 = rss_kb(pid), descriptors(pid)
        idle = busy_percent([pid], 30)
        opened = client.opened["open"]
        closed = client.close()
        return {
            "sockets": opened,
            "failed": client.opened["failed"],
            "closedByServer": max((c.get("closed", 0) for c in closed), default=0),
            "rssBeforeMB": round(rss0 / 1024, 1),
            "rssAfterMB": round(rss1 / 1024, 1),
            "kbPerSocket": round((rss1 - rss0) / max(1, opened), 1),
            "fdsPerSocket": round((fds1 - fds0) / max(1, opened), 2),
            "fdLimit": descriptor_limit(pid),
            "idleCpuPercent": round(idle, 2),
            "noSocketsCpuPercent": round(baseline, 2),
            "ledger": bench.ledger(),
        }
    finally:
        bench.close()


def live_sessions(bench: Bench, sessions: int, astrologers: int, **seeding) -> tuple:
    """A server with `sessions` funded, accepted sessions, both parties' sockets open."""
    bench.prepare(users=sessions, astrologers=astrologers)
    pid = bench.serve()
    client = bench.connect("astrologers.jsonl", "users.jsonl")
    extra = [f"--{k}={v}" for k, v in seeding.items()]
    seeded = bench.seed("sessions", *bench.seed_args, "--count", str(sessions), *extra)
    return pid, client, seeded


def idle_scenario(procs: Processes, env: dict, sessions: int, settle: float) -> dict:
    """Idle CPU with `sessions` live sessions, every party connected (nobody away)."""
    bench = Bench(procs, env, "idle")
    try:
        pid, client, seeded = live_sessions(bench, sessions, astrologers=max(1, sessions // 100))
        time.sleep(settle)
        live = active_sessions(bench.work / "consult.db")
        rounds = [busy_percent([pid], 30) for _ in range(2)]
        if bench.env.get("PROFILE_OUT"):  # a third half-minute, sampled (it costs a little)
            profiled(pid, Path(bench.env["PROFILE_OUT"]), lambda: busy_percent([pid], 30))
        client.close()
        return {
            "liveSessions": live,
            "sockets": client.opened["open"],
            "socketsFailed": client.opened["failed"],
            "seedSeconds": seeded["seconds"],
            "rssMB": round(rss_kb(pid) / 1024, 1),
            "idleCpuPercent": [round(r, 2) for r in rounds],
            "ledger": bench.ledger(),
        }
    finally:
        bench.close()


def profiled(pid: int, out: Path, run) -> None:
    """Sample the server's stacks while `run()` runs (bench/profile_serve.py)."""
    out.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    run()
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + 30
    while not (out.exists() and out.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.1)


def lateness_scenario(
    procs: Processes, env: dict, sessions: int, ending: int, window: float, interval: float
):
    """`sessions` live, of which `ending` have funds running out at staggered moments over
    `window` seconds; lateness from the due time (the settled `ended_at`) to the scheduler
    firing the end (its audit record) and to the user's socket hearing `consult:ended`,
    with the scheduler ticking every `interval` seconds (SCHEDULER_INTERVAL_SECONDS)."""
    env = {**env, "SCHEDULER_INTERVAL_SECONDS": str(interval)}
    bench = Bench(procs, env, "lateness")
    try:
        pid, client, seeded = live_sessions(
            bench, sessions, astrologers=max(1, sessions // 100), ending=ending, window=window
        )
        live_at_start = active_sessions(bench.work / "consult.db")
        cpu0 = cpu_seconds(pid)
        t0 = time.monotonic()
        wait_for_ends(bench.work / "consult.db", ending, until=seeded["endsTo"] + 15)
        cpu_per_s = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        heard = {e["ended"]: e["at"] for e in client.close() if "ended" in e}
        fired, delivered = end_lateness(bench.work / "consult.db", heard)
        return {
            "interval": interval,
            "sockets": client.opened["open"],
            "socketsFailed": client.opened["failed"],
            "liveAtStart": live_at_start,
            "funded ends": len(fired),
            "seedSeconds": seeded["seconds"],
            "windowSeconds": round(seeded["endsTo"] - seeded["endsFrom"], 1),
            "firedMs": percentiles(fired),
            "heardMs": percentiles(delivered),
            "heard": len(delivered),
            "serverCpuPercent": round(100 * cpu_per_s, 1),
            "ledger": bench.ledger(),
        }
    finally:
        bench.close()


def active_sessions(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT count(*) FROM consultations WHERE status='active'").fetchone()[0]


def wait_for_ends(db: Path, count: int, until: float) -> None:
    while time.time() < until:
        with sqlite3.connect(db) as con:
            done = con.execute(
                "SELECT count(*) FROM consultations WHERE end_reason='insufficient_balance'"
            ).fetchone()[0]
        if done >= count:
            return
        time.sleep(1)


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def end_lateness(db: Path, heard: dict) -> tuple[list[float], list[float]]:
    """Per funded end: ms from the due time to the tick that fired it, and to the user's
    socket hearing it (same machine, same clock)."""
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT c.id, c.ended_at, e.at FROM consultations c JOIN session_events e"
            " ON e.consultation_id = c.id AND e.kind = 'ended'"
            " WHERE c.end_reason = 'insufficient_balance'"
        ).fetchall()
    fired = [1000 * (utc(at) - utc(due)) for _, due, at in rows]
    delivered = [heard[i] - 1000 * utc(due) for i, due, _ in rows if i in heard]
    return fired, delivered


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
    return {"p50": pick(0.5), "p99": pick(0.99), "max": round(ordered[-1], 1)}


# ---------------------------------------------------------------- gunicorn on PostgreSQL + Redis


class Cluster:
    """A fresh PostgreSQL database and a flushed Redis db, for gunicorn with N workers."""

    def __init__(self, procs: Processes, env: dict):
        self.procs = procs
        self.name = f"consult_scale_{os.getpid()}"
        self.work = Path(tempfile.mkdtemp(prefix="consult-scale-pg-"))
        self.env = {
            **env,
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{self.name}",
            "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        }
        psql(f"CREATE DATABASE {self.name}")
        redis_flush()

    def prepare(self, users: int) -> None:
        """As many astrologers as users: each session its own astrologer. With a few shared
        astrologers, concurrent ends deadlock on PostgreSQL (README, Performance)."""
        bench = Bench.__new__(Bench)
        bench.env, bench.work = self.env, self.work
        bench.prepare(users=users, astrologers=users)
        self.ledger = bench.ledger

    def serve(self, workers: int) -> subprocess.Popen:
        port = free_port()
        env = {**self.env, "WEB_CONCURRENCY": str(workers), "BIND": f"127.0.0.1:{port}"}
        with open(self.work / f"gunicorn-{workers}.log", "w") as log:
            proc = self.procs.start(
                [VENV / "gunicorn", "-c", "gunicorn.conf.py", "app:app"],
                cpu=SERVER_CPU if workers == 1 else None,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_healthy(port, proc)
        self.port = port
        return proc

    def load(self, rate: int, seconds: float, master: int) -> dict:
        """One open-loop run of the shared loadgen: `rate` ends/s for `seconds`."""
        loadgen = Path(node_modules()).parent / "loadgen.mjs"
        pids = children(master)
        with MachineLoad() as machine:
            out = self._loadgen(loadgen, rate, seconds)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["workerCpuS"] = round(sum(cpu_seconds(p) for p in pids), 1)
        if not result.get("timedOut"):  # else its last seconds are the wait for time-outs
            result["machineBusyPct"] = machine.busy_percent(result.get("measureS") or seconds)
        return result

    def _loadgen(self, loadgen: Path, rate: int, seconds: float):
        return subprocess.run(
            [
                "taskset",
                "-c",
                CLIENT_CPU,
                "node",
                "--single-threaded-gc",
                loadgen,
                "--target",
                "consult",
                "--url",
                f"http://127.0.0.1:{self.port}",
                "--astrologers",
                self.work / "astrologers.jsonl",
                "--users-file",
                self.work / "users.jsonl",
                "--sessions",
                str(max(100, int(rate * seconds))),
                "--rate",
                str(rate),
                "--duration",
                str(seconds),
                "--quiet",
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=900,
        )

    def close(self) -> None:
        redis_flush()
        shutil.rmtree(self.work, ignore_errors=True)
        psql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True, timeout=60
    )


def redis_flush() -> None:
    subprocess.run(["redis-cli", "-n", str(REDIS_DB), "flushdb"], check=True, timeout=30)


def sustained(run: dict) -> bool:
    failed = sum(run.get(k, 0) for k in ("errors", "timedOut", "dupes", "invalid"))
    return failed == 0 and run.get("p99") is not None and run["p99"] <= P99_LIMIT_MS


def workers_scenario(procs: Processes, env: dict, rates: list[int], seconds: float) -> dict:
    """The highest rate of the ladder each worker count sustains (p99 ≤ 100 ms, no errors)."""
    cluster = Cluster(procs, env)
    try:
        cluster.prepare(users=int(max(rates) * seconds) + 100)
        found = {}
        for workers in (1, 2):
            master = cluster.serve(workers)
            runs = []
            try:
                for rate in rates:
                    runs.append({"rate": rate, **cluster.load(rate, seconds, master.pid)})
                    print(f"  {workers} worker(s), {rate}/s: {brief(runs[-1])}", file=sys.stderr)
                    if not sustained(runs[-1]):
                        break
            finally:
                procs.stop(master, grace=25)
            best = [r["rate"] for r in runs if sustained(r)]
            found[str(workers)] = {"maxSustained": max(best, default=0), "runs": runs}
        return {"workers": found, "ledger": cluster.ledger()}
    finally:
        cluster.close()


def brief(run: dict) -> str:
    if run.get("p50") is None:  # nothing completed: say what the load client said
        return json.dumps(run)[:400]
    machine = f", both cores {run['machineBusyPct']} % busy" if "machineBusyPct" in run else ""
    return (
        f"p50 {run['p50']} ms, p99 {run['p99']} ms, errors {run['errors']}, "
        f"timed out {run['timedOut']}, achieved {run['achievedRate']}/s{machine}"
    )


# ---------------------------------------------------------------- report


def spread(values: list[float]) -> str:
    """The median, and the range when there is more than one value."""
    show = lambda v: f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"  # noqa: E731
    if len(values) == 1:
        return show(values[0])
    return f"{show(statistics.median(values))} ({show(min(values))}–{show(max(values))})"


def table(results: dict) -> list[str]:
    lines = ["| goal | target | measured (median, range over rounds) | conditions |"]
    lines.append("| --- | --- | --- | --- |")
    for s in results.get("sockets", []):
        lines.append(
            f"| sockets in one process | 10,000 | {s['sockets']:,} open, {s['failed']} refused "
            f"| {s['fdsPerSocket']} descriptors each, limit {s.get('fdLimit', '?')} |"
        )
        break
    if results.get("sockets"):
        rounds = results["sockets"]
        lines.append(
            f"| RSS per socket | ≤ 40 KB | {spread([r['kbPerSocket'] for r in rounds])} KB "
            f"| {rounds[0]['rssBeforeMB']} → {rounds[0]['rssAfterMB']} MB |"
        )
        lines.append(
            f"| idle CPU, sockets open | | {spread([r['idleCpuPercent'] for r in rounds])} % "
            f"| 30 s, no sessions; {spread([r['noSocketsCpuPercent'] for r in rounds])} % "
            "with no socket |"
        )
    if results.get("idle"):
        rounds = results["idle"]
        values = [v for r in rounds for v in r["idleCpuPercent"]]
        lines.append(
            f"| idle CPU, {rounds[0]['liveSessions']} live sessions | ≤ 3 % of a core "
            f"| {spread(values)} % | both parties connected, {rounds[0]['rssMB']} MB RSS |"
        )
    for interval in sorted({r["interval"] for r in results.get("lateness", [])}, reverse=True):
        rounds = [r for r in results["lateness"] if r["interval"] == interval]
        busy = spread([r["serverCpuPercent"] for r in rounds])
        for key, what in (("firedMs", "fired"), ("heardMs", "heard by the user")):
            lines.append(
                f"| funded-end lateness p99, {what}, tick {interval} s | ≤ 100 ms "
                f"| {spread([r[key]['p99'] for r in rounds if r[key]])} ms "
                f"(p50 {spread([r[key]['p50'] for r in rounds if r[key]])}) "
                f"| {rounds[0]['liveAtStart']} live, {rounds[0]['funded ends']} ends over "
                f"{rounds[0]['windowSeconds']} s, server {busy} % busy |"
            )
    if results.get("workers"):
        rounds = results["workers"]
        one = [r["workers"]["1"]["maxSustained"] for r in rounds]
        two = [r["workers"]["2"]["maxSustained"] for r in rounds]
        ratios = [round(b / a, 2) if a else 0 for a, b in zip(one, two, strict=True)]
        busy = [b for r in rounds if (b := _busy_at_best(r["workers"]["1"])) is not None]
        lines.append(
            f"| ends/s sustained, 2 workers / 1 | ≥ 1.8× | {spread(ratios)}× "
            f"({spread(two)} / {spread(one)} ends/s) | PostgreSQL + Redis, p99 ≤ 100 ms; "
            f"both cores {spread(busy) if busy else '?'} % busy at one worker's best rate |"
        )
    return lines


def _busy_at_best(found: dict) -> float | None:
    """How busy the machine was at the highest rate this worker count sustained."""
    best = [r for r in found["runs"] if r["rate"] == found["maxSustained"]]
    return best[0].get("machineBusyPct") if best else None


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bench/scale", description=__doc__.split("\n\n")[0].replace("\n", " ")
    )
    parser.add_argument("--quick", action="store_true", help="small counts, one round (~4 min)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each (default 2)")
    parser.add_argument(
        "--only", default="sockets,idle,lateness,workers", help="comma-separated scenarios"
    )
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--idle-sessions", type=int, default=5_000)
    parser.add_argument("--live-sessions", type=int, default=10_000)
    parser.add_argument("--ending", type=int, default=1_000, help="funded ends in the window")
    parser.add_argument("--window", type=float, default=60, help="seconds the ends spread over")
    parser.add_argument(
        "--intervals",
        default="0.5,0.1",
        help="scheduler tick intervals for the lateness runs (0.5 is the default setting)",
    )
    parser.add_argument("--rates", default="10,20,30,40,60,80,100,150,200")
    parser.add_argument("--seconds", type=float, default=4, help="each rate's measure phase")
    parser.add_argument("--out", default=str(RESULTS / "scale.json"))
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="idle: sample the server's stacks for another 30 s into FILE (collapsed stacks; "
        "bench/profile_summary.py FILE summarises them)",
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.sockets, args.idle_sessions = 1, 1_000, 500
        args.live_sessions, args.ending, args.window, args.rates = 1_000, 100, 15, "10,20"
    only = set(args.only.split(","))
    env = dict(os.environ)
    if args.profile:
        env["PROFILE_OUT"] = str(Path(args.profile).resolve())
    procs = Processes()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    results: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "args": vars(args)}
    try:
        for _ in range(args.rounds):
            if "sockets" in only:
                results.setdefault("sockets", []).append(
                    sockets_scenario(procs, env, args.sockets, settle=5)
                )
            if "idle" in only:
                results.setdefault("idle", []).append(
                    idle_scenario(procs, env, args.idle_sessions, settle=10)
                )
            for interval in (
                [float(i) for i in args.intervals.split(",")] if "lateness" in only else []
            ):
                results.setdefault("lateness", []).append(
                    lateness_scenario(
                        procs, env, args.live_sessions, args.ending, args.window, interval
                    )
                )
            if "workers" in only:
                rates = [int(r) for r in args.rates.split(",")]
                results.setdefault("workers", []).append(
                    workers_scenario(procs, env, rates, args.seconds)
                )
            print(json.dumps(results, indent=1), file=sys.stderr)
    finally:
        procs.stop_all()
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
    print("\n".join(table(results)))
    ledgers = {r["ledger"] for rounds in results.values() if isinstance(rounds, list)
               for r in rounds}  # fmt: skip
    print("\n" + "\n".join(sorted(ledgers)))


if __name__ == "__main__":
    main()
