"""Chat messages of a consultation: only its parties write, and only while it is active."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column

from . import consultations
from .accounts import User
from .clock import iso
from .db import UTCDateTime, db, write_transaction
from .errors import Conflict, Invalid, NotFound
from .realtime import Event, Hub

MAX_TEXT = 2000


class Message(db.Model):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"), index=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(String(MAX_TEXT))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def to_api(self) -> dict:
        return {
            "id": self.id,
            "senderId": self.sender_id,
            "text": self.text,
            "sentAt": iso(self.sent_at),
        }


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


def post_message(sender: User, consultation_id, text, *, at: datetime, hub: Hub) -> Message:
    """Post a message to a consultation the sender is a party of, while it is active."""
    consultation = consultations.get_for_party(consultation_id, sender)
    if consultation.party_role(sender.id) is None:
        raise NotFound(consultations.SESSION_NOT_FOUND)
    text = check_text(text)
    with write_transaction():
        status = db.session.scalar(
            select(consultations.Consultation.status).where(
                consultations.Consultation.id == consultation.id
            )
        )
        if status == consultations.REQUESTED:
            raise Conflict(consultations.NOT_ACTIVE)
        if status != consultations.ACTIVE:
            raise Conflict("Session has ended")
        message = Message(
            consultation_id=consultation.id, sender_id=sender.id, text=text, sent_at=at
        )
        db.session.add(message)
    hub.publish(
        (consultation.user_id, consultation.astrologer_id),
        Event("chat:message", {"sessionId": consultation.id, **message.to_api()}),
    )
    return message
