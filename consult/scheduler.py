"""The clock-driven side of Consult: funded ends, request expiry, disconnect grace,
low-balance warnings, and the heartbeat that crash recovery settles up to.

Correctness does not depend on the tick: an end's instant is computed from timestamps
(the funded end, the disconnect), so a late tick only delays the notification.
"""

import logging
import threading
import uuid
from datetime import datetime, timedelta

from sqlalchemy import String, delete, func, select
from sqlalchemy.orm import Mapped, mapped_column

from . import consultations
from .clock import utcnow
from .db import UTCDateTime, db, write_transaction
from .realtime import Event

log = logging.getLogger(__name__)


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


def hold_lease(name: str, holder: str, *, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease if it is free, expired or already ours; True if we hold it.

    A compare-and-set in one write transaction, so two instances never both win.
    """
    with write_transaction():
        lease = db.session.get(Lease, name, with_for_update=True)
        if lease is None:
            db.session.add(Lease(name=name, holder=holder, expires_at=now + ttl))
            return True
        if lease.holder != holder and lease.expires_at > now:
            return False
        lease.holder, lease.expires_at = holder, now + ttl
        return True


def beat(instance_id: str, at: datetime) -> None:
    with write_transaction():
        row = db.session.get(Heartbeat, instance_id)
        if row is None:
            db.session.add(Heartbeat(instance_id=instance_id, beat_at=at))
        else:
            row.beat_at = at


def last_alive(*, excluding: str) -> datetime | None:
    return db.session.scalar(
        select(func.max(Heartbeat.beat_at)).where(Heartbeat.instance_id != excluding)
    )


def others_alive(*, excluding: str, now: datetime, stale_after: timedelta) -> bool:
    newest = last_alive(excluding=excluding)
    return newest is not None and newest > now - stale_after


class Scheduler:
    """Runs `tick` every `interval` seconds in a background thread (a greenlet under gevent)."""

    def __init__(self, app, interval: float = 0.5, heartbeat_every: float = 1.0):
        self.app = app
        self.interval = interval
        self.heartbeat_every = heartbeat_every
        self.instance_id = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_beat: datetime | None = None
        self._warned: dict[int, int] = {}  # consultation id -> funded seconds left when warned

    @property
    def services(self):
        return self.app.extensions["consult"]

    def recover(self) -> list[int]:
        """At start-up: if no other instance is alive, settle what the crash left active."""
        with self.app.app_context():
            now = utcnow()
            stale = timedelta(seconds=max(5.0, self.heartbeat_every * 5))
            if others_alive(excluding=self.instance_id, now=now, stale_after=stale):
                return []
            alive = last_alive(excluding=self.instance_id) or now
            ended = consultations.recover_after_crash(
                last_alive=alive, hub=self.services.hub, policy=self.services.policy
            )
            with write_transaction():
                db.session.execute(delete(Heartbeat).where(Heartbeat.beat_at < now - stale))
            if ended:
                log.warning("crash recovery settled %d consultation(s): %s", len(ended), ended)
            beat(self.instance_id, now)
            db.session.remove()
            return ended

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="consult-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.app.app_context():
                    self.tick(utcnow())
            except Exception:  # keep the clock running; the error is logged, not hidden
                log.exception("scheduler tick failed")

    def tick(self, now: datetime) -> None:
        services = self.services
        hub, policy = services.hub, services.policy
        if (
            self._last_beat is None
            or (now - self._last_beat).total_seconds() >= self.heartbeat_every
        ):
            beat(self.instance_id, now)
            self._last_beat = now
        consultations.expire_stale(now=now, hub=hub, policy=policy)
        for consultation_id, reason in consultations.due_ends(now=now, policy=policy):
            consultations.end_session(
                consultation_id, reason=reason, at=now, hub=hub, policy=policy
            )
            self._warned.pop(consultation_id, None)
        self._warn_low_balance(now)
        db.session.remove()

    def _warn_low_balance(self, now: datetime) -> None:
        """Warn once each time funds fall under the threshold; a recharge re-arms it."""
        services = self.services
        low = consultations.low_balance(now=now, policy=services.policy)
        self._warned = {cid: w for cid, w in self._warned.items() if cid in {c.id for c, _ in low}}
        for consultation, reading in low:
            if consultation.id in self._warned:
                continue
            self._warned[consultation.id] = reading.funded_seconds_left
            services.hub.publish(
                [consultation.user_id],
                Event(
                    "billing:low-balance",
                    {
                        "sessionId": consultation.id,
                        "fundedSecondsLeft": reading.funded_seconds_left,
                        "balancePaise": reading.balance_paise,
                    },
                ),
            )
