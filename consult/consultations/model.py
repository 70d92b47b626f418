"""The consultation record: its states, end reasons and table, and the pause arithmetic.

Lifecycle: requested -> active -> ended, or requested -> declined | cancelled | expired.
"""

from datetime import datetime, timedelta

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, bindparam, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts import User
from ..db import UTCDateTime, db, status_is
from ..statements import Statement

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
SPEND_CAP = "spend_cap"  # the user's "spend at most" was reached
SCHEDULED_END = "scheduled_end"  # the user's "end after N minutes" came
ADMIN_ENDED = "admin_ended"
END_REASONS = (
    USER_REQUESTED,
    INSUFFICIENT_BALANCE,
    USER_DISCONNECTED,
    ASTROLOGER_ENDED,
    ASTROLOGER_DISCONNECTED,
    SYSTEM_ERROR,
    SPEND_CAP,
    SCHEDULED_END,
    ADMIN_ENDED,
)
# What will end a running session if nothing else does first (`billing:status` "endsBy").
BY_BALANCE = "balance"

SESSION_NOT_FOUND = "Session not found"
NOT_ACTIVE = "Session is not active"
NOT_WAITING = "Session is no longer waiting for an answer"
_live_filter = text("status IN ('requested', 'active')")
# Due times that most active sessions never have.
DUE_ONLY_SOMETIMES = ("user_left_at", "astrologer_left_at", "ends_at")


def _active_with(column: str):
    return text(f"status = '{ACTIVE}' AND {column} IS NOT NULL")


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
        # Every active session has a funded end; only one someone left, or with an end
        # scheduled, has the others, so those indexes hold just them (partial): an end of a
        # session nobody left writes none of their pages (each is a WAL page per commit).
        Index("ix_consultations_status_funded_until", "status", "funded_until"),
        *(
            Index(
                f"ix_consultations_active_{column}",
                "status",  # so the planner never prefers the plain status index to it
                column,
                sqlite_where=_active_with(column),
                postgresql_where=_active_with(column),
            )
            for column in DUE_ONLY_SOMETIMES
        ),
        # Operators' analytics read ended sessions by day ranges.
        Index("ix_consultations_status_ended_at", "status", "ended_at"),
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
    # The user's own limits (None: none). The spend cap bounds the funds, so it moves
    # `funded_until`; the time limit is a due time of its own, `ends_at`.
    max_minutes: Mapped[int | None]
    max_spend_paise: Mapped[int | None]
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refunded_paise: Mapped[int] = mapped_column(default=0, server_default="0")

    user = relationship(User, foreign_keys=[user_id], lazy="joined")
    astrologer = relationship(User, foreign_keys=[astrologer_id], lazy="joined")

    @property
    def paused(self) -> timedelta:
        return paused_of(self)

    @property
    def paused_since(self) -> datetime | None:
        return paused_since_of(self)

    is_requested = status_is(REQUESTED)
    is_active = status_is(ACTIVE)
    is_ended = status_is(ENDED)

    @property
    def parties(self) -> tuple[int, int]:
        return (self.user_id, self.astrologer_id)

    def presence_columns(self) -> tuple[tuple[int, str], tuple[int, str]]:
        """Each party with the column that marks since when they are away."""
        return ((self.user_id, "user_left_at"), (self.astrologer_id, "astrologer_left_at"))

    def presence_column(self, user_id: int) -> str:
        return "user_left_at" if user_id == self.user_id else "astrologer_left_at"

    def party_role(self, user_id: int) -> str | None:
        if user_id == self.user_id:
            return "user"
        if user_id == self.astrologer_id:
            return "astrologer"
        return None


def paused_of(c) -> timedelta:
    """Completed pauses of a consultation (an ORM object or a row with its columns)."""
    return timedelta(microseconds=c.paused_micros)


def paused_since_of(c) -> datetime | None:
    """When the pause in progress began: the earlier party to leave; None when both are here."""
    marks = [m for m in (c.user_left_at, c.astrologer_left_at) if m is not None]
    return min(marks) if marks else None


# The Core tables, for the lean paths (settlement, due times) that read rows, not objects.
table = Consultation.__table__
users = User.__table__


def locked(consultation_id: int) -> Consultation | None:
    """Load a consultation for update (a row lock on PostgreSQL; SQLite holds the write lock)."""
    return db.session.get(
        Consultation, consultation_id, with_for_update={"of": Consultation}, populate_existing=True
    )


def row_query(*, for_update: bool = False, extra=(), join=None) -> Statement:
    """The lean paths' read of one consultation (`:consultation_id`) as a plain row, with its
    astrologer's name; built once by each caller and run on the driver's cursor.

    `join` is another (table, on clause) the row needs, for the `extra` columns; with
    `for_update` its row is locked too.
    """
    query = (
        select(
            table,
            users.c.display_name.label("astrologer_name"),
            users.c.max_sessions.label("astrologer_max_sessions"),
            *extra,
        )
        .join_from(table, users, users.c.id == table.c.astrologer_id)
        .where(table.c.id == bindparam("consultation_id"))
    )
    locked_tables = [table]
    if join is not None:
        query = query.join(*join)
        locked_tables.append(join[0])
    return Statement(query.with_for_update(of=locked_tables) if for_update else query)


_ROW = row_query()


def session_row(consultation_id: int, query=_ROW):
    """One consultation as a plain row (through `query`, a `row_query`), or None."""
    return query.run({"consultation_id": consultation_id}).one_or_none()
