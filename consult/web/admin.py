"""Admin pages: the audit trail of session ends, and looking a session up."""

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .. import audit, chat
from ..consultations import Consultation
from ..db import db

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@login_required
def admins_only():
    if not current_user.is_admin:
        abort(404)


@bp.get("/")
def index():
    lookup = request.args.get("session", "").strip().lstrip("#")
    if lookup:
        if lookup.isdigit() and db.session.get(Consultation, int(lookup)):
            return redirect(url_for("admin.session", session_id=int(lookup)))
        return render_template("admin/index.html", ends=audit.recent(kind="ended"), missing=lookup)
    return render_template("admin/index.html", ends=audit.recent(kind="ended"), missing=None)


@bp.get("/sessions/<int:session_id>")
def session(session_id):
    consultation = db.session.get(Consultation, session_id) or abort(404)
    return render_template(
        "admin/session.html",
        consultation=consultation,
        trail=audit.trail(session_id),
        messages=chat.history(session_id),
    )
