"""What the scheduler asks: which sessions are due to end, which to warn, and crash recovery.

Each active session carries its due times (`funded_until`, and the *_left_at marks plus
the grace), indexed with its status, so a tick costs what is due, not what is live.
"""

from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, literal_column, or_, select, union_all, update

from ..db import db, write_transaction
from ..policy import Policy
from ..realtime import Hub
from .meter import Meter, funded_until_of, meter, wallet_balance
from .model import (
    ACTIVE,
    ASTROLOGER_DISCONNECTED,
    BY_BALANCE,
    INSUFFICIENT_BALANCE,
    SCHEDULED_END,
    SPEND_CAP,
    SYSTEM_ERROR,
    USER_DISCONNECTED,
    Consultation,
    paused_since_of,
    table,
)
from .settlement import end_session


def refresh_funded_until(user_id: int) -> None:
    """Bring the due time of the user's active consultation up to date with their wallet."""
    with write_transaction():
        row = db.session.execute(
            select(table)
            .where(table.c.user_id == user_id, table.c.status == ACTIVE)
            .with_for_update(of=table)
        ).one_or_none()
        if row is not None:
            _set_funded_until(row, wallet_balance(user_id))


def _set_funded_until(row, wallet_paise: int) -> datetime:
    funded = funded_until_of(row, wallet_paise)
    if funded != row.funded_until:
        db.session.execute(update(table).where(table.c.id == row.id).values(funded_until=funded))
    return funded


def rebuild_due_times() -> int:
    """Fill in the due time of every active consultation without one (say, after an upgrade)."""
    with write_transaction():
        rows = db.session.execute(
            select(table).where(table.c.status == ACTIVE, table.c.funded_until.is_(None))
        ).all()
        for row in rows:
            _set_funded_until(row, wallet_balance(row.user_id))
    return len(rows)


_DUE_COLUMNS = (
    table.c.id,
    table.c.user_id,
    table.c.started_at,
    table.c.paused_micros,
    table.c.rate_paise_per_minute,
    table.c.funded_until,
    table.c.user_left_at,
    table.c.astrologer_left_at,
    table.c.max_spend_paise,
    table.c.ends_at,
)


# "Active", written into the SQL rather than bound: PostgreSQL's generic plan of a prepared
# statement could not prove a bound status is the partial due-time indexes' 'active'.
_ACTIVE = table.c.status == literal_column(f"'{ACTIVE}'")


def _due_query(now: datetime, cutoff: datetime):
    """One range of each due time's index: a union, which every planner serves by index."""
    return union_all(
        select(*_DUE_COLUMNS).where(_ACTIVE, table.c.funded_until <= now),
        select(*_DUE_COLUMNS).where(_ACTIVE, table.c.user_left_at <= cutoff),
        select(*_DUE_COLUMNS).where(_ACTIVE, table.c.astrologer_left_at <= cutoff),
        select(*_DUE_COLUMNS).where(_ACTIVE, table.c.ends_at <= now),
    )


class DueEnd(NamedTuple):
    consultation_id: int
    reason: str
    due_at: datetime  # when it fell due (for the scheduler's lateness)


def due_ends(*, now: datetime, policy: Policy) -> list[DueEnd]:
    """Active consultations that must end now, with the reason and since when: the funds or
    the spend cap reached, the time limit come, or a party gone past the grace.

    Found through the (status, due time) indexes, so a tick costs what is due, not
    what is live. A funded end is checked against the ledger first (the stored time can
    be early, never late); one that is not due after all gets its time corrected.
    """
    grace = timedelta(seconds=policy.disconnect_grace_seconds)
    cutoff = now - grace
    rows = db.session.execute(_due_query(now, cutoff)).all()
    due, stale = [], []
    for row in {row.id: row for row in rows}.values():  # one due twice (funds and grace)
        since = paused_since_of(row)
        # (when, rank, reason): the earliest wins; at a tie the user's own limit names it.
        candidates = []
        if row.funded_until is not None and (since is None or row.funded_until <= since):
            candidates.append((row.funded_until, 1, _FUNDS))
        if row.ends_at is not None:
            candidates.append((row.ends_at, 0, SCHEDULED_END))
        if row.user_left_at is not None:
            candidates.append((row.user_left_at + grace, 2, USER_DISCONNECTED))
        if row.astrologer_left_at is not None:
            candidates.append((row.astrologer_left_at + grace, 2, ASTROLOGER_DISCONNECTED))
        for when, _, reason in sorted(c for c in candidates if c[0] <= now):
            if reason == _FUNDS:
                wallet_paise = wallet_balance(row.user_id)
                if funded_until_of(row, wallet_paise) > now:
                    stale.append((row, wallet_paise))
                    continue
                capped = row.max_spend_paise is not None and row.max_spend_paise <= wallet_paise
                reason = SPEND_CAP if capped else INSUFFICIENT_BALANCE
            due.append(DueEnd(row.id, reason, when))
            break
    if stale:
        with write_transaction():
            for row, wallet_paise in stale:
                _set_funded_until(row, wallet_paise)
    return due


_FUNDS = "funds"  # the wallet or the spend cap, told apart against the ledger


def _first(column, after):
    return (
        select(column).where(_ACTIVE, column > after).order_by(column).limit(1)
    ).scalar_subquery()


# The earliest of each due time still to come: the first entry of each index's range.
_NEXT_DUE = select(
    _first(table.c.funded_until, bindparam("now")),
    _first(table.c.ends_at, bindparam("now")),
    _first(table.c.user_left_at, bindparam("cutoff")),
    _first(table.c.astrologer_left_at, bindparam("cutoff")),
)


def next_due(*, now: datetime, policy: Policy) -> datetime | None:
    """The earliest due time still to come, so the scheduler can wake for it instead of
    waiting for its next tick: one statement, built once."""
    grace = timedelta(seconds=policy.disconnect_grace_seconds)
    funded, ends, user_left, astrologer_left = db.session.execute(
        _NEXT_DUE, {"now": now, "cutoff": now - grace}
    ).one()
    times = [funded, ends, *(left + grace for left in (user_left, astrologer_left) if left)]
    return min((t for t in times if t is not None), default=None)


def low_balance(*, now: datetime, policy: Policy) -> list[tuple[Consultation, Meter]]:
    """Running consultations whose funds last less than the warning time, not yet warned.

    Found through the funded-end index; `mark_warned` records the warning, and a recharge
    (which moves the funded end) re-arms it.
    """
    window = now + timedelta(seconds=policy.low_balance_warning_seconds + 1)
    result = []
    for consultation in db.session.scalars(
        select(Consultation).where(
            Consultation.status == ACTIVE,
            Consultation.funded_until <= window,
            Consultation.user_left_at.is_(None),
            Consultation.astrologer_left_at.is_(None),
            or_(
                Consultation.warned_for.is_(None),
                Consultation.warned_for != Consultation.funded_until,
            ),
        )
    ):
        reading = meter(consultation, now)
        if reading.ends_by != BY_BALANCE:  # the user's own limit ends it first: no alarm
            continue
        if 0 < reading.funded_seconds_left <= policy.low_balance_warning_seconds:
            result.append((consultation, reading))
    return result


def mark_warned(consultation_ids: list[int]) -> None:
    """Remember that these consultations were warned of their current funded end."""
    with write_transaction():
        db.session.execute(
            update(table)
            .where(table.c.id.in_(consultation_ids))
            .values(warned_for=table.c.funded_until)
        )


def recover_after_crash(
    *, last_alive: datetime, hub: Hub, policy: Policy, started_before: datetime | None = None
) -> list[int]:
    """Settle every consultation a crash left active, up to the last moment we were alive."""
    query = select(Consultation.id).where(Consultation.status == ACTIVE)
    if started_before is not None:  # sessions begun since the restart are not the crash's
        query = query.where(Consultation.started_at < started_before)
    ids = list(db.session.scalars(query))
    for consultation_id in ids:
        end_session(consultation_id, reason=SYSTEM_ERROR, at=last_alive, hub=hub, policy=policy)
    return ids
