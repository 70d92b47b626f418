"""Presence: billing pauses while a party is away and resumes, gap unbilled, when both are back."""

from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from .. import audit
from ..db import db, write_transaction
from ..realtime import Event, Hub
from . import live
from .meter import funded_until_of, wallet_balance
from .model import ACTIVE, Consultation, table


def party_left(user_id: int, *, at: datetime, hub: Hub) -> list[int]:
    """A party's last connection dropped: pause billing of their active consultations."""
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
