"""Admin pages: the audit trail, live sessions, refunds, the queue of reports, analytics.

Every page answers 404 to anyone but an admin. Each form posts to a route of its own and
works without JavaScript (a redirect back, with a flashed message); with htmx the answer is
the fragment the form belongs to. A refused request changes nothing and says why in place.
"""

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cached_property

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import func, select

from .. import analytics, audit, chat, consultations, feedback
from ..accounts import User
from ..clock import utcnow
from ..consultations import Consultation, refunds
from ..db import db
from ..errors import DomainError, Invalid
from ..money import rupees
from ..numbers import is_id
from . import forms
from .admin_api import MAX_BULK
from .common import (
    end_as_admin,
    from_request,
    is_fragment_request,
    page_or_fragment,
    resolve_as_admin,
)
from .errors import status_of

bp = Blueprint("admin", __name__, url_prefix="/admin")

RESOLVED = "resolved"  # the reports filter for refunded and rejected reports together


@bp.before_request
@login_required
def admins_only():
    if not current_user.is_admin:
        abort(404)


@bp.get("/")
def index():
    lookup = request.args.get("session", "").strip().lstrip("#")
    if lookup.isdigit() and db.session.get(Consultation, int(lookup)):
        return redirect(url_for("admin.session_detail", session_id=int(lookup)))
    return render_template(
        "admin/index.html",
        ends=audit.recent(kind="ended"),
        missing=lookup or None,
        live_count=_count(Consultation, Consultation.status == consultations.ACTIVE),
        open_count=_count(feedback.Report, feedback.Report.status == feedback.OPEN),
    )


def _count(model, condition) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(condition))


# ---------------------------------------------------------------- money as people type it


def refund_paise(text: str | None) -> int:
    """A refund typed in rupees ('12.50', '₹1,250') as exact paise: at most 2 decimals."""
    paise = forms.paise_from_rupees((text or "").strip().removeprefix("₹"), "The refund")
    if paise is None:
        raise Invalid("Enter the refund in rupees, e.g. 150 or 99.50")
    if paise < 0:
        raise Invalid("The refund cannot be negative")
    return paise


def _refused(error: DomainError, fragment: str, *, target: str, page: str, **context):
    """A refused form, its values kept and the reason shown in place: for htmx the form's own
    fragment (swapped where the form is), for a plain post the whole page around it."""
    if not is_fragment_request():
        html = render_template(page, error=error.message, **context)
        return make_response(html, status_of(error))
    response = make_response(render_template(fragment, error=error.message, **context))
    response.status_code = status_of(error)
    # htmx swaps error answers too (base.html's htmx-config), into the form's own place.
    response.headers["HX-Retarget"] = target
    response.headers["HX-Reswap"] = "outerHTML"
    return response


def _done(message: str, fragment: str, fallback: str, *, also: str = "", **context):
    """A form that worked: htmx gets the fresh fragment (and `also`, out of band) and a toast;
    a plain post a redirect."""
    if not is_fragment_request():
        flash(message)
        return redirect(fallback)
    toast = render_template("_toast.html", oob=True, tone="info", message=message)
    return render_template(fragment, **context) + also + toast


# ---------------------------------------------------------------- one session


@dataclass(frozen=True)
class SessionMoney:
    """What a session cost, what went back, and what an operator may still refund."""

    consultation: Consultation

    @property
    def cost(self) -> int:
        return self.consultation.total_cost_paise or 0

    @property
    def refunded(self) -> int:
        return self.consultation.refunded_paise or 0

    @property
    def refundable(self) -> int:
        return max(0, self.cost - self.refunded) if self.consultation.is_ended else 0


def _session_reports(consultation_id: int) -> list[feedback.Report]:
    return list(
        db.session.scalars(
            select(feedback.Report)
            .where(feedback.Report.consultation_id == consultation_id)
            .order_by(feedback.Report.created_at, feedback.Report.id)
        )
    )


def _consultation(session_id: int) -> Consultation:
    return db.session.get(Consultation, session_id, populate_existing=True) or abort(404)


def _money_context(consultation: Consultation, **form) -> dict:
    return {
        "c": consultation,
        "money": SessionMoney(consultation),
        "form": {"key": uuid.uuid4().hex, "amount": "", "note": "", **form},
    }


def _session_page(consultation: Consultation, **overrides) -> dict:
    """Everything the session's page shows; `overrides` carry a refused form's values."""
    session_id = consultation.id
    bill = consultations.meter(consultation, utcnow()) if consultation.is_active else None
    return {
        "consultation": consultation,
        "bill": bill,
        "rating": db.session.get(feedback.Rating, session_id),
        "reports": _session_reports(session_id),
        "trail": audit.trail(session_id),
        "messages": chat.history(session_id),
        "end_form": {"note": ""},
        **_money_context(consultation),
        **overrides,
    }


@bp.get("/sessions/<int:session_id>")
def session_detail(session_id):
    return render_template("admin/session.html", **_session_page(_consultation(session_id)))


@bp.post("/sessions/<int:session_id>/refund")
def refund(session_id):
    """Refund part or all of a settled session; the form's key makes a double submit one."""
    consultation = _consultation(session_id)
    amount_text, note = request.form.get("amount", ""), request.form.get("note", "")
    key = request.form.get("idempotency_key") or None
    try:
        amount = refund_paise(amount_text)
        if amount == 0:
            raise Invalid("Enter the amount to refund: more than ₹0.00")
        refunds.refund(
            current_user,
            session_id,
            amount,
            note,
            idempotency_key=key,
            fingerprint=_fingerprint(amount, note),
            **from_request(),
        )
    except DomainError as error:
        consultation = _consultation(session_id)
        form = {"key": key or uuid.uuid4().hex, "amount": amount_text, "note": note}
        return _refused(
            error,
            "admin/_refund.html",
            target="#session-money",
            page="admin/session.html",
            **_session_page(consultation, **_money_context(consultation, **form)),
        )
    consultation = _consultation(session_id)
    return _done(
        f"Refunded {rupees(amount)} of session #{session_id} to {consultation.user.display_name}.",
        "admin/_refund.html",
        url_for("admin.session_detail", session_id=session_id),
        also=render_template("admin/_events.html", trail=audit.trail(session_id), oob=True),
        **_money_context(consultation),
    )


def _fingerprint(amount: int, note: str) -> str:
    """'The same refund' for the idempotency key: the path, the amount and the note."""
    digest = hashlib.sha256(note.strip().encode()).hexdigest()[:16]
    return f"POST {request.path} {amount} {digest}"


@bp.post("/sessions/<int:session_id>/end")
def end_one(session_id):
    """End one live session with `admin_ended`, as the bulk end does for many."""
    consultation = _consultation(session_id)
    note = request.form.get("note", "")
    try:
        outcome = end_as_admin(session_id, note=refunds.check_note(note))
    except DomainError as error:
        return _refused(
            error,
            "admin/_end_form.html",
            target="#end-session",
            page="admin/session.html",
            **_session_page(consultation, end_form={"note": note}),
        )
    message = _end_words(outcome)
    flash(message)
    url = url_for("admin.session_detail", session_id=session_id)
    if is_fragment_request():  # the whole page changes: the bill goes, the refund form comes
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)


def _end_words(outcome: consultations.EndOutcome) -> str:
    c = outcome.consultation
    if outcome.already_ended:
        return f"Session #{c.id} had already ended ({c.end_reason}); nothing was charged again."
    return f"Session #{c.id} ended: {rupees(c.total_cost_paise)} charged."


# ---------------------------------------------------------------- live sessions


@dataclass(frozen=True)
class LiveRow:
    consultation: Consultation
    bill: consultations.Meter

    @property
    def away(self) -> str | None:
        """Who is away while billing is paused."""
        c = self.consultation
        gone = [
            who
            for who, left in (("user", c.user_left_at), ("astrologer", c.astrologer_left_at))
            if left
        ]
        return " and ".join(gone) or None


STATES = {"running": "Running", "paused": "Paused"}
AGES = (5, 15, 30, 60)  # "older than" choices, in minutes


@dataclass(frozen=True)
class LiveFilter:
    """What the console shows: one astrologer's sessions, running or paused ones, those
    older than some minutes. A value that is not one of the choices means "any"."""

    astrologer_id: int | None = None
    state: str = ""
    older_than: int | None = None  # minutes

    @classmethod
    def of(cls, values) -> "LiveFilter":
        astrologer, age = values.get("astrologer", ""), values.get("age", "")
        digits = astrologer.isascii() and astrologer.isdigit() and len(astrologer) < 20
        astrologer_id = int(astrologer) if digits else None
        return cls(
            astrologer_id=astrologer_id if is_id(astrologer_id) else None,
            state=values.get("state", "") if values.get("state") in STATES else "",
            older_than=int(age) if age in {str(a) for a in AGES} else None,
        )

    def keeps(self, row: LiveRow, now: datetime) -> bool:
        c, oldest = row.consultation, now - timedelta(minutes=self.older_than or 0)
        return (
            (self.astrologer_id is None or c.astrologer_id == self.astrologer_id)
            and (not self.state or (self.state == "paused") == row.bill.paused)
            and c.started_at <= oldest
        )


def _live_context(selected: set[int] | None = None) -> dict:
    """The console's rows through its filter, the astrologers to filter by, the ticked boxes."""
    now, shown = utcnow(), LiveFilter.of(request.values)
    active = sorted(consultations.everyone(consultations.ACTIVE), key=lambda c: c.id)
    rows = [LiveRow(c, consultations.meter(c, now)) for c in active]
    return {
        "rows": [row for row in rows if shown.keeps(row, now)],
        "total": len(rows),
        "shown": shown,
        "states": STATES,
        "ages": AGES,
        "selected": _selected() if selected is None else selected,
    }


def _selected() -> set[int]:
    return {int(v) for v in request.values.getlist("session_id") if v.isdigit()}


@bp.get("/live")
def live():
    context = _live_context()
    if is_fragment_request():  # a refresh after a push, a filter change, or the slow poll
        return render_template("admin/_live_table.html", **context)
    astrologers = db.session.scalars(
        select(User).where(User.role == "astrologer").order_by(User.display_name, User.id)
    )
    return render_template(
        "admin/live.html", results=None, note="", error=None, astrologers=astrologers, **context
    )


@dataclass(frozen=True)
class EndResult:
    """What one session of a bulk end came to: `ended`, `already_ended` or `refused`."""

    session_id: int
    result: str
    message: str


@bp.post("/live/end")
def end_live():
    """End the selected sessions with one note; each settles once and answers for itself."""
    raw = request.form.getlist("session_id")
    note = request.form.get("note", "")
    ids = [int(v) for v in raw if v.isdigit()]
    try:
        note = refunds.check_note(note)
        if not ids or len(ids) != len(raw) or len(ids) > MAX_BULK:
            raise Invalid(f"Select 1 to {MAX_BULK} sessions to end")
    except DomainError as error:
        context = {**_live_context(set(ids)), "results": None, "note": note}
        return _refused(
            error,
            "admin/_live_console.html",
            target="#live-console",
            page="admin/live.html",
            **context,
        )
    results = []
    for session_id in dict.fromkeys(ids):
        try:
            outcome = end_as_admin(session_id, note=note)
            result = "already_ended" if outcome.already_ended else "ended"
            results.append(EndResult(session_id, result, _end_words(outcome)))
        except DomainError as error:
            message = f"Session #{session_id}: {error.message}"
            results.append(EndResult(session_id, "refused", message))
    ended = sum(r.result == "ended" for r in results)
    summary = f"Ended {ended} of {len(results)} selected session{'s' if len(results) != 1 else ''}."
    if not is_fragment_request():
        flash(summary)
        for result in results:
            flash(result.message)
        return redirect(url_for("admin.live"))
    context = {**_live_context(set()), "results": results, "note": ""}
    toast = render_template("_toast.html", oob=True, tone="info", message=summary)
    return render_template("admin/_live_console.html", error=None, **context) + toast


# ---------------------------------------------------------------- reports


@dataclass(frozen=True)
class ReportCard:
    """A report with the session it is about, as the queue shows it."""

    report: feedback.Report
    consultation: Consultation
    now: datetime
    error: str | None = None  # why the last resolve of it was refused
    typed: dict | None = None  # what that resolve's form held

    @property
    def money(self) -> SessionMoney:
        return SessionMoney(self.consultation)

    @property
    def age(self) -> str:
        """How long the report has waited (or waited, once resolved), roughly."""
        until = self.report.resolved_at or self.now
        minutes = max(0, int((until - self.report.created_at).total_seconds()) // 60)
        days, rest = divmod(minutes, 24 * 60)
        hours, minutes = divmod(rest, 60)
        if days:
            return f"{days} d {hours} h"
        if hours:
            return f"{hours} h {minutes} min"
        return f"{minutes} min" if minutes else "just now"


def _cards(reports: list[feedback.Report]) -> list[ReportCard]:
    ids = {r.consultation_id for r in reports}
    query = select(Consultation).where(Consultation.id.in_(ids))
    sessions = {
        c.id: c for c in db.session.scalars(query.execution_options(populate_existing=True))
    }
    now = utcnow()
    return [ReportCard(r, sessions[r.consultation_id], now) for r in reports]


def _queue(status: str) -> list[ReportCard]:
    if status == RESOLVED:  # newest resolution first: what was just done is on top
        reports = db.session.scalars(
            select(feedback.Report)
            .where(feedback.Report.status != feedback.OPEN)
            .order_by(feedback.Report.resolved_at.desc(), feedback.Report.id.desc())
            .limit(200)
        )
        return _cards(list(reports))
    return _cards(feedback.reports(feedback.OPEN))


@bp.get("/reports")
def reports():
    status = RESOLVED if request.args.get("status") == RESOLVED else feedback.OPEN
    context = {"cards": _queue(status), "status": status}
    return page_or_fragment("admin/reports.html", "admin/_reports.html", **context)


@bp.post("/reports/<int:report_id>/resolve")
def resolve_report(report_id):
    """Resolve a report with a refund (its amount in rupees) or a rejection, and a note."""
    decision = request.form.get("decision")
    amount_text, note = request.form.get("amount", ""), request.form.get("note", "")
    try:
        if decision == "reject":
            if amount_text.strip() and refund_paise(amount_text) != 0:
                raise Invalid("A rejection refunds nothing: clear the amount, or press Refund")
            amount = 0
        elif decision == "refund":
            amount = refund_paise(amount_text)
            if amount == 0:
                raise Invalid("Enter the amount to refund (more than ₹0.00), or press Reject")
        else:
            raise Invalid("Choose Refund or Reject")
        resolved = resolve_as_admin(report_id, amount, note)
    except DomainError as error:
        found = db.session.get(feedback.Report, report_id, populate_existing=True)
        if found is None:  # no card to show the reason on: the error page or toast
            raise
        card = replace(
            _cards([found])[0], error=error.message, typed={"amount": amount_text, "note": note}
        )
        # Without htmx, the whole queue with this card in it (on top, if no longer open).
        queue = _queue(feedback.OPEN)
        if any(c.report.id == report_id for c in queue):
            cards = [card if c.report.id == report_id else c for c in queue]
        else:
            cards = [card, *queue]
        return _refused(
            error,
            "admin/_report.html",
            target=f"#report-{report_id}",
            page="admin/reports.html",
            card=card,
            cards=cards,
            status=feedback.OPEN,
        )
    consultation = db.session.get(Consultation, resolved.consultation_id)
    if resolved.status == feedback.REFUNDED:
        message = (
            f"Report #{report_id} resolved: {rupees(amount)} refunded to "
            f"{consultation.user.display_name}."
        )
    else:
        message = f"Report #{report_id} rejected; nothing was refunded."
    return _done(
        message,
        "admin/_reports.html",
        url_for("admin.reports"),
        cards=_queue(feedback.OPEN),
        status=feedback.OPEN,
    )


# ---------------------------------------------------------------- analytics

PRESET_DAYS = (7, 30, 90)  # the range form's shortcuts, each ending today
# An end reason in a word or two, for a chart's legend and a column's head (the receipt's
# words, context.REASON_LABELS, are sentences for the people in the session).
REASON_WORDS = {
    consultations.USER_REQUESTED: "User ended",
    consultations.INSUFFICIENT_BALANCE: "Balance ran out",
    consultations.USER_DISCONNECTED: "User dropped",
    consultations.ASTROLOGER_ENDED: "Astrologer ended",
    consultations.ASTROLOGER_DISCONNECTED: "Astrologer dropped",
    consultations.SYSTEM_ERROR: "Technical problem",
    consultations.SPEND_CAP: "Spend cap",
    consultations.SCHEDULED_END: "Time limit",
    consultations.ADMIN_ENDED: "Ended by us",
}


@dataclass(frozen=True)
class AnalyticsView:
    """A range's report as the analytics page shows it: each row, the totals, the end reasons
    that occur, and the figures the charts draw, which are the tables' own numbers."""

    first: date
    last: date
    by: str
    rows: list[analytics.Row]

    @property
    def by_day(self) -> bool:
        return self.by == analytics.BY_DAY

    @cached_property
    def totals(self) -> analytics.Row:
        total = analytics.Row(key="Total")
        for r in self.rows:
            total.sessions += r.sessions
            total.billed_seconds += r.billed_seconds
            total.gross_paise += r.gross_paise
            total.commission_paise += r.commission_paise
            total.refunded_paise += r.refunded_paise
            for reason, count in r.end_reasons.items():
                total.end_reasons[reason] = total.end_reasons.get(reason, 0) + count
        return total

    @cached_property
    def reasons(self) -> list[str]:
        """The end reasons of the range, in the order the domain lists them."""
        found = self.totals.end_reasons
        known = [r for r in consultations.END_REASONS if r in found]
        return known + sorted(set(found) - set(known))

    def label(self, row: analytics.Row) -> str:
        """A row's name: the astrologer's, or the day's ('2 Nov', with its year when the range
        spans two)."""
        if not self.by_day:
            return row.key
        day = date.fromisoformat(row.key)
        return f"{day.day} {day:%b}" if self.first.year == self.last.year else self.day_words(day)

    @staticmethod
    def day_words(day: date) -> str:
        return f"{day.day} {day:%b %Y}"

    def chart_data(self) -> dict:
        """What static/analytics.js draws: money in paise, as the server holds it."""
        return {
            "by": self.by,
            "labels": [self.label(r) for r in self.rows],
            "sessions": [r.sessions for r in self.rows],
            "billedMinutes": [minutes(r.billed_seconds) for r in self.rows],
            "grossPaise": [r.gross_paise for r in self.rows],
            "commissionPaise": [r.commission_paise for r in self.rows],
            "refundedPaise": [r.refunded_paise for r in self.rows],
            "reasons": [
                {
                    "code": code,
                    "label": reason_label(code),
                    "counts": [r.end_reasons.get(code, 0) for r in self.rows],
                }
                for code in self.reasons
            ],
        }


def minutes(seconds: int) -> float:
    """Billed time in minutes to a tenth, as the tables and the charts both show it."""
    return round(seconds / 60, 1)


def reason_label(code: str) -> str:
    return REASON_WORDS.get(code, code)


def _analytics_url(first: date, last: date, by: str) -> str:
    return url_for("admin.analytics", by=by, **{"from": first.isoformat(), "to": last.isoformat()})


@bp.get("/analytics", endpoint="analytics")
def analytics_page():
    """Sessions, billed minutes, money and end reasons per day or per astrologer over a range of
    days: charts, the same numbers in tables, and the API's CSV. A GET, so the URL is shareable."""
    typed = {k: request.args.get(k, "").strip() for k in ("from", "to", "by")}
    by = typed["by"] or analytics.BY_DAY
    today = utcnow().date()
    per = by if by in (analytics.BY_DAY, analytics.BY_ASTROLOGER) else analytics.BY_DAY
    shortcuts = [
        (f"Last {days} days", _analytics_url(today - timedelta(days=days - 1), today, per))
        for days in PRESET_DAYS
    ]
    try:
        first, last = analytics.parse_range(typed["from"] or None, typed["to"] or None, today=today)
        view = AnalyticsView(first, last, by, analytics.report(first, last, by))
    except DomainError as error:
        html = render_template(
            "admin/analytics.html",
            view=None,
            error=error.message,
            form={**typed, "by": by},
            shortcuts=shortcuts,
            here=None,
        )
        return html, status_of(error)
    span = {"from": first.isoformat(), "to": last.isoformat()}
    return render_template(
        "admin/analytics.html",
        view=view,
        error=None,
        form={**span, "by": by},
        shortcuts=shortcuts,
        here=_analytics_url(first, last, by),
        minutes=minutes,
        reason_label=reason_label,
        csv_url=url_for("admin_api.analytics_report", by=by, format="csv", **span),
    )
