"""How Consult is served: pages and fragments for browsers, a JSON API and sockets for programs."""

import uuid

from flask import Flask, g, redirect, request, url_for
from flask_babel import gettext
from flask_login import LoginManager, current_user
from flask_sock import Sock
from werkzeug.routing import IntegerConverter

from .. import accounts, clock, consultations, money
from ..db import db
from ..numbers import MAX_ID
from .security import browser_sign_in_is_open

login_manager = LoginManager()
sock = Sock()


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.localize_callback = gettext  # flashed in the page's language
    sock.init_app(app)

    from . import (
        admin,
        admin_api,
        api,
        audit_search,
        auth,
        desk,
        errors,
        language,
        local_time,
        metrics,
        pages,
        people,
        rate_limits,
        security,
        sockets,
        words,
    )

    @app.before_request
    def assign_request_id():
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming[:64] if incoming.isprintable() and incoming else uuid.uuid4().hex

    # Before any route is added: a path int past an id column names nothing (404, not a 500).
    app.url_map.converters["int"] = BoundedInt
    security.init_app(app)
    errors.init_app(app)
    rate_limits.init_app(app)
    local_time.init_app(app)
    language.init_app(app)  # English or Hindi pages (issue 13 part 8)
    words.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(desk.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(admin_api.bp)
    app.register_blueprint(people.bp)  # people and audit search (issue 12, parts 4-5)
    app.register_blueprint(audit_search.bp)
    metrics.init_app(app)  # /metrics for Prometheus, closed unless configured (issue 13 part 6)
    sockets.init_app(app)

    app.jinja_env.globals["wallet_balance"] = lambda: consultations.wallet_balance(current_user.id)
    app.jinja_env.filters["rupees"] = money.rupees
    app.jinja_env.filters["duration"] = clock.duration

    @app.get("/healthz")
    def health():
        """For load balancers and operators: this instance, and whether it runs the clock."""
        scheduler = app.extensions["consult"].scheduler
        return {
            "status": "ok",
            "instance": getattr(scheduler, "instance_id", None),
            "leader": bool(scheduler and scheduler.is_leader),
        }

    @app.get("/favicon.ico")
    def favicon():
        """Where browsers and bookmarks look for an icon when a page names none: Consult's."""
        return redirect(url_for("static", filename="icon.svg"))

    @app.after_request
    def echo_request_id(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response

    @app.teardown_appcontext
    def close_session(_exc):
        db.session.remove()


@login_manager.user_loader
def load_user(user_id: str):
    # Refuses a suspended account, a sign-in from before its last suspension, and a
    # cookie whose sign-in was closed by signing out (a copy taken before still says "in").
    user = accounts.user_for_sign_in(user_id)
    return user if user is not None and browser_sign_in_is_open(user) else None


class BoundedInt(IntegerConverter):
    """`<int:…>` in every route: digits, and past what a database id can be, 0, which names
    nothing (404). Not a refusal to convert: werkzeug would then answer 405 wherever a rule
    of another method shares the path (`GET` and `PUT .../rating`)."""

    def to_python(self, value: str) -> int:
        number = int(value)
        return number if number <= MAX_ID else 0
