"""End Session: the one settlement function, and the ways a party reaches it.

Every way of ending (the user, the astrologer, the balance running out, a disconnect, a
crash) goes through `end_session`, which settles in one transaction: a compare-and-set
from active to ended, the cost from timestamps, the ledger transfer and the audit record.
Events are published only after that transaction commits.
"""

import functools
import time
from dataclasses import dataclass, fields, replace
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from .. import availability, billing, idempotency, ledger, metrics, wire
from ..accounts import User
from ..clock import iso
from ..db import db
from ..errors import Conflict, NotFound
from ..numbers import is_id
from ..policy import Policy
from ..realtime import Event, Hub
from ..statements import Statement, transaction
from . import live, money_moves, refunds
from .meter import billing_stop
from .model import (
    ACTIVE,
    ADMIN_ENDED,
    ASTROLOGER_ENDED,
    END_REASONS,
    ENDED,
    NOT_ACTIVE,
    SESSION_NOT_FOUND,
    USER_REQUESTED,
    paused_of,
    row_query,
    session_row,
    table,
)
from .queries import active_id_for


@dataclass(frozen=True)
class Ended:
    """The settled figures of an ended consultation: what an end answers and announces."""

    id: int
    user_id: int
    astrologer_id: int
    end_reason: str
    ended_at: datetime
    billed_seconds: int
    total_cost_paise: int
    balance_after_paise: int | None
    refunded_paise: int = 0

    @classmethod
    def of(cls, row) -> "Ended":
        return cls(*(getattr(row, f.name) for f in fields(cls)))


@dataclass(frozen=True)
class EndOutcome:
    consultation: Ended
    already_ended: bool
    make_good: str | None = None  # why the settlement refunded the whole cost, if it did

    def sees_balance(self, viewer_id: int) -> bool:
        """Only the paying user sees the wallet's balance after the end."""
        return viewer_id == self.consultation.user_id


def end_session(
    consultation_id: int,
    *,
    reason: str | None,
    at: datetime,
    hub: Hub,
    policy: Policy,
    actor_id: int | None = None,
    as_party: bool = False,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    fingerprint: str = "",
    note: str | None = None,
) -> EndOutcome:
    """End a consultation and settle it, exactly once, whoever asks and however often.

    Billing stops at `at`, or earlier where the funds ran out or a party went away.
    A consultation already ended is not charged again: the settled figures come back
    with `already_ended`. Both parties hear `consult:ended` only from the call that won.
    With `as_party`, the actor must be one of its parties (anyone else finds nothing) and
    the reason follows from their side.
    """
    if not is_id(consultation_id):  # whatever a client sent names no session
        raise NotFound(SESSION_NOT_FOUND)
    if not as_party and reason not in END_REASONS:
        raise ValueError(f"unknown end reason {reason!r}")
    began = time.perf_counter()
    try:
        with transaction():  # statements alone: no session, a tenth of its Python
            # The row lock comes first: concurrent retries with one key queue behind it and
            # then find the first one's answer.
            row = _locked_row(consultation_id)
            if row is None:
                raise NotFound(SESSION_NOT_FOUND)
            if as_party:
                reason = _reason_of_party(row, actor_id)
            if actor_id:
                replayed = idempotency.replay(actor_id, idempotency_key, fingerprint)
                if replayed is not None:
                    return _replayed(replayed)
            if row.status == ENDED:
                outcome = EndOutcome(Ended.of(row), already_ended=True)
            elif row.status != ACTIVE:
                raise Conflict(NOT_ACTIVE)
            else:
                outcome = _settle(
                    row, reason, at, policy, actor_id, request_id, note, idempotency_key
                )
            if actor_id:  # a retry with this key replays this answer, whatever happens next
                idempotency.remember(
                    actor_id,
                    idempotency_key,
                    fingerprint,
                    wire.end_answer(outcome, viewer_id=actor_id),
                    at,
                )
    except (IntegrityError, _LostRace):
        # Defence in depth: should a second writer ever get past the lock, the
        # compare-and-set or the unique settlement constraint stops it, and its
        # transaction rolls back whole.
        return EndOutcome(Ended.of(session_row(consultation_id)), already_ended=True)
    if not outcome.already_ended:
        for user_ids, event in _end_events(outcome):
            hub.publish(user_ids, event)
        live.changed(hub, [row.id])
        if row.astrologer_max_sessions is not None:  # a chat freed under the astrologer's cap
            availability.announce(db.session.get(User, row.astrologer_id), hub)
        ended = outcome.consultation
        metrics.settled(
            ended.end_reason, time.perf_counter() - began, outcome.make_good, ended.refunded_paise
        )
    return outcome


@functools.cache
def _locked_row_query():
    """The consultation and its user's wallet, both locked, with the wallet's balance and
    whether the astrologer ever wrote (for the make-good): one statement."""
    messages = db.metadata.tables["messages"]  # by name: chat imports this package
    wallets = ledger.Account.__table__
    wrote = (
        select(messages.c.id)
        .where(
            messages.c.consultation_id == table.c.id,
            messages.c.sender_id == table.c.astrologer_id,
        )
        .exists()
        .label("astrologer_wrote")
    )
    wallet = wallets.c.balance_paise.label("wallet_paise")
    # Every user has a wallet from sign-up (and a request reads it), so the join finds one.
    return row_query(
        for_update=True,
        extra=(wallet, wrote),
        join=(
            wallets,
            (wallets.c.owner_id == table.c.user_id) & (wallets.c.kind == ledger.USER_WALLET),
        ),
    )


def _locked_row(consultation_id: int):
    return session_row(consultation_id, _locked_row_query())


def _reason_of_party(row, actor_id) -> str:
    """The user ends with `user_requested`, the astrologer with `astrologer_ended`."""
    if actor_id == row.user_id:
        return USER_REQUESTED
    if actor_id == row.astrologer_id:
        return ASTROLOGER_ENDED
    raise NotFound(SESSION_NOT_FOUND)  # an admin is not a party


def _replayed(answer: dict) -> EndOutcome:
    return EndOutcome(
        Ended.of(session_row(answer["sessionId"])), already_ended=answer["alreadyEnded"]
    )


class _LostRace(Exception):
    """The compare-and-set from active to ended found the consultation no longer active."""


# From active to ended, or nothing: the columns to set come with each execution.
_COMPARE_AND_SET = Statement(
    update(table).where(table.c.id == bindparam("row_id"), table.c.status == ACTIVE)
)


def _settle(
    row, reason, at, policy, actor_id, request_id, note=None, idempotency_key=None
) -> EndOutcome:
    """The one settlement: compare-and-set, cost, ledger transfer and audit, in one transaction.

    Six statements: the locked row and wallet (read by the caller), the compare-and-set,
    the transfer, its entries, the wallet's balance, the audit record.
    """
    # Locked with the row: nothing moves the wallet between that read and the settlement's
    # commit, so the balance after is this one less the cost.
    wallet_paise = row.wallet_paise
    stop = billing_stop(row, at, wallet_paise)
    if policy.restart is not None and row.started_at < policy.restart.booted_at:
        stop = max(row.started_at, min(stop, policy.restart.alive_until))
    seconds = billing.billable_seconds(row.started_at, stop, paused_of(row))
    cost = billing.cost_paise(seconds, row.rate_paise_per_minute)
    make_good = refunds.make_good_reason(
        row, reason=reason, stop=stop, seconds=seconds, policy=policy
    )
    refunded = cost if make_good and cost > 0 else 0
    ended = Ended(
        id=row.id,
        user_id=row.user_id,
        astrologer_id=row.astrologer_id,
        end_reason=reason,
        ended_at=stop,
        billed_seconds=seconds,
        total_cost_paise=cost,
        balance_after_paise=wallet_paise - cost + refunded,
        refunded_paise=refunded,
    )
    won = _COMPARE_AND_SET.run(
        {
            "row_id": row.id,
            "status": ENDED,
            "ended_at": stop,
            "end_reason": reason,
            "ended_by_id": actor_id,
            "billed_seconds": seconds,
            "total_cost_paise": cost,
            "balance_after_paise": ended.balance_after_paise,
            "refunded_paise": refunded,
            "funded_until": None,
            "ends_at": None,
        },
    ).rowcount
    if won != 1:
        raise _LostRace()
    commission = billing.commission_paise(cost, policy.commission_percent)
    money_moves.post(
        money_moves.SETTLEMENT,
        row,
        cost,
        commission,
        at=at,
        memo=f"Consultation #{row.id} with {row.astrologer_name}",
        wallet_before=wallet_paise,
        actor_id=actor_id,
        reason=reason,
        request_id=request_id,
        detail=f"billed {seconds}s, stopped at {iso(stop)}{f'; {note}' if note else ''}"[:200],
        idempotency_key=idempotency_key,
    )
    if refunded:  # the make-good: a refund of its own, in this same transaction
        refunds.post_refund(
            replace(ended, refunded_paise=0),
            refunded,
            commission=commission,
            at=at,
            actor_id=None,
            reason=make_good,
            request_id=request_id,
            wallet_before=wallet_paise - cost,
        )
        return EndOutcome(ended, already_ended=False, make_good=make_good)
    return EndOutcome(ended, already_ended=False)


def _end_events(outcome: EndOutcome) -> list[tuple[tuple[int, ...], Event]]:
    ended = outcome.consultation
    parties = (ended.user_id, ended.astrologer_id)
    events = [
        (
            parties,
            Event("consult:ended", wire.ended_event(ended)),
        )
    ]
    if ended.end_reason == USER_REQUESTED:
        events.append(
            (
                (ended.astrologer_id,),
                Event(
                    "session:ended-by-user",
                    {"sessionId": ended.id, "userId": ended.user_id, "reason": USER_REQUESTED},
                ),
            )
        )
    if outcome.make_good:
        refunded = {
            "sessionId": ended.id,
            "refundedPaise": ended.refunded_paise,
            "reason": outcome.make_good,
        }
        events.append(((ended.user_id,), Event("session:refunded", refunded)))
        events.append(
            (
                (ended.user_id,),
                Event("wallet:updated", {"balancePaise": ended.balance_after_paise}),
            )
        )
    return events


def end_by_party(caller, consultation_id, **end) -> EndOutcome:
    """A party ends: the user with `user_requested`, the astrologer with `astrologer_ended`.

    The reason follows from who asks; a client cannot choose one it is not entitled to.
    `caller` is anything with the user's `id` (a User, or a socket's cached identity); `end`
    is the rest of what `end_session` takes (`at`, `hub`, `policy`, and the request's id,
    idempotency key and fingerprint).
    """
    return end_session(consultation_id, reason=None, as_party=True, actor_id=caller.id, **end)


def end_for_caller(
    caller, consultation_id=None, *, idempotency_key=None, fingerprint="", **end
) -> EndOutcome:
    """End the given session, or the caller's active one: what every End button and frame does.

    Without an id and with no active session, a retry of an end that already happened
    replays its answer, and anything else is NotFound. `end` goes on to `end_by_party`.
    """
    key = idempotency.check_key(idempotency_key)
    if consultation_id is None:
        consultation_id = active_id_for(caller)
        if consultation_id is None:
            replay = idempotency.replay(caller.id, key, fingerprint)
            if replay is not None:
                return _replayed(replay)
            raise NotFound("No active session found to end")
    return end_by_party(
        caller, consultation_id, idempotency_key=key, fingerprint=fingerprint, **end
    )


def end_by_admin(admin, consultation_id, *, note: str, **end) -> EndOutcome:
    """An operator ends a session (`admin_ended`): settled like any end, the note audited.

    `end` is the rest of what `end_session` takes (`at`, `hub`, `policy`, `request_id`).
    """
    if not admin.is_admin:
        raise NotFound(SESSION_NOT_FOUND)
    return end_session(consultation_id, reason=ADMIN_ENDED, actor_id=admin.id, note=note, **end)
