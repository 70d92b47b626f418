"""What the session panel and the astrologer dashboard show: one context, every renderer."""

from .. import chat, consultations, ledger
from ..accounts import User
from ..clock import utcnow
from ..consultations import Consultation
from ..money import rupees
from .common import services

USER_WORDS = {
    consultations.USER_REQUESTED: "You ended the session.",
    consultations.INSUFFICIENT_BALANCE: "Your balance ran out, so the session ended.",
    consultations.USER_DISCONNECTED: "The session ended because you were disconnected too long. "
    "You were charged only up to the moment the connection dropped.",
    consultations.ASTROLOGER_ENDED: "The astrologer ended the session.",
    consultations.ASTROLOGER_DISCONNECTED: "The astrologer lost their connection, so the session "
    "ended. You were not charged for the time after that.",
    consultations.SYSTEM_ERROR: "The session ended because of a technical problem on our side. "
    "You were charged only up to the last moment it was working.",
}
ASTROLOGER_WORDS = {
    consultations.USER_REQUESTED: "The user ended the session.",
    consultations.INSUFFICIENT_BALANCE: "The session ended: the user's balance ran out.",
    consultations.USER_DISCONNECTED: "The user disconnected and did not come back in time.",
    consultations.ASTROLOGER_ENDED: "You ended the session.",
    consultations.ASTROLOGER_DISCONNECTED: "The session ended because your connection dropped.",
    consultations.SYSTEM_ERROR: "The session ended because of a technical problem.",
}
# The reason in a few plain words, for the receipt (its code stays beside it, for support).
REASON_LABELS = {
    consultations.USER_REQUESTED: "Ended by the user",
    consultations.INSUFFICIENT_BALANCE: "The balance ran out",
    consultations.USER_DISCONNECTED: "The user's connection dropped",
    consultations.ASTROLOGER_ENDED: "Ended by the astrologer",
    consultations.ASTROLOGER_DISCONNECTED: "The astrologer's connection dropped",
    consultations.SYSTEM_ERROR: "A technical problem on our side",
}
STATUS_WORDS = {
    consultations.DECLINED: "The astrologer declined this request. You were not charged.",
    consultations.CANCELLED: "This request was cancelled. Nothing was charged.",
    consultations.EXPIRED: "Nobody answered this request in time. Nothing was charged.",
}


def end_message(consultation: Consultation, role: str) -> str | None:
    if consultation.status != consultations.ENDED:
        return STATUS_WORDS.get(consultation.status)
    words = ASTROLOGER_WORDS if role == "astrologer" else USER_WORDS
    text = words.get(consultation.end_reason, "The session ended.")
    if role == "astrologer":
        text += f" Billed {rupees(consultation.total_cost_paise)}."
    else:
        text += f" Charged {rupees(consultation.total_cost_paise)}."
    return text


def panel_context(viewer: User, consultation: Consultation) -> dict:
    role = consultation.party_role(viewer.id) or "admin"
    context = {
        "viewer": viewer,
        "consultation": consultation,
        "role": role,
        "messages": chat.history(consultation.id),
        "end_message": end_message(consultation, role),
        "reason_label": REASON_LABELS.get(consultation.end_reason),
        "meter": None,
        "policy": services().policy,
    }
    if consultation.status == consultations.ACTIVE:
        context["meter"] = consultations.meter(consultation, utcnow())
    return context


def dashboard_context(astrologer: User) -> dict:
    return {
        "viewer": astrologer,
        "requests": consultations.list_for(astrologer, consultations.REQUESTED),
        "live": [panel_context(astrologer, c) for c in consultations.on_desk(astrologer, utcnow())],
        "earnings": ledger.balance(ledger.earnings_of(astrologer.id)),
    }
