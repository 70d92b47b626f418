"""What an operator watches: ends, settlement time, live sessions, sockets, refunds, lateness.

The instruments are the process's own (Prometheus counts per process); they are module
state because the library's are, and nothing reads them but a scrape. Under gunicorn with
`PROMETHEUS_MULTIPROC_DIR` set (before the first import of prometheus_client) each worker
writes its values to files there and a scrape of any worker adds up all of them
(gunicorn.conf.py removes a dead worker's socket gauge). What only the database knows
(live sessions) is counted at scrape time, so it is right whichever worker answers.

Recording costs what the library costs (a lock and an add, or an mmap write): no SQL.
"""

import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY

ENDS = Counter("consult_session_ends", "Sessions settled, by end reason", ["reason"])
SETTLEMENT_SECONDS = Histogram(
    "consult_settlement_seconds",
    "Time end_session took for each session it settled (lock, ledger, commit, events)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
# What the scheduler's lateness means to a party: how long after its due time (funds out,
# time limit, grace over) a session's end was fired. Billing never runs past the due time
# (an end's instant comes from timestamps), so lateness only delays the banner; but a
# stalled or overloaded scheduler, a burst of ends run one after another in one tick, or a
# lost lease waiting to expire all show here, and a tick's own delay would miss the last two.
END_LATENESS_SECONDS = Histogram(
    "consult_scheduler_end_lateness_seconds",
    "How long after its due time the scheduler fired each due end",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
OPEN_SOCKETS = Gauge(
    "consult_open_sockets",
    "Sockets attached to the hub (summed over live workers)",
    multiprocess_mode="livesum",
)
WAL_FSYNCS = Counter("consult_sqlite_wal_fsyncs", "fsyncs of SQLite's WAL (group commit)")
WAL_SYNCED_COMMITS = Counter(
    "consult_sqlite_wal_synced_commits", "Write transactions made durable by those fsyncs"
)
REFUNDS = Counter("consult_refunds", "Refunds made, by reason", ["reason"])
REFUNDED_PAISE = Counter("consult_refunded_paise", "Paise refunded, by reason", ["reason"])


def settled(reason: str, seconds: float, make_good: str | None, refunded_paise: int) -> None:
    """Count a settlement that won: its end reason, its time, and its make-good refund."""
    ENDS.labels(reason).inc()
    SETTLEMENT_SECONDS.observe(seconds)
    if make_good and refunded_paise:
        refunded(make_good, refunded_paise)


def wal_synced(commits: int) -> None:
    """Count one group commit's fsync and the commits it made durable."""
    WAL_FSYNCS.inc()
    WAL_SYNCED_COMMITS.inc(commits)


def refunded(reason: str, paise: int) -> None:
    """Count a committed refund."""
    REFUNDS.labels(reason).inc()
    REFUNDED_PAISE.labels(reason).inc(paise)


class LiveSessions:
    """The active consultations, counted by `count` (the database) at scrape time."""

    def __init__(self, count: Callable[[], int]):
        self.count = count

    def collect(self):
        yield GaugeMetricFamily("consult_live_sessions", "Active consultations", value=self.count())


def exposition(live_sessions: Callable[[], int]) -> bytes:
    """The text format of every metric: this process's, or all workers' in multiprocess mode,
    and the live sessions counted by `live_sessions`."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        source = CollectorRegistry()
        MultiProcessCollector(source)
    else:
        source = REGISTRY
    live = CollectorRegistry()
    live.register(LiveSessions(live_sessions))
    return generate_latest(source) + generate_latest(live)
