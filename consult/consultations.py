"""Consultations: request, accept, pause, and End Session with its one settlement function.

Lifecycle: requested -> active -> ended, or requested -> declined | cancelled | expired.
Every way of ending (the user, the astrologer, the balance running out, a disconnect, a
crash) goes through `end_session`, which settles in one transaction: a compare-and-set
from active to ended, the cost from timestamps, the ledger transfer and the audit record.
Events are published only after that transaction commits.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import audit, billing, idempotency, ledger
from .accounts import User
from .clock import iso
from .db import UTCDateTime, db, write_transaction
from .errors import Conflict, Forbidden, NotFound, PaymentRequired
from .policy import Policy
from .realtime import Event, Hub

REQUESTED, ACTIVE, ENDED = "requested", "active", "ended"
DECLINED, CANCELLED, EXPIRED = "declined", "cancelled", "expired"
STATUSES = (REQUESTED, ACTIVE, ENDED, DECLINED, CANCELLED, EXPIRED)
LIVE = (REQUESTED, ACTIVE)

USER_REQUESTED = "user_requested"
INSUFFICIENT_BALANCE = "insufficient_balance"
USER_DISCONNECTED = "user_disconnected"
ASTROLOGER_ENDED = "astrologer_ended"
ASTROLOGER_DISCONNECTED = (
    "astrologer_disconnected"  # the astrologer vanished: the user stops paying
)
SYSTEM_ERROR = "system_error"
END_REASONS = (
    USER_REQUESTED,
    INSUFFICIENT_BALANCE,
    USER_DISCONNECTED,
    ASTROLOGER_ENDED,
    ASTROLOGER_DISCONNECTED,
    SYSTEM_ERROR,
)

SESSION_NOT_FOUND = "Session not found"
NOT_ACTIVE = "Session is not active"
NOT_WAITING = "Session is no longer waiting for an answer"
_live_filter = text("status IN ('requested', 'active')")


class Consultation(db.Model):
    __tablename__ = "consultations"
    __table_args__ = (
        # One live session per user, enforced by the database itself.
        Index(
            "uq_consultations_one_live_per_user",
            "user_id",
            unique=True,
            sqlite_where=_live_filter,
            postgresql_where=_live_filter,
        ),
        CheckConstraint(
            "status IN ('requested', 'active', 'ended', 'declined', 'cancelled', 'expired')",
            name="status",
        ),
        CheckConstraint("rate_paise_per_minute > 0", name="positive_rate"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    astrologer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    rate_paise_per_minute: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    billed_seconds: Mapped[int | None]
    total_cost_paise: Mapped[int | None]
    balance_after_paise: Mapped[int | None]
    # Billing pauses while a party is away: completed pauses add up here; a pause in
    # progress began at the earlier of the two *_left_at instants.
    paused_micros: Mapped[int] = mapped_column(default=0)
    user_left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    astrologer_left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user = relationship(User, foreign_keys=[user_id], lazy="joined")
    astrologer = relationship(User, foreign_keys=[astrologer_id], lazy="joined")

    @property
    def paused(self) -> timedelta:
        return timedelta(microseconds=self.paused_micros)

    @property
    def paused_since(self) -> datetime | None:
        marks = [m for m in (self.user_left_at, self.astrologer_left_at) if m is not None]
        return min(marks) if marks else None

    def party_role(self, user_id: int) -> str | None:
        if user_id == self.user_id:
            return "user"
        if user_id == self.astrologer_id:
            return "astrologer"
        return None

    def to_api(self) -> dict:
        """The Session object of API.md."""
        return {
            "id": self.id,
            "userId": self.user_id,
            "astrologerId": self.astrologer_id,
            "astrologerName": self.astrologer.display_name,
            "status": self.status,
            "ratePaisePerMinute": self.rate_paise_per_minute,
            "requestedAt": iso(self.requested_at),
            "startedAt": iso(self.started_at),
            "endedAt": iso(self.ended_at),
            "endReason": self.end_reason,
            "durationSeconds": self.billed_seconds,
            "totalCostPaise": self.total_cost_paise,
        }


@dataclass(frozen=True)
class Meter:
    """The live bill of an active consultation at one instant."""

    session_id: int
    elapsed_seconds: int
    cost_paise: int
    wallet_paise: int
    funded_seconds_left: int
    paused: bool
    rate_paise_per_minute: int

    @property
    def balance_paise(self) -> int:
        """The wallet minus the cost so far: what the user would have if it ended now."""
        return self.wallet_paise - self.cost_paise

    def to_api(self, for_user: bool) -> dict:
        return {
            "sessionId": self.session_id,
            "elapsedSeconds": self.elapsed_seconds,
            "costPaise": self.cost_paise,
            "balancePaise": self.balance_paise if for_user else None,
            "fundedSecondsLeft": self.funded_seconds_left,
            "paused": self.paused,
            "ratePaisePerMinute": self.rate_paise_per_minute,
        }


@dataclass(frozen=True)
class EndOutcome:
    consultation: Consultation
    already_ended: bool

    def to_api(self, for_user: bool) -> dict:
        c = self.consultation
        return {
            "sessionId": c.id,
            "reason": c.end_reason,
            "endedAt": iso(c.ended_at),
            "durationSeconds": c.billed_seconds,
            "totalCostPaise": c.total_cost_paise,
            "balancePaise": c.balance_after_paise if for_user else None,
            "alreadyEnded": self.already_ended,
        }


# ---------------------------------------------------------------- reading


def get_for_party(consultation_id, viewer: User) -> Consultation:
    """Return the consultation if the viewer is a party (or an admin); others see NotFound."""
    if not isinstance(consultation_id, int) or isinstance(consultation_id, bool):
        raise NotFound(SESSION_NOT_FOUND)
    consultation = db.session.get(Consultation, consultation_id)
    if consultation is None or not (
        viewer.is_admin or consultation.party_role(viewer.id) is not None
    ):
        raise NotFound(SESSION_NOT_FOUND)
    return consultation


def _party_filter(viewer: User):
    column = Consultation.astrologer_id if viewer.is_astrologer else Consultation.user_id
    return column == viewer.id


def list_for(viewer: User, status: str | None = None, limit: int = 100) -> list[Consultation]:
    """The viewer's consultations, newest first."""
    query = (
        select(Consultation)
        .where(_party_filter(viewer))
        .order_by(Consultation.requested_at.desc(), Consultation.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(Consultation.status == status)
    return list(db.session.scalars(query))


def active_for(viewer: User) -> Consultation | None:
    """The viewer's active consultation; an astrologer with several gets the latest accepted."""
    return db.session.scalar(
        select(Consultation)
        .where(_party_filter(viewer), Consultation.status == ACTIVE)
        .order_by(Consultation.started_at.desc(), Consultation.id.desc())
        .limit(1)
    )


def on_desk(astrologer: User, now: datetime, keep_minutes: int = 15) -> list[Consultation]:
    """An astrologer's active sessions, plus those ended in the last minutes (still readable)."""
    recent = now - timedelta(minutes=keep_minutes)
    return list(
        db.session.scalars(
            select(Consultation)
            .where(
                Consultation.astrologer_id == astrologer.id,
                or_(
                    Consultation.status == ACTIVE,
                    (Consultation.status == ENDED) & (Consultation.ended_at >= recent),
                ),
            )
            .order_by(Consultation.started_at.desc())
        )
    )


def live_for(viewer: User) -> Consultation | None:
    """The user's requested or active consultation, if any."""
    return db.session.scalar(
        select(Consultation).where(_party_filter(viewer), Consultation.status.in_(LIVE)).limit(1)
    )


def wallet_balance(user_id: int) -> int:
    return ledger.balance(ledger.wallet_of(user_id))


def meter(consultation: Consultation, at: datetime, wallet_paise: int | None = None) -> Meter:
    """The live bill at `at`: pure arithmetic on the consultation's timestamps."""
    if wallet_paise is None:
        wallet_paise = wallet_balance(consultation.user_id)
    rate = consultation.rate_paise_per_minute
    stop = _billing_stop(consultation, at, wallet_paise)
    elapsed = billing.billable_seconds(consultation.started_at, stop, consultation.paused)
    return Meter(
        session_id=consultation.id,
        elapsed_seconds=elapsed,
        cost_paise=billing.cost_paise(elapsed, rate),
        wallet_paise=wallet_paise,
        funded_seconds_left=max(0, billing.funded_seconds(wallet_paise, rate) - elapsed),
        paused=consultation.paused_since is not None,
        rate_paise_per_minute=rate,
    )


def _funded_until(consultation: Consultation, wallet_paise: int) -> datetime:
    return billing.funded_until(
        consultation.started_at,
        consultation.paused,
        wallet_paise,
        consultation.rate_paise_per_minute,
    )


def _billing_stop(consultation: Consultation, at: datetime, wallet_paise: int) -> datetime:
    """When billing stops if the consultation ends at `at`: never past a pause or the funds."""
    bounds = [at, _funded_until(consultation, wallet_paise)]
    if consultation.paused_since is not None:
        bounds.append(consultation.paused_since)
    return max(consultation.started_at, min(bounds))


# ---------------------------------------------------------------- before billing


def _locked(consultation_id: int) -> Consultation | None:
    """Load a consultation for update (a row lock on PostgreSQL; SQLite holds the write lock)."""
    return db.session.get(
        Consultation, consultation_id, with_for_update={"of": Consultation}, populate_existing=True
    )


def _parties(consultation: Consultation) -> tuple[int, int]:
    return (consultation.user_id, consultation.astrologer_id)


def request_consultation(
    user: User, astrologer_id, *, at: datetime, hub: Hub, policy: Policy, request_id=None
) -> Consultation:
    """Ask an astrologer for a chat; the wallet must fund the minimum session first."""
    if user.role != "user":
        raise Forbidden("Only users can request a session")
    if not isinstance(astrologer_id, int) or isinstance(astrologer_id, bool):
        raise NotFound("Astrologer not found")
    astrologer = db.session.get(User, astrologer_id)
    if astrologer is None or not astrologer.is_astrologer:
        raise NotFound("Astrologer not found")
    rate = astrologer.rate_paise_per_minute
    try:
        with write_transaction():
            if live_for(user) is not None:
                raise Conflict("You already have a requested or active session")
            needed = billing.cost_paise(policy.min_session_seconds, rate)
            if wallet_balance(user.id) < needed:
                raise PaymentRequired(
                    f"Your balance must cover at least {policy.min_session_seconds} seconds "
                    "at this rate; please recharge"
                )
            consultation = Consultation(
                user_id=user.id,
                astrologer_id=astrologer.id,
                rate_paise_per_minute=rate,
                status=REQUESTED,
                requested_at=at,
            )
            db.session.add(consultation)
            db.session.flush()
            audit.record(
                consultation.id, "requested", at=at, actor_id=user.id, request_id=request_id
            )
    except IntegrityError:  # the partial unique index caught a concurrent second request
        raise Conflict("You already have a requested or active session") from None
    hub.publish(_parties(consultation), Event("session:requested", consultation.to_api()))
    return consultation


def _answer(
    actor: User,
    consultation_id,
    *,
    role: str,
    status: str,
    event: str,
    at: datetime,
    hub: Hub,
    request_id=None,
    also=None,
) -> Consultation:
    """Move a waiting request to `status` for one of its parties, audit it, then publish."""
    consultation = get_for_party(consultation_id, actor)
    if consultation.party_role(actor.id) != role:
        raise NotFound(SESSION_NOT_FOUND)
    with write_transaction():
        consultation = _locked(consultation.id)
        if consultation.status != REQUESTED:
            raise Conflict(NOT_WAITING)
        consultation.status = status
        consultation.answered_at = at
        if also is not None:
            also(consultation)
        audit.record(consultation.id, event, at=at, actor_id=actor.id, request_id=request_id)
    hub.publish(_parties(consultation), Event(f"session:{event}", consultation.to_api()))
    return consultation


def accept(astrologer: User, consultation_id, *, at: datetime, hub: Hub, request_id=None):
    """The astrologer accepts: billing starts now."""

    def start_billing(consultation: Consultation) -> None:
        consultation.started_at = at
        # A user whose every connection dropped while waiting is away from the start:
        # billing is paused and the disconnect grace runs, so nobody pays for an empty room.
        if hub.gone_since(consultation.user_id) is not None:
            consultation.user_left_at = at

    return _answer(
        astrologer,
        consultation_id,
        role="astrologer",
        status=ACTIVE,
        event="accepted",
        at=at,
        hub=hub,
        request_id=request_id,
        also=start_billing,
    )


def decline(astrologer: User, consultation_id, *, at: datetime, hub: Hub, request_id=None):
    return _answer(
        astrologer,
        consultation_id,
        role="astrologer",
        status=DECLINED,
        event="declined",
        at=at,
        hub=hub,
        request_id=request_id,
    )


def cancel(user: User, consultation_id, *, at: datetime, hub: Hub, request_id=None):
    return _answer(
        user,
        consultation_id,
        role="user",
        status=CANCELLED,
        event="cancelled",
        at=at,
        hub=hub,
        request_id=request_id,
    )


def expire_stale(*, now: datetime, hub: Hub, policy: Policy) -> list[int]:
    """Expire requests nobody answered within the timeout; nothing is charged."""
    cutoff = now - timedelta(seconds=policy.request_timeout_seconds)
    expired = []
    with write_transaction():
        # Row locks: an accept committing meanwhile is seen, and its session left alone.
        for consultation in db.session.scalars(
            select(Consultation)
            .where(Consultation.status == REQUESTED, Consultation.requested_at <= cutoff)
            .with_for_update(of=Consultation)
        ):
            consultation.status = EXPIRED
            consultation.answered_at = now
            audit.record(consultation.id, "expired", at=now, detail="nobody answered in time")
            expired.append(consultation)
    for consultation in expired:
        hub.publish(_parties(consultation), Event("session:expired", consultation.to_api()))
    return [c.id for c in expired]


# ---------------------------------------------------------------- ending


def end_session(
    consultation_id: int,
    *,
    reason: str,
    at: datetime,
    hub: Hub,
    policy: Policy,
    actor_id: int | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> EndOutcome:
    """End a consultation and settle it, exactly once, whoever asks and however often.

    Billing stops at `at`, or earlier where the funds ran out or a party went away.
    A consultation already ended is not charged again: the settled figures come back
    with `already_ended`. Both parties hear `consult:ended` only from the call that won.
    """
    if reason not in END_REASONS:
        raise ValueError(f"unknown end reason {reason!r}")
    try:
        with write_transaction():
            # The row lock comes first: concurrent retries with one key queue behind it and
            # then find the first one's answer.
            consultation = _locked(consultation_id)
            if consultation is None:
                raise NotFound(SESSION_NOT_FOUND)
            if actor_id:
                replayed = idempotency.replay(actor_id, idempotency_key, fingerprint)
                if replayed is not None:
                    return _replayed(consultation_id, replayed)
            if consultation.status == ENDED:
                outcome = EndOutcome(consultation, already_ended=True)
            elif consultation.status != ACTIVE:
                raise Conflict(NOT_ACTIVE)
            else:
                outcome = _settle(consultation, reason, at, policy, actor_id, request_id)
            if actor_id:  # a retry with this key replays this answer, whatever happens next
                idempotency.remember(
                    actor_id,
                    idempotency_key,
                    fingerprint,
                    outcome.to_api(for_user=actor_id == consultation.user_id),
                    at,
                )
    except (IntegrityError, _LostRace):
        # Defence in depth: should a second writer ever get past the lock, the
        # compare-and-set or the unique settlement constraint stops it, and its
        # transaction rolls back whole.
        consultation = db.session.get(Consultation, consultation_id, populate_existing=True)
        return EndOutcome(consultation, already_ended=True)
    if not outcome.already_ended:
        for user_ids, event in _end_events(outcome.consultation):
            hub.publish(user_ids, event)
    return outcome


def _replayed(consultation_id: int, answer: dict) -> EndOutcome:
    consultation = db.session.get(Consultation, answer["sessionId"])
    return EndOutcome(consultation, already_ended=answer["alreadyEnded"])


class _LostRace(Exception):
    """The compare-and-set from active to ended found the consultation no longer active."""


def _settle(consultation, reason, at, policy, actor_id, request_id) -> EndOutcome:
    """The one settlement: compare-and-set, cost, ledger transfer and audit, in one transaction."""
    wallet = ledger.wallet_of(consultation.user_id)
    wallet_paise = ledger.balance(wallet)
    stop = _billing_stop(consultation, at, wallet_paise)
    seconds = billing.billable_seconds(consultation.started_at, stop, consultation.paused)
    cost = billing.cost_paise(seconds, consultation.rate_paise_per_minute)
    won = db.session.execute(
        update(Consultation)
        .where(Consultation.id == consultation.id, Consultation.status == ACTIVE)
        .values(
            status=ENDED,
            ended_at=stop,
            end_reason=reason,
            ended_by_id=actor_id,
            billed_seconds=seconds,
            total_cost_paise=cost,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        raise _LostRace()
    commission = billing.commission_paise(cost, policy.commission_percent)
    ledger.post_transfer(
        "settlement",
        [
            ledger.Move(wallet, ledger.earnings_of(consultation.astrologer_id), cost - commission),
            ledger.Move(wallet, ledger.open_account(ledger.PLATFORM_REVENUE), commission),
        ],
        at=at,
        memo=f"Consultation #{consultation.id} with {consultation.astrologer.display_name}",
        consultation_id=consultation.id,
    )
    # Read after the transfer: a recharge that committed meanwhile is part of "after".
    consultation.balance_after_paise = ledger.balance(wallet)
    audit.record(
        consultation.id,
        "ended",
        at=at,
        actor_id=actor_id,
        reason=reason,
        cost_paise=cost,
        request_id=request_id,
        detail=f"billed {seconds}s, stopped at {iso(stop)}",
    )
    db.session.flush()
    db.session.refresh(consultation)
    return EndOutcome(consultation, already_ended=False)


def _end_events(consultation: Consultation) -> list[tuple[tuple[int, ...], Event]]:
    ended = Event(
        "consult:ended",
        {
            "sessionId": consultation.id,
            "reason": consultation.end_reason,
            "timestamp": iso(consultation.ended_at),
            "durationSeconds": consultation.billed_seconds,
            "totalCostPaise": consultation.total_cost_paise,
        },
    )
    events = [(_parties(consultation), ended)]
    if consultation.end_reason == USER_REQUESTED:
        events.append(
            (
                (consultation.astrologer_id,),
                Event(
                    "session:ended-by-user",
                    {
                        "sessionId": consultation.id,
                        "userId": consultation.user_id,
                        "reason": USER_REQUESTED,
                    },
                ),
            )
        )
    return events


def end_by_party(
    caller: User,
    consultation_id,
    *,
    at: datetime,
    hub: Hub,
    policy: Policy,
    request_id=None,
    idempotency_key=None,
    fingerprint="",
) -> EndOutcome:
    """A party ends: the user with `user_requested`, the astrologer with `astrologer_ended`.

    The reason follows from who asks; a client cannot choose one it is not entitled to.
    """
    consultation = get_for_party(consultation_id, caller)
    role = consultation.party_role(caller.id)
    if role is None:  # an admin is not a party
        raise NotFound(SESSION_NOT_FOUND)
    return end_session(
        consultation.id,
        reason=USER_REQUESTED if role == "user" else ASTROLOGER_ENDED,
        at=at,
        hub=hub,
        policy=policy,
        actor_id=caller.id,
        request_id=request_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )


# ---------------------------------------------------------------- presence and the scheduler


def party_left(user_id: int, *, at: datetime, hub: Hub) -> list[int]:
    """A party's last connection dropped: pause billing of their active consultations."""
    paused = []
    with write_transaction():
        for consultation in _active_of_party(user_id):
            column = "user_left_at" if consultation.user_id == user_id else "astrologer_left_at"
            if getattr(consultation, column) is None:
                setattr(consultation, column, at)
                audit.record(consultation.id, "paused", at=at, actor_id=user_id, detail=column)
                paused.append(consultation)
    _publish_billing(paused, hub)
    return [c.id for c in paused]


def party_returned(user_id: int, *, at: datetime, hub: Hub) -> list[int]:
    """A party is back: once both are present, billing resumes and the gap is not billed."""
    resumed = []
    with write_transaction():
        for consultation in _active_of_party(user_id):
            column = "user_left_at" if consultation.user_id == user_id else "astrologer_left_at"
            if getattr(consultation, column) is None:
                continue
            since = consultation.paused_since
            setattr(consultation, column, None)
            if consultation.paused_since is None:
                gap = at - since
                consultation.paused_micros += max(0, gap // timedelta(microseconds=1))
            audit.record(consultation.id, "resumed", at=at, actor_id=user_id, detail=column)
            resumed.append(consultation)
    _publish_billing(resumed, hub)
    return [c.id for c in resumed]


def reconcile_presence(*, hub: Hub) -> list[int]:
    """Pause sessions whose party vanished without a goodbye (say, with a crashed instance).

    Detaching a socket pauses billing at once; this catches the sockets nobody detached.
    """
    paused = []
    with write_transaction():
        active = db.session.scalars(
            select(Consultation)
            .where(Consultation.status == ACTIVE)
            .with_for_update(of=Consultation)
        )
        for consultation in active:
            for party, column in (
                (consultation.user_id, "user_left_at"),
                (consultation.astrologer_id, "astrologer_left_at"),
            ):
                since = hub.gone_since(party)
                if getattr(consultation, column) is None and since is not None:
                    at = max(since, consultation.started_at)
                    setattr(consultation, column, at)
                    audit.record(consultation.id, "paused", at=at, actor_id=party, detail=column)
                    paused.append(consultation)
    _publish_billing(paused, hub)
    return [c.id for c in paused]


def _active_of_party(user_id: int) -> list[Consultation]:
    return list(
        db.session.scalars(
            select(Consultation)
            .where(
                Consultation.status == ACTIVE,
                or_(Consultation.user_id == user_id, Consultation.astrologer_id == user_id),
            )
            .with_for_update(of=Consultation)
        )
    )


def _publish_billing(consultations: list[Consultation], hub: Hub) -> None:
    for consultation in consultations:
        hub.publish(
            _parties(consultation), Event("billing:updated", {"sessionId": consultation.id})
        )


def due_ends(*, now: datetime, policy: Policy) -> list[tuple[int, str]]:
    """Active consultations that must end now, with the reason: funds out or a party gone."""
    grace = timedelta(seconds=policy.disconnect_grace_seconds)
    due = []
    for consultation in db.session.scalars(
        select(Consultation).where(Consultation.status == ACTIVE)
    ):
        funded = _funded_until(consultation, wallet_balance(consultation.user_id))
        candidates = []
        if consultation.paused_since is None or funded <= consultation.paused_since:
            candidates.append((funded, INSUFFICIENT_BALANCE))
        if consultation.user_left_at is not None:
            candidates.append((consultation.user_left_at + grace, USER_DISCONNECTED))
        if consultation.astrologer_left_at is not None:
            candidates.append((consultation.astrologer_left_at + grace, ASTROLOGER_DISCONNECTED))
        when, reason = min(candidates)
        if when <= now:
            due.append((consultation.id, reason))
    return due


def low_balance(*, now: datetime, policy: Policy) -> list[tuple[Consultation, Meter]]:
    """Running consultations whose funds last less than the warning time."""
    result = []
    for consultation in db.session.scalars(
        select(Consultation).where(Consultation.status == ACTIVE)
    ):
        reading = meter(consultation, now)
        if (
            not reading.paused
            and 0 < reading.funded_seconds_left <= policy.low_balance_warning_seconds
        ):
            result.append((consultation, reading))
    return result


def recover_after_crash(
    *, last_alive: datetime, hub: Hub, policy: Policy, started_before: datetime | None = None
) -> list[int]:
    """Settle every consultation a crash left active, up to the last moment we were alive."""
    query = select(Consultation.id).where(Consultation.status == ACTIVE)
    if started_before is not None:  # sessions begun since the restart are not the crash's
        query = query.where(Consultation.started_at < started_before)
    ids = list(db.session.scalars(query))
    for consultation_id in ids:
        end_session(consultation_id, reason=SYSTEM_ERROR, at=last_alive, hub=hub, policy=policy)
    return ids
