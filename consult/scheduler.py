"""The clock-driven side of Consult: funded ends, request expiry, disconnect grace,
low-balance warnings, and the heartbeat that crash recovery settles up to.

Correctness does not depend on the tick: an end's instant is computed from timestamps
(the funded end, the disconnect), so a late tick only delays the notification.
"""

import logging
import threading
import time
import uuid
from datetime import datetime, timedelta

from sqlalchemy import String, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from . import consultations, metrics, off_the_loop
from .clock import utcnow
from .db import UTCDateTime, db, write_transaction
from .policy import Restart
from .realtime import Event, LocalHub
from .statements import Statement, transaction

log = logging.getLogger(__name__)
SCHEDULER_LEASE = "scheduler"
DUE_SLACK_SECONDS = 0.002  # wake just after a due time, so it is due when looked at


class Heartbeat(db.Model):
    """The last instant each running instance was known to be alive."""

    __tablename__ = "heartbeats"

    instance_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Lease(db.Model):
    """Which instance runs the clock-driven work: one holder at a time, until it expires."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Every tick renews the lease, and every second the heartbeat: statements on the driver's
# cursor in a lean transaction (statements.py), ~0.3 ms where the session's unit of work
# took ~5 ms of the event loop twice a second, stalling every socket meanwhile.
_leases, _heartbeats = Lease.__table__, Heartbeat.__table__
# The lease moves to `holder` only if it is theirs already or has expired.
_RENEW_LEASE = Statement(
    update(_leases).where(
        _leases.c.name == bindparam("lease"),
        or_(_leases.c.holder == bindparam("who"), _leases.c.expires_at <= bindparam("now")),
    )
)
_LEASE_EXISTS = Statement(select(_leases.c.name).where(_leases.c.name == bindparam("name")))
_NEW_LEASE = Statement(insert(_leases))
_BEAT = Statement(update(_heartbeats).where(_heartbeats.c.instance_id == bindparam("instance")))
_FIRST_BEAT = Statement(insert(_heartbeats))


def hold_lease(name: str, holder: str, *, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease if it is free, expired or already ours; True if we hold it.

    A compare-and-set in one write transaction, so two instances never both win.
    """
    expires_at = now + ttl
    try:
        with transaction():
            moved = _RENEW_LEASE.run(
                {
                    "lease": name,
                    "who": holder,
                    "now": now,
                    "holder": holder,
                    "expires_at": expires_at,
                }
            ).rowcount
            if moved:
                return True
            if _LEASE_EXISTS.run({"name": name}).one_or_none() is not None:
                return False  # another's, and not expired
            _NEW_LEASE.run({"name": name, "holder": holder, "expires_at": expires_at})
            return True
    except IntegrityError:  # another instance created it first: theirs
        return False


def beat(instance_id: str, at: datetime) -> None:
    with transaction():
        if not _BEAT.run({"instance": instance_id, "beat_at": at}).rowcount:
            _FIRST_BEAT.run({"instance_id": instance_id, "beat_at": at})


def last_alive(*, excluding: str) -> datetime | None:
    return db.session.scalar(
        select(func.max(Heartbeat.beat_at)).where(Heartbeat.instance_id != excluding)
    )


def beating_since(since: datetime, *, excluding: str) -> set[str]:
    """The other instances whose last heartbeat is later than `since`."""
    return set(
        db.session.scalars(
            select(Heartbeat.instance_id).where(
                Heartbeat.instance_id != excluding, Heartbeat.beat_at > since
            )
        )
    )


def newest_beat(instance_ids: set[str]) -> datetime | None:
    return db.session.scalar(
        select(func.max(Heartbeat.beat_at)).where(Heartbeat.instance_id.in_(instance_ids))
    )


def lease_ttl(interval: float) -> timedelta:
    """How long a tick's lease lasts: a few ticks, so one slow tick does not lose it."""
    return timedelta(seconds=max(2.0, interval * 6))


class Scheduler:
    """Runs `tick` every `interval` seconds in a background thread (a greenlet under gevent);
    the lease holder also wakes between ticks at the next due time, to end what is due."""

    def __init__(
        self,
        app,
        interval: float = 0.5,
        heartbeat_every: float = 1.0,
        presence_check_every: float | None = None,
        alone: bool | None = None,
    ):
        self.app = app
        # One process by construction (the in-memory hub), unless told: one of several.
        self.alone = isinstance(self.services.hub, LocalHub) if alone is None else alone
        self.interval = interval
        self.heartbeat_every = heartbeat_every
        self.presence_check_every = presence_check_every or interval * 10
        self.instance_id = uuid.uuid4().hex
        self.lease_ttl = lease_ttl(interval)
        self.stale_after = timedelta(seconds=max(3.0, heartbeat_every * 3))
        self.booted_at = utcnow()
        self._recovery_pending = False
        self._predecessors: set[str] = set()  # instances beating when this one started
        self.is_leader = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_beat: datetime | None = None
        self._last_presence_check: datetime | None = None
        self._next_due: datetime | None = None  # the leader's earliest due time to come

    @property
    def services(self):
        return self.app.extensions["consult"]

    def recover(self) -> list[int]:
        """At start-up, settle what a crash of the whole system left active.

        A lone instance (the in-memory hub: one process by construction) knows any earlier
        heartbeat was a dead predecessor's, and settles at once. With several instances, if
        none has beaten recently the system was down: settle now. If some have, they may be
        alive or may just have died (a whole cluster restarting does that); `tick` decides
        once their heartbeats have had time to go stale: if none of them beats again after
        our boot, the system was down, and what was live is settled up to their last beat.
        Meanwhile `restart()` holds every end of an older session to that beat as well.
        """
        with self.app.app_context():
            self.booted_at = utcnow()
            newest = last_alive(excluding=self.instance_id)
            fresh = beating_since(self.booted_at - self.stale_after, excluding=self.instance_id)
            beat(self.instance_id, self.booted_at)
            consultations.rebuild_due_times()  # sessions from before an upgrade have none
            if not self.alone and fresh:
                self._predecessors, self._recovery_pending = fresh, True
                db.session.remove()
                return []
            return self._recover(newest or self.booted_at)

    def restart(self) -> Restart | None:
        """The restart's doubt while it lasts (see `recover`); None once decided."""
        if not self._recovery_pending:
            return None
        alive_until = newest_beat(self._predecessors)
        return Restart(self.booted_at, alive_until or self.booted_at)

    def _recover(self, last_known_alive: datetime) -> list[int]:
        self._recovery_pending = False
        ended = consultations.recover_after_crash(
            last_alive=last_known_alive,
            started_before=self.booted_at,
            hub=self.services.hub,
            policy=self.services.policy,
        )
        with write_transaction():
            db.session.execute(
                delete(Heartbeat).where(Heartbeat.beat_at < self.booted_at - self.stale_after)
            )
        if ended:
            log.warning("crash recovery settled %d consultation(s): %s", len(ended), ended)
        db.session.remove()
        return ended

    def _decide_recovery(self, now: datetime) -> None:
        """Alive if one of the instances beating at our boot has beaten since; instances
        that started after the crash (our siblings in a cluster restart) prove nothing."""
        if now - self.booted_at < self.stale_after:
            return
        if beating_since(self.booted_at, excluding=self.instance_id) & self._predecessors:
            self._recovery_pending = False
        else:
            self._recover(newest_beat(self._predecessors) or self.booted_at)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="consult-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        next_tick = time.monotonic() + self.interval
        while True:
            try:
                with self.app.app_context():
                    self._next_due = self._find_next_due()
            except Exception:
                log.exception("scheduler could not find the next due time")
                self._next_due = None
            if self._stop.wait(self._sleep_before(next_tick)):
                return
            try:
                with self.app.app_context():
                    if time.monotonic() >= next_tick:
                        self.tick(utcnow())
                        next_tick = time.monotonic() + self.interval
                    elif self.is_leader:  # woken for a due time between ticks
                        self._end_due(utcnow(), time.monotonic())
                        db.session.remove()
            except Exception:  # keep the clock running; the error is logged, not hidden
                log.exception("scheduler tick failed")

    def _sleep_before(self, next_tick: float) -> float:
        """Until the next tick, or the next due time if that comes first: a funded end fires
        when the money runs out, not up to a tick later."""
        wait = next_tick - time.monotonic()
        if self._next_due is not None:
            wait = min(wait, (self._next_due - utcnow()).total_seconds() + DUE_SLACK_SECONDS)
        return max(0.0, wait)

    def _find_next_due(self) -> datetime | None:
        if not self.is_leader:
            return None
        found = consultations.next_due(now=utcnow(), policy=self.services.policy)
        db.session.remove()
        return found

    def tick(self, now: datetime) -> None:
        began = time.monotonic()  # `now` is the tick's instant; ends after it fire later
        services = self.services
        hub, policy = services.hub, services.policy
        if (
            self._last_beat is None
            or (now - self._last_beat).total_seconds() >= self.heartbeat_every
        ):
            beat(self.instance_id, now)
            self._last_beat = now
        if self._recovery_pending:
            self._decide_recovery(now)
        # Every instance beats; only the lease holder runs the clock-driven work, and an
        # instance that dies loses the lease within `lease_ttl` to the next one.
        self.is_leader = hold_lease(SCHEDULER_LEASE, self.instance_id, now=now, ttl=self.lease_ttl)
        if not self.is_leader:
            db.session.remove()
            return
        # A safety net, not the path: a socket's detach pauses its sessions at once.
        if (
            self._last_presence_check is None
            or (now - self._last_presence_check).total_seconds() >= self.presence_check_every
        ):
            consultations.pause_vanished_parties(hub=hub)
            self._last_presence_check = now
        off_the_loop.let_sockets_in()  # each step is a few queries: a frame waits for one
        consultations.expire_stale(now=now, hub=hub, policy=policy)
        off_the_loop.let_sockets_in()
        # While a restart's doubt lasts (three seconds at most), a due end could bill a
        # downtime: it waits for the verdict, which settles what the downtime left.
        if not self._recovery_pending:
            self._end_due(now, began)
            off_the_loop.let_sockets_in()
        self._warn_low_balance(now)
        db.session.remove()

    def _end_due(self, now: datetime, began: float) -> None:
        """End what is due by `now`: funds or spend cap reached, time limit, grace past."""
        services = self.services
        for consultation_id, reason, due_at in consultations.due_ends(
            now=now, policy=services.policy
        ):
            late = (now - due_at).total_seconds() + time.monotonic() - began
            metrics.END_LATENESS_SECONDS.observe(late)
            consultations.end_session(
                consultation_id, reason=reason, at=now, hub=services.hub, policy=services.policy
            )

    def _warn_low_balance(self, now: datetime) -> None:
        """Warn once for each funded end that falls under the threshold; a recharge re-arms it."""
        services = self.services
        warnings = [
            (
                consultation.user_id,
                Event(
                    "billing:low-balance",
                    {
                        "sessionId": consultation.id,
                        "fundedSecondsLeft": reading.funded_seconds_left,
                        "balancePaise": reading.balance_paise,
                    },
                ),
            )
            for consultation, reading in consultations.low_balance(now=now, policy=services.policy)
        ]
        if not warnings:
            return
        consultations.mark_warned([event.data["sessionId"] for _, event in warnings])
        for user_id, event in warnings:
            services.hub.publish([user_id], event)
