"""The append-only audit trail of everything that happens to a consultation, and of what
admins do to people (an event about a person names them as its `subject_id`)."""

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, event, insert, select, text
from sqlalchemy.orm import Mapped, mapped_column

from .db import UTCDateTime, db
from .statements import Statement


class SessionEvent(db.Model):
    __tablename__ = "session_events"
    # The audit search's indexes (migration b4e7d2a9c1f3): every filter it offers is one.
    __table_args__ = (
        CheckConstraint(
            "consultation_id IS NOT NULL OR subject_id IS NOT NULL", name="about_something"
        ),
        Index("ix_session_events_kind_id", "kind", "id"),
        Index("ix_session_events_reason_id", "reason", "id"),
        # Only events about a person have one: a session's events never write this index.
        Index(
            "ix_session_events_subject_id",
            "subject_id",
            sqlite_where=text("subject_id IS NOT NULL"),
            postgresql_where=text("subject_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None for an event about a person alone (an admin suspending them, changing a rate).
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultations.id"), index=True)
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)  # None: system
    reason: Mapped[str | None] = mapped_column(String(32))
    cost_paise: Mapped[int | None]
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    detail: Mapped[str | None] = mapped_column(String(200))
    # Money events (an end, a refund): the key a client retried with, and the user's wallet
    # either side of the movement, so the trail alone tells what a retry or a refund did.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    wallet_before_paise: Mapped[int | None]
    wallet_after_paise: Mapped[int | None]


@event.listens_for(SessionEvent, "before_update")
@event.listens_for(SessionEvent, "before_delete")
def _append_only(_mapper, _connection, target):
    raise RuntimeError(f"session event {target.id} is append-only")


# On the hot paths: run on the driver's cursor (statements.py).
_INSERT = Statement(insert(SessionEvent.__table__))


def record(
    consultation_id: int | None,
    kind: str,
    *,
    at: datetime,
    actor_id: int | None = None,
    reason: str | None = None,
    cost_paise: int | None = None,
    request_id: str | None = None,
    detail: str | None = None,
    subject_id: int | None = None,
    idempotency_key: str | None = None,
    wallet: tuple[int, int] | None = None,
) -> None:
    """Append an event in the caller's transaction (one INSERT, no unit-of-work flush)."""
    _INSERT.run(
        {
            "consultation_id": consultation_id,
            "subject_id": subject_id,
            "kind": kind,
            "actor_id": actor_id,
            "reason": reason,
            "cost_paise": cost_paise,
            "request_id": (request_id or None) and request_id[:64],
            "at": at,
            "detail": detail,
            "idempotency_key": idempotency_key,
            "wallet_before_paise": wallet and wallet[0],
            "wallet_after_paise": wallet and wallet[1],
        },
    )


def trail(consultation_id: int) -> list[SessionEvent]:
    return list(
        db.session.scalars(
            select(SessionEvent)
            .where(SessionEvent.consultation_id == consultation_id)
            .order_by(SessionEvent.id)
        )
    )


def recent(limit: int = 50, kind: str | None = None) -> list[SessionEvent]:
    query = select(SessionEvent).order_by(SessionEvent.id.desc()).limit(limit)
    if kind:
        query = query.where(SessionEvent.kind == kind)
    return list(db.session.scalars(query))
