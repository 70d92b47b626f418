"""The JSON API of consult/openapi.json: thin views that parse, call the domain, and answer."""

from pathlib import Path

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user

from .. import accounts, analytics, availability, chat, consultations, feedback, wallet, wire
from ..clock import utcnow
from ..digest import digest
from ..errors import Invalid, NotFound
from ..numbers import is_id
from . import rate_limits
from .common import (
    api_auth,
    csv_download,
    end_as_caller,
    from_request,
    json_body,
    services,
)

bp = Blueprint("api", __name__, url_prefix="/api")
# The contract of this API as an OpenAPI 3.1 document, read once, served as it is.
OPENAPI = (Path(__file__).parents[1] / "openapi.json").read_bytes()


def _int_id(value, message="Session not found"):
    """Ids are integers; anything else names nothing."""
    if not is_id(value):
        raise NotFound(message)
    return value


def _token_answer(user, status=200):
    token = accounts.issue_token(
        user, now=utcnow(), ttl_seconds=current_app.config["TOKEN_TTL_SECONDS"]
    )
    return jsonify(token=token, user=wire.account(user)), status


@bp.get("/openapi.json")
def openapi():
    return current_app.response_class(OPENAPI, mimetype="application/json")


@bp.post("/auth/token")
@rate_limits.sign_in
def token():
    body = json_body()
    user = accounts.authenticate(body.get("username"), body.get("password"))
    if user is None:
        return jsonify(error="Invalid username or password"), 401
    return _token_answer(user)


@bp.post("/auth/register")
@rate_limits.sign_up
def register():
    body = json_body()
    user = accounts.create_user(
        body.get("username"), body.get("password"), role="user", now=utcnow()
    )
    return _token_answer(user, 201)


@bp.get("/me")
@api_auth()
def me():
    return jsonify(wire.account(current_user))


@bp.get("/astrologers")
def astrologers():
    hub = services().hub
    everyone = accounts.astrologers()
    ids = [a.id for a in everyone]
    busy, ratings = consultations.active_counts(ids), feedback.rating_summary(ids)
    return jsonify(
        [
            wire.astrologer(
                a,
                online=hub.online(a.id),
                availability=availability.effective(a, busy.get(a.id, 0)),
                rating=ratings.get(a.id),
            )
            for a in everyone
        ]
    )


@bp.put("/me/availability")
@api_auth("astrologer")
def set_availability():
    status, cap, cap_sent = availability.parse(json_body())
    astrologer = availability.set_availability(
        current_user, status, cap, change_cap=cap_sent, hub=services().hub
    )
    return jsonify(wire.availability(astrologer))


@bp.get("/me/earnings")
@api_auth("astrologer")
def earnings():
    """The astrologer's statement (an addition to the first contract): per day or per session."""
    first, last = analytics.parse_range(
        request.args.get("from"), request.args.get("to"), today=utcnow().date()
    )
    lines = [
        wire.earning(e)
        for e in analytics.earnings(current_user.id, first, last, request.args.get("by", "day"))
    ]
    if request.args.get("format") == "csv":
        columns = list(wire.EARNING_FIELDS)
        return csv_download(
            columns,
            [[line[c] for c in columns] for line in lines],
            f"earnings-{first}-to-{last}.csv",
        )
    return jsonify(lines)


@bp.get("/wallet")
@api_auth("user")
def get_wallet():
    return jsonify(balancePaise=consultations.wallet_balance(current_user.id))


@bp.post("/wallet/recharge")
@rate_limits.recharge
@api_auth("user")
def recharge():
    body = json_body()
    key = request.headers.get("Idempotency-Key") or body.get("idempotencyKey")
    s = services()
    result = wallet.recharge(
        current_user.id,
        body.get("amountPaise"),
        at=utcnow(),
        provider=s.payments,
        hub=s.hub,
        idempotency_key=key,
    )
    return jsonify(balancePaise=result.balance_paise)


@bp.post("/sessions")
@api_auth("user")
@rate_limits.per_account("session-request")
def create_session():
    body = json_body()
    consultation = consultations.request_consultation(
        current_user,
        _int_id(body.get("astrologerId"), "Astrologer not found"),
        limits=consultations.limits.parse(body, clearing=False),
        policy=services().policy,
        **from_request(),
    )
    return jsonify(wire.session(consultation)), 201


@bp.put("/sessions/<int:session_id>/limits")
@api_auth()
def change_limits(session_id):
    consultation = consultations.set_limits(
        current_user,
        session_id,
        consultations.limits.parse(json_body(), clearing=True),
        **from_request(),
    )
    return jsonify(wire.session(consultation))


@bp.put("/sessions/<int:session_id>/rating")
@api_auth()
def rate(session_id):
    body = json_body()
    rating = feedback.rate(
        current_user, session_id, body.get("stars"), body.get("comment"), at=utcnow()
    )
    return jsonify(wire.rating(rating))


@bp.post("/sessions/<int:session_id>/report")
@api_auth()
@rate_limits.per_account("report")
def report(session_id):
    body = json_body()
    filed = feedback.report(
        current_user, session_id, body.get("category"), body.get("text"), at=utcnow()
    )
    return jsonify(wire.report(filed)), 201


# What a session gains once ended: each is read as its party may see it and given in its wire
# shape, by a GET of its own (404 when there is none) and in the summary (null).
_PARTS = {"rating": (feedback.rating_of, wire.rating), "report": (feedback.report_of, wire.report)}


def _part(name: str, session_id) -> dict:
    """The caller's session's rating or report, in its wire shape."""
    read, shape = _PARTS[name]
    return shape(read(current_user, session_id))


def _part_view(name: str):
    """The GET of a session's rating or report: 404 when it has none."""

    def view(session_id):
        return jsonify(_part(name, session_id))

    return view


for _name in _PARTS:
    bp.add_url_rule(
        f"/sessions/<int:session_id>/{_name}", f"get_{_name}", api_auth()(_part_view(_name))
    )


def _answer_view(answer):
    """A view answering a waiting request with `answer` (accept, decline or cancel)."""

    def view(session_id):
        return jsonify(wire.session(answer(current_user, session_id, **from_request())))

    return view


# The astrologer accepts or declines a waiting request; its user cancels it.
for _answer, _role in (
    (consultations.accept, "astrologer"),
    (consultations.decline, "astrologer"),
    (consultations.cancel, "user"),
):
    bp.add_url_rule(
        f"/sessions/<int:session_id>/{_answer.__name__}",
        _answer.__name__,
        api_auth(_role)(_answer_view(_answer)),
        methods=["POST"],
    )


@bp.get("/sessions")
@api_auth("user", "astrologer")
def list_sessions():
    status = request.args.get("status") or None
    if status is not None and status not in consultations.STATUSES:
        raise Invalid(f"status must be one of {', '.join(consultations.STATUSES)}")
    return jsonify([wire.session(c) for c in consultations.list_for(current_user, status)])


@bp.get("/sessions/active")
@api_auth("user", "astrologer")
def active_session():
    consultation = consultations.active_for(current_user)
    if consultation is None:
        return jsonify(error="No active session found"), 404
    return jsonify(wire.session(consultation))


@bp.get("/sessions/<int:session_id>")
@api_auth()
def get_session(session_id):
    return jsonify(wire.session(consultations.get_for_party(session_id, current_user)))


@bp.get("/sessions/<int:session_id>/summary")
@api_auth()
def session_summary(session_id):
    """The receipt of a session: the session object plus who ended it, the balance after, the
    transcript. The balance after is the user's business: the astrologer gets null."""
    consultation = consultations.get_for_party(session_id, current_user)
    ended_by = None
    if consultation.ended_by_id is not None:
        ended_by = {
            "id": consultation.ended_by_id,
            "role": consultation.party_role(consultation.ended_by_id),
        }
    elif consultation.status == consultations.ENDED:
        ended_by = {"id": None, "role": "system"}
    sees_balance = current_user.id == consultation.user_id or current_user.is_admin
    messages = chat.history(consultation.id)
    return jsonify(
        {
            **wire.session(consultation),
            "endedBy": ended_by,
            "balanceAfterPaise": consultation.balance_after_paise if sees_balance else None,
            "messages": [wire.message(m) for m in messages],
            "digest": wire.digest(digest(consultation, messages)),
            **{part: _or_none(part, consultation.id) for part in _PARTS},
        }
    )


def _or_none(part: str, session_id):
    """What a summary shows of a rating or report: its shape, or null when there is none."""
    try:
        return _part(part, session_id)
    except NotFound:
        return None


@bp.get("/sessions/<int:session_id>/messages")
@api_auth()
def list_messages(session_id):
    consultation = consultations.get_for_party(session_id, current_user)
    return jsonify([wire.message(m) for m in chat.history(consultation.id)])


@bp.post("/sessions/<int:session_id>/messages")
@api_auth("user", "astrologer")
@rate_limits.per_account("message")
def post_message(session_id):
    body = json_body()
    message = chat.post_message(
        current_user, session_id, body.get("text"), at=utcnow(), hub=services().hub
    )
    return jsonify(wire.message(message)), 201


@bp.post("/sessions/end")
@api_auth("user", "astrologer")
def end_active():
    body = json_body()
    outcome = end_as_caller(body.get("sessionId"), key=request.headers.get("Idempotency-Key"))
    return jsonify(wire.end_answer(outcome, viewer_id=current_user.id))


@bp.post("/sessions/<int:session_id>/end")
@api_auth("user", "astrologer")
def end_one(session_id):
    json_body()  # validates the body even though only the caller decides the reason
    outcome = end_as_caller(session_id, key=request.headers.get("Idempotency-Key"))
    return jsonify(wire.end_answer(outcome, viewer_id=current_user.id))


@bp.get("/billing/status")
@api_auth("user", "astrologer")
def billing_status():
    bill = consultations.bill_for(current_user, request.args.get("sessionId"), at=utcnow())
    return jsonify(wire.bill(bill, viewer_id=current_user.id))
