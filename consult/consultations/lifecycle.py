"""Before billing: a user requests, the astrologer accepts or declines, the user cancels,
and requests nobody answers expire. Billing starts at the accept."""

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import audit, availability, billing, wire
from ..accounts import User
from ..db import db, write_transaction
from ..errors import Conflict, Forbidden, NotFound, PaymentRequired
from ..numbers import is_id
from ..policy import Policy
from ..realtime import Event, Hub
from . import live
from .limits import apply as apply_limits
from .meter import wallet_balance
from .model import (
    ACTIVE,
    CANCELLED,
    DECLINED,
    EXPIRED,
    NOT_WAITING,
    REQUESTED,
    SESSION_NOT_FOUND,
    Consultation,
    locked,
)
from .pauses import party_returned
from .queries import get_for_party, live_for


def request_consultation(
    user: User,
    astrologer_id,
    *,
    at: datetime,
    hub: Hub,
    policy: Policy,
    limits: dict | None = None,
    request_id=None,
) -> Consultation:
    """Ask an astrologer for a chat, with the user's limits (`limits.parse`) if any.

    The astrologer must be taking requests, and the wallet must fund the minimum session.
    """
    if user.role != "user":
        raise Forbidden("Only users can request a session")
    if not is_id(astrologer_id):
        raise NotFound("Astrologer not found")
    astrologer = db.session.get(User, astrologer_id)
    if astrologer is None or not astrologer.is_astrologer:
        raise NotFound("Astrologer not found")
    rate = astrologer.rate_paise_per_minute
    try:
        with write_transaction():
            if live_for(user) is not None:
                raise Conflict("You already have a requested or active session")
            takes = availability.effective(astrologer, availability.active_sessions(astrologer.id))
            if takes != availability.ONLINE:
                raise Conflict(availability.NOT_AVAILABLE)
            needed = billing.cost_paise(policy.min_session_seconds, rate)
            if wallet_balance(user.id) < needed:
                raise PaymentRequired(
                    f"Your balance must cover at least {policy.min_session_seconds} seconds "
                    "at this rate; please recharge"
                )
            consultation = Consultation(
                user_id=user.id,
                astrologer_id=astrologer.id,
                rate_paise_per_minute=rate,
                status=REQUESTED,
                requested_at=at,
                **(limits or {}),
            )
            db.session.add(consultation)
            db.session.flush()
            audit.record(
                consultation.id, "requested", at=at, actor_id=user.id, request_id=request_id
            )
    except IntegrityError:  # the partial unique index caught a concurrent second request
        raise Conflict("You already have a requested or active session") from None
    hub.publish(consultation.parties, Event("session:requested", wire.session(consultation)))
    return consultation


def _answer(
    actor: User,
    consultation_id,
    role: str,
    status: str,
    at: datetime,
    hub: Hub,
    request_id=None,
    *,
    event: str | None = None,
    also=None,
) -> Consultation:
    """Move a waiting request to `status` for one of its parties, audit it (as `event`,
    by default the status's name), then publish."""
    event = event or status
    consultation = get_for_party(consultation_id, actor)
    if consultation.party_role(actor.id) != role:
        raise NotFound(SESSION_NOT_FOUND)
    with write_transaction():
        consultation = locked(consultation.id)
        if consultation.status != REQUESTED:
            raise Conflict(NOT_WAITING)
        consultation.status = status
        consultation.answered_at = at
        audit.record(consultation.id, event, at=at, actor_id=actor.id, request_id=request_id)
        if also is not None:
            also(consultation)
    hub.publish(consultation.parties, Event(f"session:{event}", wire.session(consultation)))
    return consultation


def accept(astrologer: User, consultation_id, *, at: datetime, hub: Hub, request_id=None):
    """The astrologer accepts: billing starts now."""

    away = []

    def start_billing(consultation: Consultation) -> None:
        consultation.started_at = at
        # A party without a live socket at the accept (never connected, or every connection
        # dropped while waiting) is away from the start: billing is paused and the
        # disconnect grace runs, so nobody pays for an empty room.
        for party, column in consultation.presence_columns():
            if not hub.online(party):
                setattr(consultation, column, at)
                audit.record(consultation.id, "paused", at=at, actor_id=party, detail=column)
                away.append(party)
        apply_limits(consultation, wallet_balance(consultation.user_id))

    consultation = _answer(
        astrologer,
        consultation_id,
        "astrologer",
        ACTIVE,
        at,
        hub,
        request_id,
        event="accepted",
        also=start_billing,
    )
    # A socket attached between the check and the commit found no active session to resume:
    # resume for it now (a no-op for a party still away).
    for party in away:
        if hub.online(party):
            party_returned(party, at=at, hub=hub)
    live.changed(hub, [consultation.id])
    if astrologer.max_sessions is not None:  # one chat nearer the cap: the lists may change
        availability.announce(astrologer, hub)
    return consultation


def decline(astrologer: User, consultation_id, *, at: datetime, hub: Hub, request_id=None):
    """The astrologer turns the request down; nothing is charged."""
    return _answer(astrologer, consultation_id, "astrologer", DECLINED, at, hub, request_id)


def cancel(user: User, consultation_id, *, at: datetime, hub: Hub, request_id=None):
    """The user withdraws the request before an answer; nothing is charged."""
    return _answer(user, consultation_id, "user", CANCELLED, at, hub, request_id)


def expire_stale(*, now: datetime, hub: Hub, policy: Policy) -> list[int]:
    """Expire requests nobody answered within the timeout; nothing is charged."""
    cutoff = now - timedelta(seconds=policy.request_timeout_seconds)
    stale = (Consultation.status == REQUESTED, Consultation.requested_at <= cutoff)
    # Every tick asks: a plain read first, so a tick with nothing to expire (nearly all of
    # them) takes no write lock and waits for no fsync.
    if db.session.scalar(select(Consultation.id).where(*stale).limit(1)) is None:
        return []
    expired = []
    with write_transaction():
        # Row locks: an accept committing meanwhile is seen, and its session left alone.
        for consultation in db.session.scalars(
            select(Consultation).where(*stale).with_for_update(of=Consultation)
        ):
            consultation.status = EXPIRED
            consultation.answered_at = now
            audit.record(consultation.id, "expired", at=now, detail="nobody answered in time")
            expired.append(consultation)
    for consultation in expired:
        hub.publish(consultation.parties, Event("session:expired", wire.session(consultation)))
    return [c.id for c in expired]
