"""After the end: the user's rating, and reports of a problem that an admin resolves.

A rating is 1 to 5 stars with an optional comment, for a session that ended with billed
time; it can be changed for 24 hours after it was first given. A report opens a dispute
(one open per session, within 7 days of the end) that an admin closes with a refund or a
rejection; every step is an audit event naming who acted.
"""

from datetime import datetime, timedelta

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from . import audit, consultations
from .accounts import User
from .consultations import refunds
from .db import UTCDateTime, db, status_is, write_transaction
from .errors import Conflict, Forbidden, Invalid, NotFound
from .numbers import is_id, is_whole
from .realtime import Hub

EDIT_WINDOW = timedelta(hours=24)
REPORT_WINDOW = timedelta(days=7)
MAX_COMMENT = 1000
MAX_REPORT = 2000
CATEGORIES = ("astrologer_absent", "quality", "billing", "abuse", "other")
OPEN, REFUNDED, REJECTED = "open", "refunded", "rejected"
_open = text("status = 'open'")


class Rating(db.Model):
    __tablename__ = "ratings"
    __table_args__ = (CheckConstraint("stars BETWEEN 1 AND 5", name="stars"),)

    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"), primary_key=True)
    astrologer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    stars: Mapped[int]
    comment: Mapped[str | None] = mapped_column(String(MAX_COMMENT))
    first_rated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Report(db.Model):
    __tablename__ = "reports"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'refunded', 'rejected')", name="status"),
        Index("ix_reports_status_created_at", "status", "created_at"),
        Index(
            "uq_reports_one_open_per_session",
            "consultation_id",
            unique=True,
            sqlite_where=_open,
            postgresql_where=_open,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"), index=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    category: Mapped[str] = mapped_column(String(24))
    text: Mapped[str] = mapped_column(String(MAX_REPORT))
    status: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    refund_paise: Mapped[int] = mapped_column(default=0, server_default="0")
    note: Mapped[str | None] = mapped_column(String(1000))
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    is_open = status_is(OPEN)
    is_refunded = status_is(REFUNDED)


# ---------------------------------------------------------------- ratings


def _own_ended(user: User, consultation_id) -> consultations.Consultation:
    """The user's own session (others see NotFound), which must have ended."""
    consultation = consultations.get_for_party(consultation_id, user)
    if consultation.party_role(user.id) != "user":
        raise Forbidden("Only the session's user can do this")
    if not consultation.is_ended:
        raise Conflict("The session has not ended yet")
    return consultation


def rate(user: User, consultation_id, stars, comment, *, at: datetime) -> Rating:
    """Rate an ended session with billed time; again within 24 hours replaces the rating."""
    if not is_whole(stars, 1, 5):
        raise Invalid("stars must be a whole number from 1 to 5")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        raise Invalid(f"comment must be text of at most {MAX_COMMENT:,} characters")
    comment = (comment or "").strip() or None
    consultation = _own_ended(user, consultation_id)
    if not consultation.billed_seconds:
        raise Conflict("Only a session with billed time can be rated")
    with write_transaction():
        rating = db.session.get(Rating, consultation.id, with_for_update=True)
        if rating is None:
            rating = Rating(
                consultation_id=consultation.id,
                astrologer_id=consultation.astrologer_id,
                first_rated_at=at,
            )
            db.session.add(rating)
        elif at - rating.first_rated_at > EDIT_WINDOW:
            raise Conflict("A rating can be changed for 24 hours only")
        rating.stars, rating.comment, rating.rated_at = stars, comment, at
        audit.record(consultation.id, "rated", at=at, actor_id=user.id, detail=f"{stars} stars")
    return rating


def rating_of(viewer: User, consultation_id) -> Rating:
    consultation = consultations.get_for_party(consultation_id, viewer)
    rating = db.session.get(Rating, consultation.id)
    if rating is None:
        raise NotFound("This session has no rating")
    return rating


def rating_summary(astrologer_ids) -> dict[int, tuple[float, int]]:
    """Each rated astrologer's (average stars, count)."""
    rows = db.session.execute(
        select(Rating.astrologer_id, func.avg(Rating.stars), func.count())
        .where(Rating.astrologer_id.in_(list(astrologer_ids)))
        .group_by(Rating.astrologer_id)
    ).all()
    return {astrologer: (round(float(avg), 1), count) for astrologer, avg, count in rows}


def recent_ratings(astrologer_id: int, limit: int = 5) -> list[Rating]:
    return list(
        db.session.scalars(
            select(Rating)
            .where(Rating.astrologer_id == astrologer_id)
            .order_by(Rating.rated_at.desc())
            .limit(limit)
        )
    )


# ---------------------------------------------------------------- reports


def report(user: User, consultation_id, category, text, *, at: datetime) -> Report:
    """Report a problem with an ended session, within 7 days of its end."""
    if category not in CATEGORIES:
        raise Invalid(f"category must be one of {', '.join(CATEGORIES)}")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_REPORT:
        raise Invalid(f"text must be 1 to {MAX_REPORT:,} characters")
    consultation = _own_ended(user, consultation_id)
    if at - consultation.ended_at > REPORT_WINDOW:
        raise Conflict("A problem can be reported within 7 days of the end only")
    try:
        with write_transaction():
            if _open_report(consultation.id) is not None:
                raise Conflict("This session already has an open report")
            filed = Report(
                consultation_id=consultation.id,
                reporter_id=user.id,
                category=category,
                text=text.strip(),
                status=OPEN,
                created_at=at,
            )
            db.session.add(filed)
            db.session.flush()
            audit.record(consultation.id, "reported", at=at, actor_id=user.id, reason=category)
    except IntegrityError:  # a concurrent report got in first
        raise Conflict("This session already has an open report") from None
    return filed


def _open_report(consultation_id: int) -> Report | None:
    return db.session.scalar(
        select(Report).where(Report.consultation_id == consultation_id, Report.status == OPEN)
    )


def report_of(viewer: User, consultation_id) -> Report:
    """The latest report of a session its parties (or an admin) may read."""
    consultation = consultations.get_for_party(consultation_id, viewer)
    found = db.session.scalar(
        select(Report)
        .where(Report.consultation_id == consultation.id)
        .order_by(Report.created_at.desc(), Report.id.desc())
        .limit(1)
    )
    if found is None:
        raise NotFound("This session has no report")
    return found


def reports(status: str | None = None, limit: int = 200) -> list[Report]:
    """For admins: reports, oldest first (the queue)."""
    query = select(Report).order_by(Report.created_at, Report.id).limit(limit)
    if status:
        if status not in (OPEN, REFUNDED, REJECTED):
            raise Invalid("status must be one of open, refunded, rejected")
        query = query.where(Report.status == status)
    return list(db.session.scalars(query))


def resolve(admin: User, report_id, refund_paise, note, *, at: datetime, hub: Hub) -> Report:
    """Close a report: refund all or part of its session (refunded) or nothing (rejected)."""
    if not admin.is_admin:
        raise Forbidden("Only admins can resolve reports")
    if not is_id(report_id):
        raise NotFound("Report not found")
    if not is_whole(refund_paise, 0, 10**12):
        raise Invalid("refundPaise must be a whole number of paise, 0 to reject")
    note = refunds.check_note(note)
    with write_transaction():
        found = db.session.get(Report, report_id, with_for_update=True)
        if found is None:
            raise NotFound("Report not found")
        if found.status != OPEN:
            raise Conflict("This report is already resolved")
        consultation = consultations.model.locked(found.consultation_id)
        if refund_paise:
            refunds.refund_in_transaction(
                consultation,
                refund_paise,
                at=at,
                actor_id=admin.id,
                reason=refunds.REPORT,
                note=note,
            )
        found.status = REFUNDED if refund_paise else REJECTED
        found.refund_paise, found.note = refund_paise, note
        found.resolved_by_id, found.resolved_at = admin.id, at
        audit.record(
            consultation.id,
            "report_resolved",
            at=at,
            actor_id=admin.id,
            reason=found.status,
            cost_paise=refund_paise or None,
            detail=note[:200],
        )
    if refund_paise:
        refunds.announce(consultation, refund_paise, refunds.REPORT, hub)
    return found
