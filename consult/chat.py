"""Chat messages of a consultation: only its parties write, and only while it is active."""

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ForeignKey, String, bindparam, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from . import consultations, statements, wire
from .db import UTCDateTime, db
from .errors import Conflict, Invalid, NotFound
from .numbers import is_id
from .realtime import Event, Hub
from .statements import Statement

MAX_TEXT = 2000


class Message(db.Model):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"), index=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(String(MAX_TEXT))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


def check_text(text) -> str:
    if not isinstance(text, str) or not text.strip():
        raise Invalid("Message text must be 1 to 2000 characters")
    if len(text) > MAX_TEXT:
        raise Invalid("Message text must be 1 to 2000 characters")
    return text


def history(consultation_id: int) -> list[Message]:
    return list(
        db.session.scalars(
            select(Message).where(Message.consultation_id == consultation_id).order_by(Message.id)
        )
    )


class Posted(NamedTuple):
    """A message just posted, as its event and its answer show it (no ORM object to build)."""

    id: int
    consultation_id: int
    sender_id: int
    text: str
    sent_at: datetime


# A chat message is the busiest write there is: both run on the driver's cursor, in a lean
# transaction.
_consultations, _messages = consultations.Consultation.__table__, Message.__table__
_PARTIES = Statement(
    select(_consultations.c.user_id, _consultations.c.astrologer_id, _consultations.c.status).where(
        _consultations.c.id == bindparam("id")
    )
)
_INSERT = Statement(insert(_messages).returning(_messages.c.id))


def post_message(sender, consultation_id, text, *, at: datetime, hub: Hub) -> Posted:
    """Post a message to a consultation the sender is a party of, while it is active.

    `sender` is anything with the user's `id` (read before the transaction, which ends the
    session's). Two statements: the consultation's parties and status, and the insert.
    """
    if not is_id(consultation_id):
        raise NotFound(consultations.SESSION_NOT_FOUND)
    sender_id = sender.id
    with statements.transaction():
        row = _PARTIES.run({"id": consultation_id}).one_or_none()
        if row is None or sender_id not in (row.user_id, row.astrologer_id):
            raise NotFound(consultations.SESSION_NOT_FOUND)
        text = check_text(text)
        if row.status == consultations.REQUESTED:
            raise Conflict(consultations.NOT_ACTIVE)
        if row.status != consultations.ACTIVE:
            raise Conflict("Session has ended")
        values = dict(consultation_id=consultation_id, sender_id=sender_id, text=text, sent_at=at)
        message_id = _INSERT.run(values).scalar_one()
    message = Posted(message_id, **values)
    hub.publish(
        (row.user_id, row.astrologer_id),
        Event("chat:message", {"sessionId": consultation_id, **wire.message(message)}),
    )
    return message
