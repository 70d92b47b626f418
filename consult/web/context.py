"""What the session panel and the astrologer dashboard show: one `Panel`, every renderer.

The session page, its fragments, the dashboard and the socket's pushes all render a session
from the `Panel` that `panel_for` builds, so they cannot disagree about what a viewer sees.
"""

from dataclasses import dataclass
from functools import cached_property

from .. import chat, consultations, feedback, ledger
from ..accounts import User
from ..clock import utcnow
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


@dataclass(frozen=True)
class Panel:
    """One session as one viewer sees it: a party (the user or the astrologer) or an admin."""

    viewer: User
    consultation: consultations.Consultation
    meter: consultations.Meter | None  # the live bill, while the session is active
    low_balance_warning_seconds: int

    @cached_property
    def messages(self) -> list[chat.Message]:
        """The chat so far, read only by the templates that show it (a bill push does not)."""
        return chat.history(self.consultation.id)

    @property
    def viewer_is_user(self) -> bool:
        """The viewer is the session's paying user: they see the balance and may recharge."""
        return self.viewer.id == self.consultation.user_id

    @property
    def viewer_is_astrologer(self) -> bool:
        return self.viewer.id == self.consultation.astrologer_id

    @property
    def viewer_is_party(self) -> bool:
        """A party may chat and end the session; anyone else (an admin) only looks."""
        return self.viewer_is_user or self.viewer_is_astrologer

    @property
    def other(self) -> User:
        """Whom the viewer is talking to (for an admin, the astrologer)."""
        c = self.consultation
        return c.user if self.viewer_is_astrologer else c.astrologer

    @property
    def balance_ran_out(self) -> bool:
        c = self.consultation
        return c.is_ended and c.end_reason == consultations.INSUFFICIENT_BALANCE

    @property
    def reason_label(self) -> str | None:
        return REASON_LABELS.get(self.consultation.end_reason)

    @property
    def end_message(self) -> str | None:
        """Why the session is over, in the viewer's words; None while it is live."""
        c = self.consultation
        if not c.is_ended:
            return STATUS_WORDS.get(c.status)
        if self.viewer_is_astrologer:
            text = ASTROLOGER_WORDS.get(c.end_reason, "The session ended.")
            return f"{text} Billed {rupees(c.total_cost_paise)}."
        text = USER_WORDS.get(c.end_reason, "The session ended.")
        return f"{text} Charged {rupees(c.total_cost_paise)}."


def panel_for(viewer: User, consultation: consultations.Consultation) -> Panel:
    """The session as `viewer` sees it now, its live bill read at this instant."""
    meter = consultations.meter(consultation, utcnow()) if consultation.is_active else None
    return Panel(
        viewer=viewer,
        consultation=consultation,
        meter=meter,
        low_balance_warning_seconds=services().policy.low_balance_warning_seconds,
    )


def dashboard_context(astrologer: User) -> dict:
    return {
        "viewer": astrologer,
        "requests": consultations.list_for(astrologer, consultations.REQUESTED),
        "live": [panel_for(astrologer, c) for c in consultations.on_desk(astrologer, utcnow())],
        "earnings": ledger.balance(ledger.earnings_of(astrologer.id)),
        # What users see of them: availability, and the ratings they were given.
        "availability": astrologer.availability,
        "max_sessions": astrologer.max_sessions,
        "rating": feedback.rating_summary([astrologer.id]).get(astrologer.id),
        "recent_ratings": feedback.recent_ratings(astrologer.id),
    }
