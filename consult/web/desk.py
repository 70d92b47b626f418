"""The astrologer's desk: what they set from the dashboard (whether they take requests), and
their earnings statement."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user, login_required

from .. import analytics, availability
from ..clock import utcnow
from ..errors import DomainError, Forbidden
from .common import is_fragment_request, services
from .errors import status_of

bp = Blueprint("desk", __name__, url_prefix="/dashboard")

# What the control offers, in order: each status, its label, and what it means to users.
CHOICES = (
    (availability.ONLINE, lazy_gettext("Online"), lazy_gettext("Users can request a chat")),
    (
        availability.BUSY,
        lazy_gettext("Busy"),
        lazy_gettext("Users see you as busy and cannot request a chat"),
    ),
    (
        availability.OFFLINE,
        lazy_gettext("Offline"),
        lazy_gettext("Users see you as offline and cannot request a chat"),
    ),
)
WORDS = {status: (label, meaning) for status, label, meaning in CHOICES}


@bp.record_once
def _template_globals(state) -> None:
    """Constants the availability form needs on every render of the dashboard, bound once."""
    state.app.jinja_env.globals.update(
        availability_choices=CHOICES,
        availability_words=WORDS,
        max_sessions_limit=availability.MAX_SESSIONS,
    )


@bp.post("/availability")
@login_required
def set_availability():
    """Save Online / Busy / Offline and the chat cap; users' lists hear of it at once."""
    if not current_user.is_astrologer:
        raise Forbidden("Only astrologers set their availability")
    status, cap, cap_sent = availability.parse(_form_as_body())
    astrologer = availability.set_availability(
        current_user, status, cap, change_cap=cap_sent, hub=services().hub
    )
    if is_fragment_request():
        return render_template(
            "dashboard/_availability_state.html",
            availability=astrologer.availability,
            max_sessions=astrologer.max_sessions,
        )
    label, meaning = WORDS[astrologer.availability]
    flash(gettext("Saved: you are %(status)s. %(meaning)s.", status=label, meaning=meaning))
    return redirect(url_for("pages.dashboard"))


def _form_as_body() -> dict:
    """The form in the API's shape. An empty cap means none; a cap that is not a whole
    number stays as typed, so `availability.parse` refuses it with the API's own words."""
    body = {"status": request.form.get("status")}
    if "max_sessions" in request.form:
        typed = request.form["max_sessions"].strip()
        try:
            body["maxSessions"] = int(typed) if typed else None
        except ValueError:
            body["maxSessions"] = typed
    return body


@bp.get("/earnings")
@login_required
def earnings():
    """What the astrologer earned per day or per session over a range of days (the last 30 by
    default): gross, commission, refunds and net, with the API's CSV of the same lines."""
    if not current_user.is_astrologer:
        raise Forbidden("Only astrologers have earnings")
    typed = {k: request.args.get(k, "").strip() for k in ("from", "to", "by")}
    by = typed["by"] or analytics.BY_DAY
    try:
        first, last = analytics.parse_range(
            typed["from"] or None, typed["to"] or None, today=utcnow().date()
        )
        lines = analytics.earnings(current_user.id, first, last, by)
    except DomainError as error:
        page = render_template(
            "dashboard/earnings.html", lines=None, error=error.message, form=typed
        )
        return page, status_of(error)
    span = {"from": first.isoformat(), "to": last.isoformat(), "by": by}
    return render_template(
        "dashboard/earnings.html",
        lines=lines[::-1],  # the latest first
        total=analytics.Earning.total(lines),
        error=None,
        form=span,
        csv_url=url_for("api.earnings", format="csv", **span),
    )
