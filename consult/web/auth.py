"""Sign-in, sign-up and sign-out pages for browsers."""

from urllib.parse import unquote, urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required, login_user, logout_user

from .. import accounts
from ..clock import utcnow
from ..errors import Conflict, Invalid
from ..realtime import Event
from . import rate_limits
from .common import services
from .security import (
    SIGNED_OUT,
    end_browser_session,
    start_browser_session,
)
from .words import refusal

bp = Blueprint("auth", __name__)


def home_for(user) -> str:
    if user.is_astrologer:
        return url_for("pages.dashboard")
    if user.is_admin:
        return url_for("admin.index")
    return url_for("pages.home")


def safe_next(default: str) -> str:
    """Only a path of this site: browsers drop tabs and newlines and read a backslash as a
    slash, so "/\t/evil.example" and "/\\evil.example" would leave it (issue 13 F5)."""
    target = request.values.get("next", "")
    if any(ord(ch) < 0x20 or ch in "\\\x7f" for ch in target + unquote(target)):
        return default
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc:
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
@rate_limits.sign_in
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    error = None
    if request.method == "POST":
        username = request.form.get("username", "")
        try:
            user = accounts.authenticate(username, request.form.get("password", ""))
        except accounts.Suspended as refused:  # the right password: say why (403)
            page = render_template("auth/login.html", error=refusal(refused.message, 403))
            return page, 403
        if user is not None:
            login_user(user)
            start_browser_session(user)
            return redirect(safe_next(home_for(user)))
        error = gettext("That username and password do not match.")
    return render_template("auth/login.html", error=error), 401 if error else 200


@bp.route("/register", methods=["GET", "POST"])
@rate_limits.sign_up
def register():
    error = None
    if request.method == "POST":
        try:
            user = accounts.create_user(
                request.form.get("username", ""),
                request.form.get("password", ""),
                role="user",
                now=utcnow(),
                display_name=request.form.get("name") or None,
            )
        except (Invalid, Conflict) as problem:
            error = refusal(problem.message, 400)
        else:
            login_user(user)
            start_browser_session(user)
            flash(gettext("Welcome to Consult! Recharge your wallet to start a consultation."))
            return redirect(url_for("pages.wallet"))
    return render_template("auth/register.html", error=error), 400 if error else 200


@bp.post("/logout")
@login_required
def logout():
    """Sign this browser out, and close the sockets it opened with this sign-in's cookie.

    A socket outlives the request that opened it, so without this a signed-out page would
    keep receiving the user's events. Bearer-token sockets (programs) are not this browser's.
    """
    user_id = current_user.id
    logout_user()
    key = end_browser_session()
    if key is not None:
        services().hub.publish([user_id], Event(SIGNED_OUT, {"browserSession": key}))
    return redirect(url_for("auth.login"))
