"""The operators' JSON API (consult/openapi.json, /api/admin): every route is for admins only."""

from flask import Blueprint, jsonify, request
from flask_login import current_user

from .. import analytics, consultations, feedback, wire
from ..clock import utcnow
from ..consultations import refunds
from ..errors import DomainError, Invalid
from .common import (
    api_auth,
    csv_download,
    end_as_admin,
    fingerprint,
    from_request,
    json_body,
    resolve_as_admin,
)
from .errors import status_of

bp = Blueprint("admin_api", __name__, url_prefix="/api/admin")
MAX_BULK = 200


@bp.before_request
@api_auth("admin")
def admins_only():
    """401 without credentials, 403 for users and astrologers, on every route below."""


@bp.get("/sessions")
def sessions():
    status = request.args.get("status") or None
    if status is not None and status not in consultations.STATUSES:
        raise Invalid(f"status must be one of {', '.join(consultations.STATUSES)}")
    now = utcnow()
    answer = []
    for c in consultations.everyone(status):
        entry = wire.session(c)
        if c.is_active:
            bill = consultations.meter(c, now)
            entry.update(
                elapsedSeconds=bill.elapsed_seconds, costPaise=bill.cost_paise, paused=bill.paused
            )
        answer.append(entry)
    return jsonify(answer)


@bp.post("/sessions/end")
def end_sessions():
    """End several sessions with `admin_ended`; each answers as its own end would."""
    body = json_body()
    ids, note = body.get("sessionIds"), refunds.check_note(body.get("note"))
    if not isinstance(ids, list) or not ids or len(ids) > MAX_BULK:
        raise Invalid(f"sessionIds must be a list of 1 to {MAX_BULK} session ids")
    results = []
    for session_id in ids:
        try:
            outcome = end_as_admin(session_id, note=note)
            body = wire.end_answer(outcome, viewer_id=current_user.id)
            results.append({"sessionId": session_id, "status": 200, "body": body})
        except DomainError as error:
            results.append(
                {
                    "sessionId": session_id,
                    "status": status_of(error),
                    "body": {"error": error.message},
                }
            )
    return jsonify(results=results)


@bp.post("/sessions/<int:session_id>/refund")
def refund(session_id):
    body = json_body()
    consultation = refunds.refund(
        current_user,
        session_id,
        body.get("amountPaise"),
        body.get("note"),
        idempotency_key=request.headers.get("Idempotency-Key"),
        fingerprint=fingerprint(),
        **from_request(),
    )
    return jsonify(wire.session(consultation))


@bp.get("/analytics")
def analytics_report():
    first, last = analytics.parse_range(
        request.args.get("from"), request.args.get("to"), today=utcnow().date()
    )
    rows = [
        wire.analytics_row(r) for r in analytics.report(first, last, request.args.get("by", "day"))
    ]
    if request.args.get("format") == "csv":
        columns = analytics.CSV_COLUMNS
        return csv_download(
            columns,
            [[*(line[c] for c in columns[:-1]), _pairs(line["endReasons"])] for line in rows],
            f"consult-analytics-{first}-to-{last}.csv",
        )
    return jsonify(rows)


def _pairs(reasons: dict) -> str:
    """The end reasons in one CSV cell: `reason:count` pairs."""
    return ";".join(f"{k}:{v}" for k, v in reasons.items())


@bp.get("/reports")
def reports():
    return jsonify([wire.report(r) for r in feedback.reports(request.args.get("status") or None)])


@bp.post("/reports/<int:report_id>/resolve")
def resolve(report_id):
    body = json_body()
    resolved = resolve_as_admin(report_id, body.get("refundPaise"), body.get("note"))
    return jsonify(wire.report(resolved))
