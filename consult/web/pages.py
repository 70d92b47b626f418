"""The HTMX pages: each view renders a page, or its fragment when htmx asks (HX-Request)."""

from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .. import accounts, chat, consultations, feedback, ledger, wallet
from ..billing import commission_paise
from ..clock import utcnow
from ..digest import digest
from ..errors import Conflict, Forbidden, NotFound
from . import forms, rate_limits
from .common import (
    end_as_caller,
    from_request,
    is_fragment_request,
    page_or_fragment,
    services,
)
from .context import cards, dashboard_context, panel_for
from .words import REPORT_CATEGORIES

bp = Blueprint("pages", __name__)


def _role(*roles):
    if current_user.role not in roles:
        abort(403)


def _hx_redirect(url: str):
    """Send htmx to a new page (a full navigation), or redirect a plain form post."""
    if is_fragment_request():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)


def _own(session_id: int):
    return consultations.get_for_party(session_id, current_user)


def _with_wallet(html: str) -> str:
    """Add the header's wallet balance, swapped out of band, to a user's fragment: after an
    end the pill must show the settled figure at once, whether or not the socket is up."""
    if not current_user.is_user:
        return html
    balance = consultations.wallet_balance(current_user.id)
    return html + render_template("wallet/_balance.html", balance=balance, oob=True)


@bp.get("/")
def home():
    if current_user.is_authenticated and current_user.is_astrologer:
        return redirect(url_for("pages.dashboard"))
    live = None
    if current_user.is_authenticated and current_user.is_user:
        live = consultations.live_for(current_user)
    return render_template("home.html", cards=cards(accounts.astrologers()), live=live)


@bp.get("/wallet", endpoint="wallet")
@login_required
def wallet_page():
    _role("user")
    account = ledger.wallet_of(current_user.id)
    if is_fragment_request():  # the header's pill, re-fetched when a page re-syncs
        return render_template("wallet/_balance.html", balance=ledger.balance(account), oob=False)
    return render_template(
        "wallet/page.html",
        balance=ledger.balance(account),
        movements=ledger.statement_of(account),
        provider=services().payments.name,
        live=consultations.live_for(current_user),
    )


@bp.post("/wallet/recharge")
@rate_limits.recharge
@login_required
def recharge():
    _role("user")
    try:
        amount = int(request.form.get("amount_rupees", "0")) * 100
    except ValueError:
        amount = 0
    s = services()
    result = wallet.recharge(
        current_user.id,
        amount,
        at=utcnow(),
        provider=s.payments,
        hub=s.hub,
        idempotency_key=request.form.get("idempotency_key") or None,
    )
    if is_fragment_request():
        # The new funds move a live session's funded end: send its bill along.
        html = render_template("wallet/_balance.html", balance=result.balance_paise, oob=True)
        active = consultations.active_for(current_user)
        if active is not None:
            panel = panel_for(current_user, active)
            html += render_template("sessions/_billing.html", panel=panel, oob=True)
        return html
    return redirect(request.form.get("back") or url_for("pages.wallet"))


@bp.post("/sessions")
@login_required
@rate_limits.per_account("session-request")
def request_session():
    _role("user")
    try:
        astrologer_id = int(request.form.get("astrologer_id", ""))
    except ValueError:
        raise NotFound("Astrologer not found") from None
    consultation = consultations.request_consultation(
        current_user,
        astrologer_id,
        limits=consultations.limits.parse(forms.limits(request.form), clearing=False),
        policy=services().policy,
        **from_request(),
    )
    return _hx_redirect(url_for("pages.session_page", session_id=consultation.id))


@bp.post("/sessions/<int:session_id>/limits")
@login_required
def limits(session_id):
    """Set, change or clear the user's limits; the bill (and its countdown) answers."""
    changes = {"maxMinutes": None, "maxSpendPaise": None}
    if not request.form.get("clear"):
        changes = forms.limits(request.form)
    consultations.set_limits(
        current_user,
        session_id,
        consultations.limits.parse(changes, clearing=True),
        **from_request(),
    )
    return _changed(session_id, "sessions/_billing.html")


def _changed(session_id, fragment: str, *, with_wallet: bool = False):
    """After a form on the session's page: htmx gets the part that changed (and the wallet,
    where money moved); a browser without JavaScript, the page again."""
    if not is_fragment_request():
        return redirect(url_for("pages.session_page", session_id=session_id))
    html = render_template(fragment, panel=panel_for(current_user, _own(session_id)))
    return _with_wallet(html) if with_wallet else html


@bp.get("/sessions")
@login_required
def history():
    _role("user", "astrologer")
    return render_template("sessions/history.html", sessions=consultations.list_for(current_user))


@bp.get("/sessions/<int:session_id>")
@login_required
def session_page(session_id):
    panel = panel_for(current_user, _own(session_id))
    return page_or_fragment("sessions/page.html", "sessions/_panel.html", panel=panel)


@bp.get("/sessions/<int:session_id>/billing")
@login_required
def billing_fragment(session_id):
    return render_template(
        "sessions/_billing.html", panel=panel_for(current_user, _own(session_id))
    )


@bp.get("/sessions/<int:session_id>/end/confirm")
@login_required
def confirm_end(session_id):
    """Ask before ending: a dialog for htmx, a page of its own for a browser without JavaScript."""
    consultation = _own(session_id)
    if consultation.party_role(current_user.id) is None:
        raise NotFound(consultations.SESSION_NOT_FOUND)
    if not consultation.is_active:
        raise Conflict(
            "No active session found to end: this session has already ended"
            if consultation.is_ended
            else consultations.NOT_ACTIVE
        )
    panel = panel_for(current_user, consultation)
    return page_or_fragment("sessions/end.html", "sessions/_end_dialog.html", panel=panel)


@bp.post("/sessions/<int:session_id>/end")
@login_required
def end(session_id):
    end_as_caller(session_id, key=request.headers.get("Idempotency-Key"))
    return _changed(session_id, "sessions/_panel.html", with_wallet=True)


@bp.post("/sessions/<int:session_id>/cancel")
@login_required
def cancel(session_id):
    consultations.cancel(current_user, session_id, **from_request())
    return _hx_redirect(url_for("pages.session_page", session_id=session_id))


@bp.post("/sessions/<int:session_id>/<any(accept, decline):answer>")
@login_required
def answer(session_id, answer):
    _role("astrologer")
    act = consultations.accept if answer == "accept" else consultations.decline
    act(current_user, session_id, **from_request())
    if is_fragment_request():
        return render_template("dashboard/_lists.html", oob=True, **dashboard_context(current_user))
    return redirect(url_for("pages.dashboard"))


@bp.post("/sessions/<int:session_id>/messages")
@login_required
@rate_limits.per_account("message")
def post_message(session_id):
    """Send a message from the page (a browser with JavaScript sends it over the socket)."""
    chat.post_message(
        current_user, session_id, request.form.get("text"), at=utcnow(), hub=services().hub
    )
    return _changed(session_id, "chat/_compose.html")


@bp.get("/sessions/<int:session_id>/summary")
@login_required
def summary(session_id):
    consultation = _own(session_id)
    if not consultation.is_ended:
        return redirect(url_for("pages.session_page", session_id=session_id))
    panel = panel_for(current_user, consultation)
    earned = None
    if panel.viewer_is_astrologer:
        cost = consultation.total_cost_paise
        earned = cost - commission_paise(cost, services().policy.commission_percent)
    return render_template(
        "sessions/summary.html",
        panel=panel,
        earned=earned,
        rating=_or_none(feedback.rating_of, consultation.id),
        report=_or_none(feedback.report_of, consultation.id),
        digest=digest(consultation, panel.messages),
        can_rate=panel.viewer_is_user and bool(consultation.billed_seconds),
        can_report=panel.viewer_is_user
        and utcnow() - consultation.ended_at <= feedback.REPORT_WINDOW,
    )


def _or_none(read, session_id):
    try:
        return read(current_user, session_id)
    except NotFound:
        return None


@bp.post("/sessions/<int:session_id>/rating")
@login_required
def rate(session_id):
    stars = forms.whole_number(request.form.get("stars"), "The rating")
    feedback.rate(current_user, session_id, stars, request.form.get("comment"), at=utcnow())
    if is_fragment_request():
        return render_template(
            "sessions/_rating.html",
            panel=panel_for(current_user, _own(session_id)),
            rating=feedback.rating_of(current_user, session_id),
            can_rate=True,
            saved=True,
        )
    return redirect(url_for("pages.summary", session_id=session_id))


@bp.route("/sessions/<int:session_id>/report", methods=["GET", "POST"])
@login_required
@rate_limits.per_account("report")
def report(session_id):
    """Report a problem with an ended session: a form prefilled with the session."""
    consultation = _own(session_id)
    if consultation.party_role(current_user.id) != "user":
        raise Forbidden("Only the session's user can report a problem with it")
    if request.method == "POST":
        feedback.report(
            current_user,
            session_id,
            request.form.get("category"),
            request.form.get("text"),
            at=utcnow(),
        )
        return _hx_redirect(url_for("pages.summary", session_id=session_id))
    return render_template(
        "sessions/report.html",
        panel=panel_for(current_user, consultation),
        categories=REPORT_CATEGORIES,
    )


@bp.get("/dashboard")
@login_required
def dashboard():
    if not current_user.is_astrologer:
        raise Forbidden("The dashboard is for astrologers")
    context = dashboard_context(current_user)
    if is_fragment_request():
        return render_template("dashboard/_lists.html", oob=False, **context)
    return render_template("dashboard/page.html", **context)
