"""Domain events as htmx fragments: the same partials the pages include, swapped out of band.

Every fragment is rendered from the database at send time, so a page never shows what
the server does not hold.
"""

from flask import render_template
from flask_babel import gettext

from .. import consultations
from ..accounts import User
from ..chat import Message
from ..db import db
from ..money import rupees
from ..realtime import Event
from .context import cards, dashboard_context, panel_for
from .words import refusal


def fragments(viewer_id: int, event: Event) -> str | None:
    viewer = db.session.get(User, viewer_id)
    if viewer is None:
        return None
    handler = HANDLERS.get(event.name)
    return handler(viewer, event.data) if handler else None


def _consultation(viewer: User, data: dict) -> consultations.Consultation | None:
    session_id = data.get("sessionId", data.get("id"))
    consultation = (
        db.session.get(consultations.Consultation, session_id)
        if isinstance(session_id, int)
        else None
    )
    if consultation is None or consultation.party_role(viewer.id) is None:
        return None
    return consultation


def _panel(viewer: User, data: dict) -> str:
    """Re-render the whole session panel (and the astrologer's lists) after a state change."""
    consultation = _consultation(viewer, data)
    if consultation is None:
        return ""
    panel = panel_for(viewer, consultation)
    return render_template("sessions/_panel.html", oob=True, panel=panel) + _dashboard(viewer)


def _ended(viewer: User, data: dict) -> str:
    consultation = _consultation(viewer, data)
    if consultation is None:
        return ""
    panel = panel_for(viewer, consultation)
    parts = [
        render_template(partial, oob=True, panel=panel)
        for partial in (
            "sessions/_status.html",
            "sessions/_banner.html",
            "sessions/_billing.html",
            "chat/_compose.html",
            "sessions/_end_dialog_close.html",
        )
    ]
    if viewer.is_user:
        balance = consultations.wallet_balance(viewer.id)
        parts.append(render_template("wallet/_balance.html", oob=True, balance=balance))
    return "".join(parts) + _dashboard(viewer)


def _ended_by_user(viewer: User, data: dict) -> str:
    consultation = _consultation(viewer, data)
    if consultation is None:
        return ""
    return render_template(
        "_toast.html",
        oob=True,
        tone="info",
        message=gettext("%(name)s ended the session.", name=consultation.user.display_name),
    )


def _error(viewer: User, data: dict) -> str:
    """A command the socket refused (a message sent to an ended session, say): tell the sender."""
    message = refusal(data.get("message") or "That did not work. Please try again.", 400)
    return render_template("_toast.html", oob=True, tone="error", message=message)


def _message(viewer: User, data: dict) -> str:
    consultation = _consultation(viewer, data)
    if consultation is None:
        return ""
    message = db.session.get(Message, data["id"])
    return render_template(
        "chat/_message_oob.html", consultation=consultation, message=message, viewer=viewer
    )


def _billing(viewer: User, data: dict) -> str:
    consultation = _consultation(viewer, data) if "sessionId" in data else None
    if consultation is None:
        consultation = consultations.active_for(viewer)
    parts = []
    if consultation is not None and consultation.is_active:
        panel = panel_for(viewer, consultation)
        parts.append(render_template("sessions/_billing.html", oob=True, panel=panel))
    if viewer.is_user:
        parts.append(
            render_template(
                "wallet/_balance.html",
                oob=True,
                balance=consultations.wallet_balance(viewer.id),
            )
        )
    return "".join(parts)


def _presence(viewer: User, data: dict) -> str:
    """An astrologer came or went, or changed their availability: their card on the list."""
    astrologer = db.session.get(User, data.get("userId"))
    if astrologer is None or not astrologer.is_astrologer:
        return ""
    live = consultations.live_for(viewer) if viewer.is_user else None
    (card,) = cards([astrologer])
    return render_template("astrologers/_card.html", card=card, live=live, oob=True)


def _refunded(viewer: User, data: dict) -> str:
    """Money came back (the make-good, a report, support): say so, and show the wallet."""
    consultation = _consultation(viewer, data)
    if consultation is None or not viewer.is_user:
        return ""
    amount = data.get("refundedPaise")
    return render_template(
        "_toast.html",
        oob=True,
        tone="info",
        message=gettext(
            "%(amount)s refunded to your wallet for session #%(id)s.",
            amount=rupees(amount),
            id=consultation.id,
        ),
    ) + render_template(
        "wallet/_balance.html", oob=True, balance=consultations.wallet_balance(viewer.id)
    )


def _requested(viewer: User, data: dict) -> str:
    return _dashboard(viewer) if viewer.is_astrologer else _panel(viewer, data)


def _live(viewer: User, data: dict) -> str:
    """A session started, paused, resumed or ended: the live console reloads its table."""
    return render_template("admin/_live_signal.html") if viewer.is_admin else ""


def _dashboard(viewer: User) -> str:
    """An astrologer's requests, live sessions and earnings, re-rendered after any change."""
    if not viewer.is_astrologer:
        return ""
    return render_template("dashboard/_lists.html", oob=True, **dashboard_context(viewer))


HANDLERS = {
    "consult:ended": _ended,
    "session:ended-by-user": _ended_by_user,
    "chat:message": _message,
    "session:requested": _requested,
    "session:accepted": _panel,
    "session:declined": _panel,
    "session:cancelled": _panel,
    "session:expired": _panel,
    "billing:updated": _billing,
    "billing:low-balance": _billing,
    "wallet:updated": _billing,
    "presence:changed": _presence,
    "session:refunded": _refunded,
    "live:changed": _live,
    "error": _error,
}
