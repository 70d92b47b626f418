"""Presence: billing pauses while a party is away and resumes, gap unbilled, when both are back."""

from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select

from .. import audit
from ..db import db, write_transaction
from ..realtime import Event, Hub
from . import live
from .meter import funded_until_of, wallet_balance
from .model import ACTIVE, Consultation, table

# Whether a party is in any active consultation: one indexed read, no lock.
_IN_A_LIVE_SESSION = (
    select(table.c.id)
    .where(
        table.c.status == ACTIVE,
        or_(table.c.user_id == bindparam("party"), table.c.astrologer_id == bindparam("party")),
    )
    .limit(1)
)


def _in_a_live_session(user_id: int) -> bool:
    """Most sockets come and go with no live session (a page, the astrologer list): they
    need no write transaction, no write lock and no fsync. A session that turns active
    meanwhile is covered elsewhere: the accept re-checks presence after its commit, and the
    scheduler pauses a party the hub knows is gone, from when it went."""
    return db.session.execute(_IN_A_LIVE_SESSION, {"party": user_id}).first() is not None


def party_left(user_id: int, *, at: datetime, hub: Hub) -> list[int]:
    """A party's last connection dropped: pause billing of their active consultations."""
    if not _in_a_live_session(user_id):
        return []
    paused = []
    with write_transaction():
        for consultation, column in _presence_changes(user_id, away=True):
            setattr(consultation, column, at)
            audit.record(consultation.id, "paused", at=at, actor_id=user_id, detail=column)
            paused.append(consultation)
    _publish_billing(paused, hub)
    return [c.id for c in paused]


def party_returned(user_id: int, *, at: datetime, hub: Hub) -> list[int]:
    """A party is back: once both are present, billing resumes and the gap is not billed."""
    if not _in_a_live_session(user_id):
        return []
    resumed = []
    with write_transaction():
        for consultation, column in _presence_changes(user_id, away=False):
            since = consultation.paused_since
            setattr(consultation, column, None)
            if consultation.paused_since is None:
                gap = at - since
                consultation.paused_micros += max(0, gap // timedelta(microseconds=1))
                # The pause moved the funded end out by its length.
                consultation.funded_until = funded_until_of(
                    consultation, wallet_balance(consultation.user_id)
                )
            audit.record(consultation.id, "resumed", at=at, actor_id=user_id, detail=column)
            resumed.append(consultation)
    _publish_billing(resumed, hub)
    return [c.id for c in resumed]


def pause_vanished_parties(*, hub: Hub) -> list[int]:
    """Pause sessions whose party vanished without a goodbye (say, with a crashed instance).

    Detaching a socket pauses billing at once; this catches the sockets nobody detached.
    It reads only the parties of sessions not yet paused, and asks the hub about them all
    in one go.
    """
    present = db.session.execute(
        select(table.c.id, table.c.user_id, table.c.astrologer_id).where(
            table.c.status == ACTIVE,
            or_(table.c.user_left_at.is_(None), table.c.astrologer_left_at.is_(None)),
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
            for party, column in consultation.presence_columns():
                since = gone.get(party)
                if getattr(consultation, column) is None and since is not None:
                    at = max(since, consultation.started_at)
                    setattr(consultation, column, at)
                    audit.record(consultation.id, "paused", at=at, actor_id=party, detail=column)
                    paused.append(consultation)
    _publish_billing(paused, hub)
    return [c.id for c in paused]


def _presence_changes(user_id: int, *, away: bool) -> Iterator[tuple[Consultation, str]]:
    """The party's active consultations (locked) where it is not yet marked as `away` is
    (where leaving, or returning, changes something), each with the column of the mark."""
    for consultation in _active_of_party(user_id):
        column = consultation.presence_column(user_id)
        if (getattr(consultation, column) is not None) != away:
            yield consultation, column


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
        hub.publish(consultation.parties, Event("billing:updated", {"sessionId": consultation.id}))
    live.changed(hub, [c.id for c in consultations])
