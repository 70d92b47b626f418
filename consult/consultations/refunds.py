"""Refunds: money of a settled session going back to its user, as a transfer of its own.

A refund takes back from the astrologer's earnings and the platform's revenue in the
proportions of the settlement, so a full refund undoes it exactly; the refunds of one
session never add up to more than its cost (a guarded UPDATE of `refunded_paise`).
"""

from datetime import datetime

from sqlalchemy import select

from .. import idempotency, ledger, metrics
from ..db import db, write_transaction
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..numbers import is_id, is_whole
from ..realtime import Event, Hub
from . import money_moves
from .meter import wallet_balance
from .model import (
    ASTROLOGER_DISCONNECTED,
    ASTROLOGER_ENDED,
    ENDED,
    SESSION_NOT_FOUND,
    Consultation,
    locked,
)

# Why a refund was made (`session:refunded` "reason", the audit event's reason).
EARLY_END = "early_end"  # the astrologer ended or vanished within MAKE_GOOD_SECONDS
SILENT_ASTROLOGER = "silent_astrologer"  # billed, and the astrologer never wrote
ADMIN = "admin"  # an operator's refund
REPORT = "report"  # an operator resolving a user's report
MAX_NOTE = 500
TOO_MUCH = "Refunds of a session cannot add up to more than its cost"


def make_good_reason(row, *, reason: str, stop: datetime, seconds: int, policy) -> str | None:
    """The make-good rule (README "Before and after the end"): why this end costs the user
    nothing, or None."""
    if seconds <= 0:
        return None
    walked_out = reason in (ASTROLOGER_ENDED, ASTROLOGER_DISCONNECTED)
    if walked_out and (stop - row.started_at).total_seconds() < policy.make_good_seconds:
        return EARLY_END
    if policy.make_good_silent and not row.astrologer_wrote:
        return SILENT_ASTROLOGER
    return None


def post_refund(
    session,
    amount: int,
    *,
    commission: int,
    note=None,
    wallet_before: int | None = None,
    **event,
) -> int:
    """Refund `amount` of a settled session in the caller's transaction; returns the transfer id.

    `wallet_before` is the user's balance now, when the caller knows it (the settlement does).
    `event` is the rest of the audit event: `at`, `actor_id`, `reason`, and the request id and
    idempotency key where there are any.

    `session` has the settled figures (`id`, `user_id`, `astrologer_id`, `total_cost_paise`,
    `refunded_paise` before this refund); `commission` is what the settlement paid the platform.
    """
    cost, before = session.total_cost_paise, session.refunded_paise
    if amount <= 0 or before + amount > cost:
        raise Conflict(TOO_MUCH)
    platform_share = (before + amount) * commission // cost - before * commission // cost
    if wallet_before is None:  # locked before any other row, as every wallet move does
        wallet_before = ledger.locked_balance(
            ledger.account_id(ledger.USER_WALLET, session.user_id)
        )
    return money_moves.post(
        money_moves.REFUND,
        session,
        amount,
        platform_share,
        memo=f"Refund for consultation #{session.id}",
        wallet_before=wallet_before,
        detail=note and note[:200],
        **event,
    )


def refund(
    admin,
    consultation_id,
    amount,
    note,
    *,
    at: datetime,
    hub: Hub,
    reason: str = ADMIN,
    request_id=None,
    idempotency_key=None,
    fingerprint="",
) -> Consultation:
    """An operator refunds all or part of a settled session, with a note."""
    if not admin.is_admin:
        raise Forbidden("Only admins can refund")
    amount, note = check_amount(amount), check_note(note)
    if not is_id(consultation_id):
        raise NotFound(SESSION_NOT_FOUND)
    key = idempotency.check_key(idempotency_key)
    with write_transaction():
        consultation = locked(consultation_id)
        if consultation is None:
            raise NotFound(SESSION_NOT_FOUND)
        if idempotency.replay(admin.id, key, fingerprint) is not None:
            return consultation
        refund_in_transaction(
            consultation,
            amount,
            at=at,
            actor_id=admin.id,
            reason=reason,
            note=note,
            request_id=request_id,
            idempotency_key=key,
        )
        idempotency.remember(admin.id, key, fingerprint, {"sessionId": consultation.id}, at)
    announce(consultation, amount, reason, hub)
    return consultation


def refund_in_transaction(consultation: Consultation, amount: int, **record) -> None:
    """Refund a locked, settled consultation inside the caller's transaction.

    `record` is what `post_refund` writes down: `at`, `actor_id`, `reason`, `note`, and the
    request's id and idempotency key where there are any.
    """
    if consultation.status != ENDED:
        raise Conflict("Only an ended session can be refunded")
    if consultation.refunded_paise + amount > (consultation.total_cost_paise or 0):
        raise Conflict(TOO_MUCH)
    post_refund(consultation, amount, commission=settled_commission(consultation.id), **record)
    consultation.refunded_paise += amount


def announce(consultation, amount: int, reason: str, hub: Hub) -> None:
    """After the commit: the refund is counted, and the user hears of it and of the wallet
    it filled."""
    metrics.refunded(reason, amount)
    hub.publish(
        [consultation.user_id],
        Event(
            "session:refunded",
            {"sessionId": consultation.id, "refundedPaise": amount, "reason": reason},
        ),
    )
    hub.publish(
        [consultation.user_id],
        Event("wallet:updated", {"balancePaise": wallet_balance(consultation.user_id)}),
    )


def settled_commission(consultation_id: int) -> int:
    """What the settlement of this session paid the platform (from the ledger itself)."""
    platform = ledger.account_id(ledger.PLATFORM_REVENUE)
    return (
        db.session.scalar(
            select(ledger.Entry.amount_paise)
            .join(ledger.Transfer, ledger.Transfer.id == ledger.Entry.transfer_id)
            .where(
                ledger.Transfer.consultation_id == consultation_id,
                ledger.Entry.account_id == platform,
                ledger.Entry.direction == ledger.CREDIT,
            )
        )
        or 0
    )


def check_amount(amount) -> int:
    if not is_whole(amount, 1, 10**12):
        raise Invalid("amountPaise must be a positive whole number of paise")
    return amount


def check_note(note) -> str:
    if not isinstance(note, str) or not note.strip() or len(note) > MAX_NOTE:
        raise Invalid(f"note must be 1 to {MAX_NOTE} characters")
    return note.strip()
