"""What operators read of the business: per day or per astrologer over a range of days.

Sessions, billed time, gross, the platform's commission, refunds, the end-reason mix and the
rating average, each from a grouped query over the `(status, ended_at)` index, so a range
costs what it holds, however long the history. The commission is read from the ledger (what
the settlements actually paid the platform), not recomputed from today's percentage.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, func, select

from . import ledger
from .accounts import User
from .consultations import ENDED, Consultation
from .db import db
from .errors import Invalid
from .feedback import Rating

BY_DAY, BY_ASTROLOGER = "day", "astrologer"
MAX_DAYS = 366


@dataclass
class Row:
    key: str
    astrologer_id: int | None = None
    sessions: int = 0
    billed_seconds: int = 0
    gross_paise: int = 0
    commission_paise: int = 0
    refunded_paise: int = 0
    end_reasons: dict = field(default_factory=dict)
    rating_average: float | None = None

    @property
    def average_seconds(self) -> int:
        return self.billed_seconds // self.sessions if self.sessions else 0


def parse_range(start: str | None, end: str | None, *, today: date) -> tuple[date, date]:
    """`from` and `to` as YYYY-MM-DD, both included; default the last 30 days."""
    try:
        last = date.fromisoformat(end) if end else today
        first = date.fromisoformat(start) if start else last - timedelta(days=29)
    except (TypeError, ValueError):
        raise Invalid("from and to must be dates like 2026-12-31") from None
    if first > last:
        raise Invalid("from must not be after to")
    if (last - first).days >= MAX_DAYS:
        raise Invalid(f"A range covers at most {MAX_DAYS} days")
    return first, last


def report(first: date, last: date, by: str) -> list[Row]:
    """One row per day (every day of the range, empty ones too) or per astrologer with sessions."""
    if by not in (BY_DAY, BY_ASTROLOGER):
        raise Invalid("by must be day or astrologer")
    c = Consultation.__table__
    lo = datetime.combine(first, time.min, tzinfo=UTC)
    hi = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    in_range = and_(c.c.status == ENDED, c.c.ended_at >= lo, c.c.ended_at < hi)
    key = func.date(c.c.ended_at) if by == BY_DAY else c.c.astrologer_id

    rows: dict[object, Row] = {}

    def row(k) -> Row:
        k = str(k)
        if k not in rows:
            rows[k] = Row(key=k)
        return rows[k]

    for k, n, seconds, gross, refunded in db.session.execute(
        select(
            key,
            func.count(),
            func.coalesce(func.sum(c.c.billed_seconds), 0),
            func.coalesce(func.sum(c.c.total_cost_paise), 0),
            func.coalesce(func.sum(c.c.refunded_paise), 0),
        )
        .where(in_range)
        .group_by(key)
    ):
        r = row(k)
        r.sessions, r.billed_seconds, r.gross_paise, r.refunded_paise = n, seconds, gross, refunded
    for k, reason, n in db.session.execute(
        select(key, c.c.end_reason, func.count()).where(in_range).group_by(key, c.c.end_reason)
    ):
        row(k).end_reasons[reason] = n
    platform = ledger.account_id(ledger.PLATFORM_REVENUE)
    t, e = ledger.Transfer.__table__, ledger.Entry.__table__
    for k, commission in db.session.execute(
        select(key, func.sum(e.c.amount_paise))
        .select_from(c.join(t, t.c.consultation_id == c.c.id).join(e, e.c.transfer_id == t.c.id))
        .where(in_range, e.c.account_id == platform, e.c.direction == ledger.CREDIT)
        .group_by(key)
    ):
        row(k).commission_paise = commission or 0
    r_ = Rating.__table__
    for k, average in db.session.execute(
        select(key, func.avg(r_.c.stars))
        .select_from(c.join(r_, r_.c.consultation_id == c.c.id))
        .where(in_range)
        .group_by(key)
    ):
        row(k).rating_average = round(float(average), 1)

    if by == BY_DAY:
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        return [rows.get(d.isoformat()) or Row(key=d.isoformat()) for d in days]
    names = dict(
        db.session.execute(
            select(User.id, User.display_name).where(User.id.in_([int(k) for k in rows]))
        ).all()
    )
    for k, r in rows.items():
        r.astrologer_id, r.key = int(k), names.get(int(k), k)
    return sorted(rows.values(), key=lambda r: (-r.gross_paise, r.key))


CSV_COLUMNS = (
    "key",
    "sessions",
    "billedSeconds",
    "averageSeconds",
    "grossPaise",
    "commissionPaise",
    "refundedPaise",
    "ratingAverage",
    "endReasons",
)


# ---------------------------------------------------------------- an astrologer's earnings


@dataclass(frozen=True)
class Earning:
    """What one session (or one day of sessions) earned an astrologer."""

    key: str  # the day, or the session's id
    sessions: int
    gross_paise: int
    commission_paise: int
    refunded_paise: int  # the astrologer's share of the refunds
    net_paise: int  # what reached their earnings account: gross - commission - refunds

    @classmethod
    def total(cls, lines: list["Earning"]) -> "Earning":
        """The statement's bottom line: every column summed."""
        return cls(
            key="Total",
            sessions=sum(e.sessions for e in lines),
            gross_paise=sum(e.gross_paise for e in lines),
            commission_paise=sum(e.commission_paise for e in lines),
            refunded_paise=sum(e.refunded_paise for e in lines),
            net_paise=sum(e.net_paise for e in lines),
        )


def earnings(astrologer_id: int, first: date, last: date, by: str) -> list[Earning]:
    """The astrologer's statement from their earnings account's own entries, per day of the
    money's movement or per session: a settlement credits them, a refund debits their share."""
    if by not in (BY_DAY, "session"):
        raise Invalid("by must be day or session")
    account = ledger.account_id(ledger.ASTROLOGER_EARNINGS, astrologer_id)
    c, t, e = Consultation.__table__, ledger.Transfer.__table__, ledger.Entry.__table__
    lo = datetime.combine(first, time.min, tzinfo=UTC)
    hi = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    session = func.coalesce(t.c.consultation_id, t.c.refund_of_id)
    rows = db.session.execute(
        select(
            session, t.c.kind, e.c.direction, e.c.amount_paise, c.c.total_cost_paise, t.c.created_at
        )
        .select_from(e.join(t, t.c.id == e.c.transfer_id).join(c, c.c.id == session))
        .where(e.c.account_id == account, t.c.created_at >= lo, t.c.created_at < hi)
        .order_by(t.c.created_at, t.c.id)
    ).all()
    groups: dict[str, dict] = {}
    for session_id, kind, direction, amount, cost, moved_at in rows:
        key = str(session_id) if by == "session" else _day(moved_at)
        g = groups.setdefault(key, {"ids": set(), "gross": 0, "earned": 0, "refunded": 0})
        if kind == "settlement":
            g["ids"].add(session_id)
            g["gross"] += cost
            g["earned"] += amount
        elif direction == ledger.DEBIT:
            g["refunded"] += amount
    return [
        Earning(
            key=key,
            sessions=len(g["ids"]),
            gross_paise=g["gross"],
            commission_paise=g["gross"] - g["earned"],
            refunded_paise=g["refunded"],
            net_paise=g["earned"] - g["refunded"],
        )
        for key, g in groups.items()
    ]


def _day(moment) -> str:
    """The UTC day of an instant (SQLite hands back naive UTC, PostgreSQL aware)."""
    return (moment if moment.tzinfo is None else moment.astimezone(UTC)).date().isoformat()
