"""Reading consultations as their parties (and admins) may see them."""

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from ..accounts import User
from ..db import db
from ..errors import NotFound
from ..numbers import is_id
from .model import ACTIVE, ENDED, LIVE, SESSION_NOT_FOUND, Consultation, table


def get_for_party(consultation_id, viewer: User) -> Consultation:
    """Return the consultation if the viewer is a party (or an admin); others see NotFound."""
    if not is_id(consultation_id):
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


def active_id_for(caller) -> int | None:
    """The id of the caller's active consultation (an astrologer's latest accepted)."""
    column = table.c.astrologer_id if caller.role == "astrologer" else table.c.user_id
    return db.session.scalar(
        select(table.c.id)
        .where(column == caller.id, table.c.status == ACTIVE)
        .order_by(table.c.started_at.desc(), table.c.id.desc())
        .limit(1)
    )


def active_counts(astrologer_ids) -> dict[int, int]:
    """How many chats each astrologer is in now (absent: none)."""
    return dict(
        db.session.execute(
            select(Consultation.astrologer_id, func.count())
            .where(
                Consultation.astrologer_id.in_(list(astrologer_ids)), Consultation.status == ACTIVE
            )
            .group_by(Consultation.astrologer_id)
        ).all()
    )


def active_count() -> int:
    """How many consultations are active now: one COUNT on the status index."""
    return db.session.scalar(select(func.count()).where(table.c.status == ACTIVE))


def everyone(status: str | None = None, limit: int = 200) -> list[Consultation]:
    """For operators: everyone's consultations, newest first."""
    query = select(Consultation).order_by(Consultation.id.desc()).limit(limit)
    if status:
        query = query.where(Consultation.status == status)
    return list(db.session.scalars(query))
