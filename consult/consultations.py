"""Consultations: request, accept, pause, and End Session with its one settlement function.

Lifecycle: requested -> active -> ended, or requested -> declined | cancelled | expired.
Every way of ending (the user, the astrologer, the balance running out, a disconnect, a
crash) goes through `end_session`, which settles in one transaction: a compare-and-set
from active to ended, the cost from timestamps, the ledger transfer and the audit record.
Events are published only after that transaction commits.
"""

from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    or_,
    select,
    text,
    union_all,
    update,
)
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
        # The scheduler's due times: "active and due by now" is one range of each index.
        *(
            Index(f"ix_consultations_status_{column}", "status", column)
            for column in ("funded_until", "user_left_at", "astrologer_left_at")
        ),
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
    # When the balance runs out, as of the last change of funds or pauses: the scheduler
    # finds due sessions by it. A hint that can only be early (funds only grow while a
    # session is live), so the scheduler checks the ledger before ending.
    funded_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warned_for: Mapped[datetime | None] = mapped_column(UTCDateTime)  # funded_until warned of

    user = relationship(User, foreign_keys=[user_id], lazy="joined")
    astrologer = relationship(User, foreign_keys=[astrologer_id], lazy="joined")

    @property
    def paused(self) -> timedelta:
        return _paused(self)

    @property
    def paused_since(self) -> datetime | None:
        return _paused_since(self)

    @property
    def is_requested(self) -> bool:
        return self.status == REQUESTED

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE

    @property
    def is_ended(self) -> bool:
        return self.status == ENDED

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
    user_id: int  # whose wallet: only they see the balance

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


def _paused(c) -> timedelta:
    """Completed pauses of a consultation (an ORM object or a row with its columns)."""
    return timedelta(microseconds=c.paused_micros)


def _paused_since(c) -> datetime | None:
    """When the pause in progress began: the earlier party to leave; None when both are here."""
    marks = [m for m in (c.user_left_at, c.astrologer_left_at) if m is not None]
    return min(marks) if marks else None


@dataclass(frozen=True)
class Ended:
    """The settled figures of an ended consultation: what an end answers and announces."""

    id: int
    user_id: int
    astrologer_id: int
    end_reason: str
    ended_at: datetime
    billed_seconds: int
    total_cost_paise: int
    balance_after_paise: int | None

    @classmethod
    def of(cls, row) -> "Ended":
        return cls(*(getattr(row, f.name) for f in fields(cls)))


@dataclass(frozen=True)
class EndOutcome:
    consultation: Ended
    already_ended: bool

    def answer_for(self, viewer_id: int) -> dict:
        """The end's answer (API.md) as `viewer_id` sees it: only the user sees the balance."""
        return self.to_api(for_user=viewer_id == self.consultation.user_id)

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
    return ledger.balance(ledger.account_id(ledger.USER_WALLET, user_id))


def meter(consultation: Consultation, at: datetime, wallet_paise: int | None = None) -> Meter:
    """The live bill at `at`: pure arithmetic on the consultation's timestamps."""
    if wallet_paise is None:
        wallet_paise = wallet_balance(consultation.user_id)
    rate = consultation.rate_paise_per_minute
    stop = _billing_stop(consultation, at, wallet_paise)
    elapsed = billing.billable_seconds(consultation.started_at, stop, _paused(consultation))
    return Meter(
        session_id=consultation.id,
        elapsed_seconds=elapsed,
        cost_paise=billing.cost_paise(elapsed, rate),
        wallet_paise=wallet_paise,
        funded_seconds_left=max(0, billing.funded_seconds(wallet_paise, rate) - elapsed),
        paused=_paused_since(consultation) is not None,
        rate_paise_per_minute=rate,
        user_id=consultation.user_id,
    )


def bill_for(viewer, consultation_id, *, at: datetime) -> Meter:
    """The live bill of the given active consultation, or of the viewer's active one."""
    if consultation_id in (None, ""):
        consultation = active_for(viewer)
        if consultation is None:
            raise NotFound("No active session found")
        return meter(consultation, at)
    try:
        consultation = get_for_party(int(consultation_id), viewer)
    except (TypeError, ValueError):
        raise NotFound(SESSION_NOT_FOUND) from None
    if consultation.status != ACTIVE:
        raise NotFound("No active session found")
    return meter(consultation, at)


def _funded_until(c, wallet_paise: int) -> datetime:
    """When the wallet runs out for this consultation (an ORM object or a row)."""
    return billing.funded_until(c.started_at, _paused(c), wallet_paise, c.rate_paise_per_minute)


def _billing_stop(c, at: datetime, wallet_paise: int) -> datetime:
    """When billing stops if the consultation ends at `at`: never past a pause or the funds."""
    bounds = [at, _funded_until(c, wallet_paise)]
    if (since := _paused_since(c)) is not None:
        bounds.append(since)
    return max(c.started_at, min(bounds))


# ---------------------------------------------------------------- before billing


def _locked(consultation_id: int) -> Consultation | None:
    """Load a consultation for update (a row lock on PostgreSQL; SQLite holds the write lock)."""
    return db.session.get(
        Consultation, consultation_id, with_for_update={"of": Consultation}, populate_existing=True
    )


_table = Consultation.__table__
_users = User.__table__


def _row(consultation_id: int, *, for_update: bool = False):
    """One consultation as a plain row, with its astrologer's name: the lean paths' read."""
    query = (
        select(_table, _users.c.display_name.label("astrologer_name"))
        .join_from(_table, _users, _users.c.id == _table.c.astrologer_id)
        .where(_table.c.id == consultation_id)
    )
    if for_update:
        query = query.with_for_update(of=_table)
    return db.session.execute(query).one_or_none()


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
        consultation.funded_until = _funded_until(
            consultation, wallet_balance(consultation.user_id)
        )

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
    reason: str | None,
    at: datetime,
    hub: Hub,
    policy: Policy,
    actor_id: int | None = None,
    as_party: bool = False,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> EndOutcome:
    """End a consultation and settle it, exactly once, whoever asks and however often.

    Billing stops at `at`, or earlier where the funds ran out or a party went away.
    A consultation already ended is not charged again: the settled figures come back
    with `already_ended`. Both parties hear `consult:ended` only from the call that won.
    With `as_party`, the actor must be one of its parties (anyone else finds nothing) and
    the reason follows from their side.
    """
    if not as_party and reason not in END_REASONS:
        raise ValueError(f"unknown end reason {reason!r}")
    try:
        with write_transaction():
            # The row lock comes first: concurrent retries with one key queue behind it and
            # then find the first one's answer.
            row = _locked_row(consultation_id)
            if row is None:
                raise NotFound(SESSION_NOT_FOUND)
            if as_party:
                reason = _reason_of_party(row, actor_id)
            if actor_id:
                replayed = idempotency.replay(actor_id, idempotency_key, fingerprint)
                if replayed is not None:
                    return _replayed(replayed)
            if row.status == ENDED:
                outcome = EndOutcome(Ended.of(row), already_ended=True)
            elif row.status != ACTIVE:
                raise Conflict(NOT_ACTIVE)
            else:
                outcome = _settle(row, reason, at, policy, actor_id, request_id)
            if actor_id:  # a retry with this key replays this answer, whatever happens next
                idempotency.remember(
                    actor_id, idempotency_key, fingerprint, outcome.answer_for(actor_id), at
                )
    except (IntegrityError, _LostRace):
        # Defence in depth: should a second writer ever get past the lock, the
        # compare-and-set or the unique settlement constraint stops it, and its
        # transaction rolls back whole.
        return EndOutcome(Ended.of(_row(consultation_id)), already_ended=True)
    if not outcome.already_ended:
        for user_ids, event in _end_events(outcome.consultation):
            hub.publish(user_ids, event)
    return outcome


def _locked_row(consultation_id: int):
    return _row(consultation_id, for_update=True)


def _reason_of_party(row, actor_id) -> str:
    """The user ends with `user_requested`, the astrologer with `astrologer_ended`."""
    if actor_id == row.user_id:
        return USER_REQUESTED
    if actor_id == row.astrologer_id:
        return ASTROLOGER_ENDED
    raise NotFound(SESSION_NOT_FOUND)  # an admin is not a party


def _replayed(answer: dict) -> EndOutcome:
    return EndOutcome(Ended.of(_row(answer["sessionId"])), already_ended=answer["alreadyEnded"])


class _LostRace(Exception):
    """The compare-and-set from active to ended found the consultation no longer active."""


def _settle(row, reason, at, policy, actor_id, request_id) -> EndOutcome:
    """The one settlement: compare-and-set, cost, ledger transfer and audit, in one transaction.

    Seven statements: the locked row (read by the caller), the locked wallet, the
    compare-and-set, the transfer, its entries, the balances, the audit record.
    """
    wallet = ledger.account_id(ledger.USER_WALLET, row.user_id)
    # Locked: nothing moves the wallet between this read and the settlement's commit, so
    # the balance after is this one less the cost.
    wallet_paise = db.session.scalar(
        select(ledger.Account.balance_paise).where(ledger.Account.id == wallet).with_for_update()
    )
    stop = _billing_stop(row, at, wallet_paise)
    seconds = billing.billable_seconds(row.started_at, stop, _paused(row))
    cost = billing.cost_paise(seconds, row.rate_paise_per_minute)
    ended = Ended(
        id=row.id,
        user_id=row.user_id,
        astrologer_id=row.astrologer_id,
        end_reason=reason,
        ended_at=stop,
        billed_seconds=seconds,
        total_cost_paise=cost,
        balance_after_paise=wallet_paise - cost,
    )
    won = db.session.execute(
        update(Consultation)
        .where(Consultation.id == row.id, Consultation.status == ACTIVE)
        .values(
            status=ENDED,
            ended_at=stop,
            end_reason=reason,
            ended_by_id=actor_id,
            billed_seconds=seconds,
            total_cost_paise=cost,
            balance_after_paise=ended.balance_after_paise,
            funded_until=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        raise _LostRace()
    commission = billing.commission_paise(cost, policy.commission_percent)
    ledger.post_transfer(
        "settlement",
        [
            ledger.Move(
                wallet,
                ledger.account_id(ledger.ASTROLOGER_EARNINGS, row.astrologer_id),
                cost - commission,
            ),
            ledger.Move(wallet, ledger.account_id(ledger.PLATFORM_REVENUE), commission),
        ],
        at=at,
        memo=f"Consultation #{row.id} with {row.astrologer_name}",
        consultation_id=row.id,
    )
    audit.record(
        row.id,
        "ended",
        at=at,
        actor_id=actor_id,
        reason=reason,
        cost_paise=cost,
        request_id=request_id,
        detail=f"billed {seconds}s, stopped at {iso(stop)}",
    )
    return EndOutcome(ended, already_ended=False)


def _end_events(ended: Ended) -> list[tuple[tuple[int, ...], Event]]:
    parties = (ended.user_id, ended.astrologer_id)
    events = [
        (
            parties,
            Event(
                "consult:ended",
                {
                    "sessionId": ended.id,
                    "reason": ended.end_reason,
                    "timestamp": iso(ended.ended_at),
                    "durationSeconds": ended.billed_seconds,
                    "totalCostPaise": ended.total_cost_paise,
                },
            ),
        )
    ]
    if ended.end_reason == USER_REQUESTED:
        events.append(
            (
                (ended.astrologer_id,),
                Event(
                    "session:ended-by-user",
                    {"sessionId": ended.id, "userId": ended.user_id, "reason": USER_REQUESTED},
                ),
            )
        )
    return events


def end_by_party(
    caller,
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
    `caller` is anything with the user's `id` (a User, or a socket's cached identity).
    """
    if not isinstance(consultation_id, int) or isinstance(consultation_id, bool):
        raise NotFound(SESSION_NOT_FOUND)
    return end_session(
        consultation_id,
        reason=None,
        as_party=True,
        at=at,
        hub=hub,
        policy=policy,
        actor_id=caller.id,
        request_id=request_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )


def end_for_caller(
    caller,
    consultation_id=None,
    *,
    at: datetime,
    hub: Hub,
    policy: Policy,
    request_id=None,
    idempotency_key=None,
    fingerprint="",
) -> EndOutcome:
    """End the given session, or the caller's active one: what every End button and frame does.

    Without an id and with no active session, a retry of an end that already happened
    replays its answer, and anything else is NotFound.
    """
    key = idempotency.check_key(idempotency_key)
    if consultation_id is None:
        consultation_id = active_id_for(caller)
        if consultation_id is None:
            replay = idempotency.replay(caller.id, key, fingerprint)
            if replay is not None:
                return _replayed(replay)
            raise NotFound("No active session found to end")
    return end_by_party(
        caller,
        consultation_id,
        at=at,
        hub=hub,
        policy=policy,
        request_id=request_id,
        idempotency_key=key,
        fingerprint=fingerprint,
    )


def active_id_for(caller) -> int | None:
    """The id of the caller's active consultation (an astrologer's latest accepted)."""
    column = _table.c.astrologer_id if caller.role == "astrologer" else _table.c.user_id
    return db.session.scalar(
        select(_table.c.id)
        .where(column == caller.id, _table.c.status == ACTIVE)
        .order_by(_table.c.started_at.desc(), _table.c.id.desc())
        .limit(1)
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
                # The pause moved the funded end out by its length.
                consultation.funded_until = _funded_until(
                    consultation, wallet_balance(consultation.user_id)
                )
            audit.record(consultation.id, "resumed", at=at, actor_id=user_id, detail=column)
            resumed.append(consultation)
    _publish_billing(resumed, hub)
    return [c.id for c in resumed]


def reconcile_presence(*, hub: Hub) -> list[int]:
    """Pause sessions whose party vanished without a goodbye (say, with a crashed instance).

    Detaching a socket pauses billing at once; this catches the sockets nobody detached.
    It reads only the parties of sessions not yet paused, and asks the hub about them all
    in one go.
    """
    present = db.session.execute(
        select(_table.c.id, _table.c.user_id, _table.c.astrologer_id).where(
            _table.c.status == ACTIVE,
            or_(_table.c.user_left_at.is_(None), _table.c.astrologer_left_at.is_(None)),
        )
    ).all()
    gone = hub.gone_among({p for r in present for p in (r.user_id, r.astrologer_id)})
    suspects = [r.id for r in present if r.user_id in gone or r.astrologer_id in gone]
    if not suspects:
        db.session.rollback()
        return []
    paused = []
    with write_transaction():
        for consultation in db.session.scalars(
            select(Consultation)
            .where(Consultation.id.in_(suspects), Consultation.status == ACTIVE)
            .with_for_update(of=Consultation)
        ):
            for party, column in (
                (consultation.user_id, "user_left_at"),
                (consultation.astrologer_id, "astrologer_left_at"),
            ):
                since = gone.get(party)
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


def refresh_funded_until(user_id: int) -> None:
    """Bring the due time of the user's active consultation up to date with their wallet."""
    with write_transaction():
        row = db.session.execute(
            select(_table)
            .where(_table.c.user_id == user_id, _table.c.status == ACTIVE)
            .with_for_update(of=_table)
        ).one_or_none()
        if row is not None:
            _set_funded_until(row, wallet_balance(user_id))


def _set_funded_until(row, wallet_paise: int) -> datetime:
    funded = _funded_until(row, wallet_paise)
    if funded != row.funded_until:
        db.session.execute(update(_table).where(_table.c.id == row.id).values(funded_until=funded))
    return funded


def rebuild_due_times() -> int:
    """Fill in the due time of every active consultation without one (say, after an upgrade)."""
    with write_transaction():
        rows = db.session.execute(
            select(_table).where(_table.c.status == ACTIVE, _table.c.funded_until.is_(None))
        ).all()
        for row in rows:
            _set_funded_until(row, wallet_balance(row.user_id))
    return len(rows)


_DUE_COLUMNS = (
    _table.c.id,
    _table.c.user_id,
    _table.c.started_at,
    _table.c.paused_micros,
    _table.c.rate_paise_per_minute,
    _table.c.funded_until,
    _table.c.user_left_at,
    _table.c.astrologer_left_at,
)


def _due_query(now: datetime, cutoff: datetime):
    """One range of each (status, due time) index: a union, which every planner serves by index."""
    active = _table.c.status == ACTIVE
    return union_all(
        select(*_DUE_COLUMNS).where(active, _table.c.funded_until <= now),
        select(*_DUE_COLUMNS).where(active, _table.c.user_left_at <= cutoff),
        select(*_DUE_COLUMNS).where(active, _table.c.astrologer_left_at <= cutoff),
    )


def due_ends(*, now: datetime, policy: Policy) -> list[tuple[int, str]]:
    """Active consultations that must end now, with the reason: funds out or a party gone.

    Found through the (status, due time) indexes, so a tick costs what is due, not
    what is live. A funded end is checked against the ledger first (the stored time can
    be early, never late); one that is not due after all gets its time corrected.
    """
    grace = timedelta(seconds=policy.disconnect_grace_seconds)
    cutoff = now - grace
    rows = db.session.execute(_due_query(now, cutoff)).all()
    due, stale = [], []
    for row in {row.id: row for row in rows}.values():  # one due twice (funds and grace)
        candidates = []
        since = _paused_since(row)
        if row.funded_until is not None and (since is None or row.funded_until <= since):
            candidates.append((row.funded_until, INSUFFICIENT_BALANCE))
        if row.user_left_at is not None:
            candidates.append((row.user_left_at + grace, USER_DISCONNECTED))
        if row.astrologer_left_at is not None:
            candidates.append((row.astrologer_left_at + grace, ASTROLOGER_DISCONNECTED))
        when, reason = min(candidates)
        if when > now:
            continue
        if reason == INSUFFICIENT_BALANCE:
            wallet_paise = wallet_balance(row.user_id)
            if _funded_until(row, wallet_paise) > now:
                stale.append((row, wallet_paise))
                continue
        due.append((row.id, reason))
    if stale:
        with write_transaction():
            for row, wallet_paise in stale:
                _set_funded_until(row, wallet_paise)
    return due


def low_balance(*, now: datetime, policy: Policy) -> list[tuple[Consultation, Meter]]:
    """Running consultations whose funds last less than the warning time, not yet warned.

    Found through the funded-end index; `mark_warned` records the warning, and a recharge
    (which moves the funded end) re-arms it.
    """
    window = now + timedelta(seconds=policy.low_balance_warning_seconds + 1)
    result = []
    for consultation in db.session.scalars(
        select(Consultation).where(
            Consultation.status == ACTIVE,
            Consultation.funded_until <= window,
            Consultation.user_left_at.is_(None),
            Consultation.astrologer_left_at.is_(None),
            or_(
                Consultation.warned_for.is_(None),
                Consultation.warned_for != Consultation.funded_until,
            ),
        )
    ):
        reading = meter(consultation, now)
        if 0 < reading.funded_seconds_left <= policy.low_balance_warning_seconds:
            result.append((consultation, reading))
    return result


def mark_warned(consultation_ids: list[int]) -> None:
    """Remember that these consultations were warned of their current funded end."""
    with write_transaction():
        db.session.execute(
            update(_table)
            .where(_table.c.id.in_(consultation_ids))
            .values(warned_for=_table.c.funded_until)
        )


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
