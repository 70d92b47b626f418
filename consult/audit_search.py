"""Searching the audit trail: events by session, person, astrologer, kind, reason, request
id and time, newest first, fifty at a time; each money event with the transfer it made.

Pages are keyset pages on the event id (`before` and `after` an id), so the hundredth page
costs what the first does. Every filter is one index of `session_events` (migration
b4e7d2a9c1f3), or, for "a party of the session", the consultations' `user_id` and
`astrologer_id` indexes.
"""

from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import or_, select

from . import consultations, feedback, people
from .accounts import User
from .audit import SessionEvent
from .consultations import Consultation, refunds
from .db import db
from .errors import Invalid
from .ledger import Transfer

PAGE_SIZE = 50
CSV_LIMIT = 50_000  # rows in one download; narrow the filters for more
MAX_ID = people.MAX_ID

# What the kind and reason fields suggest (other values are searched all the same).
KINDS = (
    "requested",
    "accepted",
    "declined",
    "cancelled",
    "expired",
    "paused",
    "resumed",
    "ended",
    "refunded",
    "rated",
    "reported",
    "report_resolved",
    *people.KINDS,
)
REASONS = (
    *consultations.END_REASONS,
    refunds.EARLY_END,
    refunds.SILENT_ASTROLOGER,
    refunds.ADMIN,
    refunds.REPORT,
    *feedback.CATEGORIES,
    feedback.REFUNDED,
    feedback.REJECTED,
)
MONEY_KINDS = ("ended", "refunded")  # the events that moved money, each by one transfer


@dataclass(frozen=True)
class Filters:
    """What to look for; None is "any". A person is an actor, a party or the subject."""

    session_id: int | None = None
    person_id: int | None = None
    astrologer_id: int | None = None
    kind: str | None = None
    reason: str | None = None
    request_id: str | None = None
    since: datetime | None = None  # included
    until: datetime | None = None  # excluded

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


def parse_id(text: str | None, what: str) -> int | None:
    """'42' or '#42' -> 42; empty -> None; anything else -> Invalid."""
    text = (text or "").strip().lstrip("#")
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_ID:
        raise Invalid(f"{what} must be a number like 42")
    return int(text)


def parse_instant(text: str | None, *, end: bool = False) -> datetime | None:
    """'2026-12-03' or '2026-12-03T14:30' (UTC) -> an instant; with `end`, the end of that day
    or minute, so a "to" field includes what it names."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
            step = timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text).replace(second=0, microsecond=0)
            step = timedelta(minutes=1)
    except ValueError:
        raise Invalid("Times must look like 2026-12-03 or 2026-12-03T14:30 (UTC)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment + step if end else moment


def _conditions(f: Filters) -> list:
    e, c = SessionEvent, Consultation
    where = []
    if f.session_id is not None:
        where.append(e.consultation_id == f.session_id)
    if f.person_id is not None:
        theirs = select(c.id).where(or_(c.user_id == f.person_id, c.astrologer_id == f.person_id))
        where.append(
            or_(
                e.actor_id == f.person_id,
                e.subject_id == f.person_id,
                e.consultation_id.in_(theirs),
            )
        )
    if f.astrologer_id is not None:
        theirs = select(c.id).where(c.astrologer_id == f.astrologer_id)
        where.append(or_(e.subject_id == f.astrologer_id, e.consultation_id.in_(theirs)))
    for column, value in ((e.kind, f.kind), (e.reason, f.reason), (e.request_id, f.request_id)):
        if value is not None:
            where.append(column == value)
    if f.since is not None:
        where.append(e.at >= f.since)
    if f.until is not None:
        where.append(e.at < f.until)
    return where


@dataclass(frozen=True)
class Page:
    """Events newest first; `newer` and `older` are the ids to page on from here, or None."""

    events: list[SessionEvent]
    newer: int | None
    older: int | None


def page(filters: Filters, *, before: int | None = None, after: int | None = None) -> Page:
    """One page of matching events: the newest, those older than `before`, or the page just
    newer than `after`."""
    query = select(SessionEvent).where(*_conditions(filters))
    if after is not None:
        rows = list(
            db.session.scalars(
                query.where(SessionEvent.id > after).order_by(SessionEvent.id).limit(PAGE_SIZE + 1)
            )
        )
        more_newer = len(rows) > PAGE_SIZE
        events = rows[:PAGE_SIZE][::-1]
        older = events[-1].id if events else None
        return Page(events, events[0].id if more_newer else None, older)
    if before is not None:
        query = query.where(SessionEvent.id < before)
    rows = list(db.session.scalars(query.order_by(SessionEvent.id.desc()).limit(PAGE_SIZE + 1)))
    events = rows[:PAGE_SIZE]
    older = events[-1].id if len(rows) > PAGE_SIZE else None
    return Page(events, events[0].id if before is not None and events else None, older)


def every(filters: Filters, limit: int = CSV_LIMIT):
    """Matching events newest first, streamed (the CSV download)."""
    return db.session.scalars(
        select(SessionEvent)
        .where(*_conditions(filters))
        .order_by(SessionEvent.id.desc())
        .limit(limit)
        .execution_options(yield_per=1000)
    )


def transfers_of(events) -> dict[int, int]:
    """For each money event among `events`, the id of the ledger transfer it made.

    An end is the settlement that names its session (one, by a unique constraint); a refund
    is a refund transfer of its session posted at the event's own instant (both are written
    with one `at` in one transaction); refunds at the same instant pair in order.
    """
    events = [e for e in events if e.kind in MONEY_KINDS and e.consultation_id is not None]
    found: dict[int, int] = {}
    ends = {e.consultation_id: e.id for e in events if e.kind == "ended"}
    if ends:
        for transfer_id, session_id in db.session.execute(
            select(Transfer.id, Transfer.consultation_id).where(Transfer.consultation_id.in_(ends))
        ):
            found[ends[session_id]] = transfer_id
    refunded = {e.consultation_id for e in events if e.kind == "refunded"}
    if refunded:
        transfers, events_at = defaultdict(list), defaultdict(list)
        for transfer_id, session_id, at in db.session.execute(
            select(Transfer.id, Transfer.refund_of_id, Transfer.created_at)
            .where(Transfer.refund_of_id.in_(refunded))
            .order_by(Transfer.id)
        ):
            transfers[(session_id, at)].append(transfer_id)
        for event_id, session_id, at in db.session.execute(
            select(SessionEvent.id, SessionEvent.consultation_id, SessionEvent.at)
            .where(SessionEvent.kind == "refunded", SessionEvent.consultation_id.in_(refunded))
            .order_by(SessionEvent.id)
        ):
            events_at[(session_id, at)].append(event_id)
        for key, event_ids in events_at.items():
            found.update(zip(event_ids, transfers.get(key, ()), strict=False))
    return found


def names_of(events) -> dict[int, User]:
    """The people the events name (actors and subjects), by id, in one query."""
    ids = {i for e in events for i in (e.actor_id, e.subject_id) if i is not None}
    if not ids:
        return {}
    return {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))}
