"""Small helpers the views share: services, the JSON body, who is asking, CSV downloads."""

import csv
import io
from functools import wraps

from flask import current_app, g, jsonify, make_response, render_template, request
from flask_login import current_user

from .. import consultations, feedback, text
from ..clock import utcnow
from ..errors import Forbidden, Invalid
from ..services import Services, services_of

AUTH_REQUIRED = "Authentication required"


def services() -> Services:
    return services_of(current_app)


def request_id() -> str | None:
    return g.get("request_id")


def json_body() -> dict:
    """The request's JSON object; an empty body counts as {}."""
    if not request.get_data(cache=True):
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Invalid("Request body must be a JSON object")
    if not text.is_clean(data):
        raise Invalid("Request body must be valid Unicode text")
    return data


def is_fragment_request() -> bool:
    return request.headers.get("HX-Request") == "true"


def page_or_fragment(page: str, fragment: str, **context) -> str:
    """One URL, two representations: the whole page, or for htmx the fragment alone."""
    return render_template(fragment if is_fragment_request() else page, **context)


def from_request() -> dict:
    """What a use case takes from the request serving it: the time, the hub to tell, and the
    request's id for the audit trail. (Those that start or end a session take the policy too.)"""
    return {"at": utcnow(), "hub": services().hub, "request_id": request_id()}


def api_auth(*roles: str):
    """Require a signed-in caller (401 JSON otherwise), optionally of one of `roles` (403)."""

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return jsonify(error=AUTH_REQUIRED), 401
            if roles and current_user.role not in roles:
                raise Forbidden(f"Only {' or '.join(r + 's' for r in roles)} can do this")
            return view(*args, **kwargs)

        return wrapped

    return decorate


def end_as_caller(session_id, *, key) -> consultations.EndOutcome:
    """End the given session, or the signed-in party's active one (the REST route and page)."""
    return consultations.end_for_caller(
        current_user,
        session_id,
        idempotency_key=key,
        fingerprint=fingerprint(),
        policy=services().policy,
        **from_request(),
    )


def end_as_admin(session_id, *, note: str) -> consultations.EndOutcome:
    """End a session as the signed-in admin (`admin_ended`): the JSON bulk end and the pages."""
    return consultations.end_by_admin(
        current_user, session_id, note=note, policy=services().policy, **from_request()
    )


def resolve_as_admin(report_id, refund_paise, note) -> feedback.Report:
    """Resolve a report as the signed-in admin: the JSON API and the reports page.

    `feedback.resolve` takes no request id (its audit rows carry none), so not `from_request`.
    """
    return feedback.resolve(
        current_user, report_id, refund_paise, note, at=utcnow(), hub=services().hub
    )


def fingerprint() -> str:
    """What makes two requests 'the same' for an idempotency key: method, path and body."""
    return f"{request.method} {request.path} {request.get_data(as_text=True)[:150]}"


def csv_download(columns, rows, filename: str):
    """A CSV attachment: a header line, then the rows."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    response = make_response(out.getvalue())
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
