"""Whether an astrologer takes requests: Online, Busy or Offline, and at most N chats at once."""

from sqlalchemy import func, select

from . import wire
from .accounts import User
from .db import db, write_transaction
from .errors import Forbidden, Invalid
from .numbers import is_whole
from .realtime import Event, Hub

ONLINE, BUSY, OFFLINE = "online", "busy", "offline"
STATUSES = (ONLINE, BUSY, OFFLINE)
MAX_SESSIONS = 20
NOT_AVAILABLE = "Astrologer is not available"


def parse(body: dict) -> tuple[str, int | None, bool]:
    """`{"status", "maxSessions"?}` → (status, max sessions, whether maxSessions was sent)."""
    status = body.get("status")
    if status not in STATUSES:
        raise Invalid("status must be one of online, busy, offline")
    cap = body.get("maxSessions")
    if cap is not None and (not is_whole(cap, 1, MAX_SESSIONS)):
        raise Invalid(f"maxSessions must be a whole number from 1 to {MAX_SESSIONS}, or null")
    return status, cap, "maxSessions" in body


def set_availability(
    astrologer: User, status: str, max_sessions: int | None, *, change_cap: bool, hub: Hub
) -> User:
    if not astrologer.is_astrologer:
        raise Forbidden("Only astrologers set their availability")
    with write_transaction():
        astrologer.availability = status
        if change_cap:
            astrologer.max_sessions = max_sessions
    announce(astrologer, hub)
    return astrologer


def announce(astrologer: User, hub: Hub) -> None:
    """Tell the astrologer lists what users now see of this astrologer (`presence:changed`):
    after a change of their setting, and when a session of a capped astrologer starts or ends."""
    payload = {
        "userId": astrologer.id,
        "online": hub.online(astrologer.id),
        "availability": effective(astrologer, active_sessions(astrologer.id)),
        **wire.availability(astrologer),
    }
    hub.broadcast(Event("presence:changed", payload), topic="presence")


def active_sessions(astrologer_id: int) -> int:
    """How many chats the astrologer is in now."""
    table = db.metadata.tables["consultations"]  # by name: the consultations package imports us
    return db.session.scalar(
        select(func.count())
        .select_from(table)
        .where(table.c.astrologer_id == astrologer_id, table.c.status == "active")
    )


def effective(astrologer: User, active_sessions: int) -> str:
    """What users see: an astrologer at their chat limit shows as busy; a suspended one
    takes no requests at all."""
    if astrologer.is_suspended:
        return OFFLINE
    if astrologer.availability == ONLINE and (
        astrologer.max_sessions is not None and active_sessions >= astrologer.max_sessions
    ):
        return BUSY
    return astrologer.availability
