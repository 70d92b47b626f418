"""What the session panel and the astrologer dashboard show: one `Panel`, every renderer.

The session page, its fragments, the dashboard and the socket's pushes all render a session
from the `Panel` that `panel_for` builds, so they cannot disagree about what a viewer sees.
"""

from dataclasses import dataclass
from functools import cached_property

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from .. import audit, availability, chat, consultations, feedback, ledger
from ..accounts import User
from ..clock import utcnow
from ..consultations import refunds
from ..money import rupees
from .common import services

USER_WORDS = {
    consultations.USER_REQUESTED: _l("You ended the session."),
    consultations.INSUFFICIENT_BALANCE: _l("Your balance ran out, so the session ended."),
    consultations.USER_DISCONNECTED: _l(
        "The session ended because you were disconnected too long. "
        "You were charged only up to the moment the connection dropped."
    ),
    consultations.ASTROLOGER_ENDED: _l("The astrologer ended the session."),
    consultations.ASTROLOGER_DISCONNECTED: _l(
        "The astrologer lost their connection, so the session "
        "ended. You were not charged for the time after that."
    ),
    consultations.SYSTEM_ERROR: _l(
        "The session ended because of a technical problem on our side. "
        "You were charged only up to the last moment it was working."
    ),
    consultations.SPEND_CAP: _l("Your spend cap was reached, so the session ended."),
    consultations.SCHEDULED_END: _l("Your time limit was reached, so the session ended."),
    consultations.ADMIN_ENDED: _l("The session was ended by the platform."),
}
ASTROLOGER_WORDS = {
    consultations.USER_REQUESTED: _l("The user ended the session."),
    consultations.INSUFFICIENT_BALANCE: _l("The session ended: the user's balance ran out."),
    consultations.USER_DISCONNECTED: _l("The user disconnected and did not come back in time."),
    consultations.ASTROLOGER_ENDED: _l("You ended the session."),
    consultations.ASTROLOGER_DISCONNECTED: _l("The session ended because your connection dropped."),
    consultations.SYSTEM_ERROR: _l("The session ended because of a technical problem."),
    consultations.SPEND_CAP: _l("The session ended: the user's spend cap was reached."),
    consultations.SCHEDULED_END: _l("The session ended at the user's time limit."),
    consultations.ADMIN_ENDED: _l("The session was ended by the platform."),
}
# The reason in a few plain words, for the receipt (its code stays beside it, for support).
REASON_LABELS = {
    consultations.USER_REQUESTED: _l("Ended by the user"),
    consultations.INSUFFICIENT_BALANCE: _l("The balance ran out"),
    consultations.USER_DISCONNECTED: _l("The user's connection dropped"),
    consultations.ASTROLOGER_ENDED: _l("Ended by the astrologer"),
    consultations.ASTROLOGER_DISCONNECTED: _l("The astrologer's connection dropped"),
    consultations.SYSTEM_ERROR: _l("A technical problem on our side"),
    consultations.SPEND_CAP: _l("The user's spend cap was reached"),
    consultations.SCHEDULED_END: _l("The user's time limit was reached"),
    consultations.ADMIN_ENDED: _l("Ended by the platform"),
}
# What will end a running session, finishing "Ends in 4:10 …", for each side.
ENDS_BY_USER = {
    consultations.BY_BALANCE: _l("when your balance runs out"),
    consultations.SPEND_CAP: _l("at your spend cap"),
    consultations.SCHEDULED_END: _l("at your time limit"),
}
ENDS_BY_ASTROLOGER = {
    consultations.BY_BALANCE: _l("when the user's balance runs out"),
    consultations.SPEND_CAP: _l("at the user's spend cap"),
    consultations.SCHEDULED_END: _l("at the user's time limit"),
}
# Why money came back (the audit event's reason), for the receipt.
REFUND_WORDS = {
    refunds.EARLY_END: _l("The astrologer left within the first minute, so this session is free."),
    refunds.SILENT_ASTROLOGER: _l("The astrologer never answered, so this session is free."),
    refunds.REPORT: _l("Refunded after your report."),
    refunds.ADMIN: _l("Refunded by Consult support."),
}
ENDED = _l("The session ended.")
STATUS_WORDS = {
    consultations.DECLINED: _l("The astrologer declined this request. You were not charged."),
    consultations.CANCELLED: _l("This request was cancelled. Nothing was charged."),
    consultations.EXPIRED: _l("Nobody answered this request in time. Nothing was charged."),
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
    def ends_by(self) -> str | None:
        """What will end the running session, in the viewer's words."""
        if self.meter is None:
            return None
        words = ENDS_BY_ASTROLOGER if self.viewer_is_astrologer else ENDS_BY_USER
        return words[self.meter.ends_by]

    @property
    def shows_time_left(self) -> bool:
        """The user sees how long the session has left; the astrologer only when the user's
        own limit ends it (the time the balance lasts would tell them the user's wallet)."""
        if self.meter is None:
            return False
        return self.viewer_is_user or self.meter.ends_by != consultations.BY_BALANCE

    @property
    def has_limits(self) -> bool:
        c = self.consultation
        return c.max_minutes is not None or c.max_spend_paise is not None

    @property
    def refund_lines(self) -> list[dict]:
        """Each refund of the session: how much, and why (the receipt lists them)."""
        return [
            {
                "amount_paise": e.cost_paise,
                "at": e.at,
                "why": REFUND_WORDS.get(e.reason, _l("Refunded.")),
                "note": e.detail if e.reason in (refunds.ADMIN, refunds.REPORT) else None,
            }
            for e in audit.trail(self.consultation.id)
            if e.kind == "refunded"
        ]

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
            why = ASTROLOGER_WORDS.get(c.end_reason, ENDED)
            return gettext("%(why)s Billed %(amount)s.", why=why, amount=rupees(c.total_cost_paise))
        why = USER_WORDS.get(c.end_reason, ENDED)
        if c.refunded_paise and c.refunded_paise == c.total_cost_paise:
            amount = rupees(c.refunded_paise)
            return gettext("%(why)s Nothing charged: %(amount)s refunded.", why=why, amount=amount)
        return gettext("%(why)s Charged %(amount)s.", why=why, amount=rupees(c.total_cost_paise))


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


@dataclass(frozen=True)
class Card:
    """An astrologer as the user's list shows them: online, available, rated."""

    astrologer: User
    online: bool
    availability: str  # what users see: online, busy (or at their chat limit), offline
    rating: tuple[float, int] | None

    @property
    def takes_requests(self) -> bool:
        return self.availability == availability.ONLINE

    @property
    def availability_words(self) -> str | None:
        return {availability.BUSY: _l("Busy"), availability.OFFLINE: _l("Not taking chats")}.get(
            self.availability
        )


def cards(astrologers: list[User]) -> list[Card]:
    """The astrologer list, with one query each for the chats in progress and the ratings."""
    ids = [a.id for a in astrologers]
    busy, ratings = consultations.active_counts(ids), feedback.rating_summary(ids)
    hub = services().hub
    return [
        Card(
            astrologer=a,
            online=hub.online(a.id),
            availability=availability.effective(a, busy.get(a.id, 0)),
            rating=ratings.get(a.id),
        )
        for a in astrologers
    ]
