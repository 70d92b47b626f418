"""The operator's people pages: find users and astrologers; read one's money, sessions and
reports; set an astrologer's rate, speciality and bio; suspend and restore an account.

Admins only (404 for anyone else), like every /admin page. Each form works without
JavaScript (a redirect back, with a flashed message) and with htmx (its own fragment); a
refused form changes nothing and says why in place, its values kept.
"""

from datetime import timedelta

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from .. import analytics, people
from ..accounts import User
from ..clock import utcnow
from ..errors import DomainError, Invalid
from ..money import rupees
from . import forms
from .admin import _done, _refused, admins_only
from .common import from_request, is_fragment_request, page_or_fragment, services

bp = Blueprint("people", __name__, url_prefix="/admin/people")
bp.before_request(admins_only)

EARNINGS_DAYS = 30  # an astrologer's statement on their page: the last month, per day


@bp.get("")
def index():
    """Search users and astrologers by username or name; htmx asks for the results alone."""
    q = request.args.get("q", "")[: people.MAX_QUERY]
    role = request.args.get("role") if request.args.get("role") in people.ROLES else None
    suspended = request.args.get("status") == "suspended"
    found = people.search(q, role, suspended=suspended, page=_page_number())
    context = {"found": found, "q": q, "role": role or "", "suspended": suspended}
    return page_or_fragment("admin/people.html", "admin/_people_results.html", **context)


def _page_number() -> int:
    text = request.args.get("page", "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else 1


@bp.get("/<int:person_id>")
def person(person_id):
    return render_template("admin/person.html", **_person_page(people.get(person_id)))


def _person_page(person: User, **overrides) -> dict:
    """Everything a person's page shows; `overrides` carry a refused form's values."""
    earnings = None
    if person.is_astrologer:
        last = utcnow().date()
        first = last - timedelta(days=EARNINGS_DAYS - 1)
        earnings = analytics.earnings(person.id, first, last, analytics.BY_DAY)[::-1]
    return {
        "person": person,
        "balance": people.balance_of(person),
        "movements": people.statement(person, limit=50),
        "earnings": earnings,
        "sessions": people.sessions_of(person),
        "reports": people.reports_about(person),
        "events": people.events_about(person),
        "profile_form": _profile_form(person),
        "access_form": {"note": ""},
        **overrides,
    }


def _profile_form(person: User) -> dict:
    """The profile form as the astrologer stands: the rate as rupees ('60.00')."""
    rate = person.rate_paise_per_minute or 0
    return {
        "rate": f"{rate // 100}.{rate % 100:02d}",
        "speciality": person.speciality or "",
        "bio": person.bio or "",
    }


CHANGE_WORDS = {
    people.RATE_CHANGED: "rate",
    people.SPECIALITY_CHANGED: "speciality",
    people.BIO_CHANGED: "bio",
}


@bp.post("/<int:person_id>/profile")
def profile(person_id):
    """Set an astrologer's rate (rupees a minute, exact to the paisa), speciality and bio."""
    astrologer = people.get(person_id)
    typed = {name: request.form.get(name, "") for name in ("rate", "speciality", "bio")}
    try:
        if not astrologer.is_astrologer:
            raise Invalid("Only an astrologer has a rate, a speciality and a bio")
        rate = forms.paise_from_rupees(typed["rate"].strip().removeprefix("₹"), "The rate")
        if rate is None:
            raise Invalid("Enter the rate in rupees a minute, e.g. 60 or 59.50")
        changed = people.set_profile(
            current_user,
            person_id,
            people.Profile.checked(rate, typed["speciality"], typed["bio"]),
            **from_request(),
        )
    except DomainError as error:
        return _refused(
            error,
            "admin/_person_profile.html",
            target="#person-profile",
            page="admin/person.html",
            **_person_page(people.get(person_id), profile_form=typed),
        )
    astrologer = people.get(person_id)
    if not changed:
        message = f"Nothing changed for {astrologer.display_name}."
    else:
        what = ", ".join(CHANGE_WORDS[kind] for kind in changed)
        message = f"Saved {astrologer.display_name}'s {what}."
        if people.RATE_CHANGED in changed:
            message += (
                f" New requests are billed at {rupees(astrologer.rate_paise_per_minute)}/min;"
                " sessions already requested keep their rate."
            )
    context = _person_page(astrologer)
    return _done(
        message,
        "admin/_person_profile.html",
        url_for("people.person", person_id=person_id),
        also=render_template("admin/_person_events.html", oob=True, **context),
        **context,
    )


@bp.post("/<int:person_id>/suspend")
def suspend(person_id):
    """Suspend the account: it is signed out everywhere and its live sessions end."""
    people.get(person_id)
    note = request.form.get("note", "")
    try:
        done = people.suspend(
            current_user, person_id, note, policy=services().policy, **from_request()
        )
    except DomainError as error:
        return _access_refused(error, person_id, note)
    name = done.person.display_name
    message = f"Suspended {name}: signed out everywhere."
    if done.ended:
        count = len(done.ended)
        message += (
            f" Ended {count} live session{'s' if count != 1 else ''}"
            f" ({rupees(done.charged_paise)} charged)."
        )
    if done.withdrawn:
        message += f" Withdrew {len(done.withdrawn)} waiting request(s)."
    return _reload(message, person_id)


@bp.post("/<int:person_id>/restore")
def restore(person_id):
    """Lift a suspension; the account signs in afresh (old sign-ins and tokens stay void)."""
    people.get(person_id)
    note = request.form.get("note", "")
    try:
        restored = people.restore(current_user, person_id, note, **from_request())
    except DomainError as error:
        return _access_refused(error, person_id, note)
    return _reload(f"Restored {restored.display_name}: they can sign in again.", person_id)


def _access_refused(error: DomainError, person_id: int, note: str):
    return _refused(
        error,
        "admin/_person_access.html",
        target="#person-access",
        page="admin/person.html",
        **_person_page(people.get(person_id), access_form={"note": note}),
    )


def _reload(message: str, person_id: int):
    """The whole page changes (status, sessions, money): load it again, with the message."""
    flash(message)
    url = url_for("people.person", person_id=person_id)
    if is_fragment_request():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)
