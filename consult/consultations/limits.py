"""The user's own limits: "end after N minutes" and "spend at most ₹X".

Set with the request or while the session runs; the spend cap bounds the funds (so it moves
`funded_until`, and the cost never passes it), the time limit is the due time `ends_at`.
"""

from datetime import datetime, timedelta

from .. import audit
from ..accounts import User
from ..db import write_transaction
from ..errors import Conflict, Forbidden, Invalid
from ..numbers import is_whole
from ..realtime import Event, Hub
from .meter import funded_until_of, meter, wallet_balance
from .model import ACTIVE, LIVE, Consultation, locked
from .queries import get_for_party

MAX_MINUTES = 24 * 60  # a day
MAX_SPEND_PAISE = 10_000_000  # ₹1,00,000
FIELDS = {
    "maxMinutes": ("max_minutes", MAX_MINUTES),
    "maxSpendPaise": ("max_spend_paise", MAX_SPEND_PAISE),
}


def parse(body: dict, *, clearing: bool) -> dict[str, int | None]:
    """The limits in a request body, as column values; only the fields sent. `null` clears
    a limit where `clearing` allows it (a change), and means "none" otherwise."""
    limits = {}
    for field, (column, ceiling) in FIELDS.items():
        if field not in body:
            continue
        value = body[field]
        if value is None:
            limits[column] = None
            continue
        if not is_whole(value, 1, ceiling):
            raise Invalid(f"{field} must be a whole number from 1 to {ceiling}, or null")
        limits[column] = value
    if clearing is False:
        limits = {column: value for column, value in limits.items() if value is not None}
    return limits


def set_limits(
    user: User, consultation_id, limits: dict, *, at: datetime, hub: Hub, request_id=None
) -> Consultation:
    """Change the limits of the user's requested or active session (None clears one)."""
    consultation = get_for_party(consultation_id, user)
    if consultation.party_role(user.id) != "user":
        raise Forbidden("Only the session's user can change its limits")
    with write_transaction():
        consultation = locked(consultation.id)
        if consultation.status not in LIVE:
            raise Conflict("The session has ended; its limits can no longer change")
        if consultation.status == ACTIVE:
            _check_not_reached(consultation, limits, at)
        for column, value in limits.items():
            setattr(consultation, column, value)
        if consultation.status == ACTIVE:
            apply(consultation, wallet_balance(consultation.user_id))
        audit.record(
            consultation.id,
            "limits",
            at=at,
            actor_id=user.id,
            request_id=request_id,
            detail=f"max {consultation.max_minutes} min, max {consultation.max_spend_paise} paise",
        )
    hub.publish(consultation.parties, Event("billing:updated", {"sessionId": consultation.id}))
    return consultation


def apply(consultation: Consultation, wallet_paise: int) -> None:
    """Bring the due times of a running session in line with its limits and funds."""
    consultation.ends_at = (
        None
        if consultation.max_minutes is None
        else consultation.started_at + timedelta(minutes=consultation.max_minutes)
    )
    consultation.funded_until = funded_until_of(consultation, wallet_paise)


def _check_not_reached(consultation: Consultation, limits: dict, at: datetime) -> None:
    """A new limit must lie ahead of the session: past the time so far, above the cost so far."""
    minutes = limits.get("max_minutes")
    if minutes is not None and consultation.started_at + timedelta(minutes=minutes) <= at:
        raise Conflict("The session has already run that long; choose a later time limit")
    cap = limits.get("max_spend_paise")
    if cap is not None and cap <= meter(consultation, at).cost_paise:
        raise Conflict("The session has already cost that much; choose a higher spend cap")
