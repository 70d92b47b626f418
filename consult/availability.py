"""Whether an astrologer takes requests: Online, Busy or Offline, and at most N chats at once."""

from . import wire
from .accounts import User
from .db import write_transaction
from .errors import Forbidden, Invalid
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
    if cap is not None and (
        not isinstance(cap, int) or isinstance(cap, bool) or not 0 < cap <= MAX_SESSIONS
    ):
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
    hub.broadcast(
        Event("presence:changed", {"userId": astrologer.id, **wire.availability(astrologer)}),
        topic="presence",
    )
    return astrologer


def effective(astrologer: User, active_sessions: int) -> str:
    """What users see: an astrologer at their chat limit shows as busy."""
    if astrologer.availability == ONLINE and (
        astrologer.max_sessions is not None and active_sessions >= astrologer.max_sessions
    ):
        return BUSY
    return astrologer.availability
