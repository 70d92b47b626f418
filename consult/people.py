"""People as operators see them: find users and astrologers, change an astrologer's rate,
speciality and bio, suspend and restore an account.

Every change is an audit event naming the admin (`actor_id`) and the person (`subject_id`).
A suspension goes through the functions every other path uses: each live session of the
account ends with `admin_ended` and settles once (`end_by_admin`), its waiting requests are
withdrawn (cancelled or declined), its bearer tokens are deleted and its sockets closed. Its
money stays where it is: nothing here posts a transfer.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select

from . import audit, availability, consultations, ledger
from .accounts import MAX_BIO, ApiToken, User
from .consultations import Consultation, refunds
from .db import db, write_transaction
from .errors import Conflict, Forbidden, Invalid, NotFound
from .feedback import Report
from .numbers import MAX_ID  # anything larger names no one
from .policy import Policy
from .realtime import Event, Hub

ROLES = ("user", "astrologer")  # the people an operator looks after (admins are not listed)
PAGE_SIZE = 25
MAX_QUERY = 80
MAX_SPECIALITY = 120
MAX_RATE_PAISE = 1_000_000  # ₹10,000.00 a minute: past this a typo, not a price
NOT_FOUND = "No such person"
# The hub's sign-out event (web/security.py SIGNED_OUT): with "everywhere" it closes every
# socket of the user, not one browser's.
SIGNED_OUT = "session:logout"

# Audit event kinds about a person.
RATE_CHANGED, SPECIALITY_CHANGED, BIO_CHANGED = "rate_changed", "speciality_changed", "bio_changed"
SUSPENDED, RESTORED = "suspended", "restored"
KINDS = (RATE_CHANGED, SPECIALITY_CHANGED, BIO_CHANGED, SUSPENDED, RESTORED)


# ---------------------------------------------------------------- finding people


@dataclass(frozen=True)
class Found:
    """One page of a people search."""

    people: list[User]
    total: int
    page: int
    size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def search(
    text: str = "", role: str | None = None, *, suspended: bool = False, page: int = 1
) -> Found:
    """Users and astrologers whose username or name contains `text` (any case), by username."""
    if role is not None and role not in ROLES:
        raise Invalid("role must be user or astrologer")
    text = (text or "").strip().lower()[:MAX_QUERY]
    where = [User.role.in_([role] if role else ROLES)]
    if text:
        where.append(
            or_(
                User.username.contains(text, autoescape=True),  # stored in lower case
                func.lower(User.display_name).contains(text, autoescape=True),
            )
        )
    if suspended:
        where.append(User.suspended_at.is_not(None))
    total = db.session.scalar(select(func.count()).select_from(User).where(*where))
    page = max(1, min(page, -(-total // PAGE_SIZE) or 1))
    people = db.session.scalars(
        select(User)
        .where(*where)
        .order_by(User.username, User.id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    return Found(list(people), total, page)


def get(person_id) -> User:
    """A user or an astrologer by id; admins, and ids that name no one, are NotFound."""
    if not isinstance(person_id, int) or isinstance(person_id, bool) or not 0 < person_id <= MAX_ID:
        raise NotFound(NOT_FOUND)
    found = db.session.get(User, person_id, populate_existing=True)
    if found is None or found.role not in ROLES:
        raise NotFound(NOT_FOUND)
    return found


def named(text: str) -> User | None:
    """Anyone by username or id ('asha', '#12', '12'); None when nobody answers to it."""
    text = (text or "").strip().lstrip("#").lower()
    if text.isascii() and text.isdigit():
        return db.session.get(User, int(text)) if 0 < int(text) <= MAX_ID else None
    return db.session.scalar(select(User).where(User.username == text)) if text else None


def balance_of(user: User) -> int | None:
    """The person's wallet (a user) or earnings (an astrologer), read without opening one."""
    account = _account_of(user)
    return ledger.balance(account) if account else None


def statement(user: User, limit: int = 100) -> list[dict]:
    """The movements of the person's wallet or earnings account, newest first."""
    account = _account_of(user)
    return ledger.statement_of(account, limit=limit) if account else []


def _account_of(user: User) -> ledger.Account | None:
    kind = ledger.USER_WALLET if user.is_user else ledger.ASTROLOGER_EARNINGS
    return db.session.scalar(
        select(ledger.Account).where(
            ledger.Account.kind == kind, ledger.Account.owner_id == user.id
        )
    )


def sessions_of(user: User, limit: int = 50) -> list[Consultation]:
    return consultations.list_for(user, limit=limit)


def reports_about(user: User, limit: int = 50) -> list[Report]:
    """Reports the user filed, or about the astrologer's sessions, newest first."""
    return list(
        db.session.scalars(
            select(Report)
            .join(Consultation, Consultation.id == Report.consultation_id)
            .where(or_(Consultation.user_id == user.id, Consultation.astrologer_id == user.id))
            .order_by(Report.created_at.desc(), Report.id.desc())
            .limit(limit)
        )
    )


def events_about(user: User, limit: int = 20) -> list[audit.SessionEvent]:
    """What admins did to the person, newest first."""
    return list(
        db.session.scalars(
            select(audit.SessionEvent)
            .where(audit.SessionEvent.subject_id == user.id)
            .order_by(audit.SessionEvent.id.desc())
            .limit(limit)
        )
    )


# ---------------------------------------------------------------- an astrologer's profile


@dataclass(frozen=True)
class Profile:
    """What an admin sets of an astrologer; text fields empty become None."""

    rate_paise_per_minute: int
    speciality: str | None
    bio: str | None

    @classmethod
    def checked(cls, rate, speciality, bio) -> "Profile":
        if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
            raise Invalid("The rate must be more than ₹0.00 a minute")
        if rate > MAX_RATE_PAISE:
            raise Invalid("The rate must be at most ₹10,000.00 a minute")
        speciality, bio = _text(speciality), _text(bio)
        if speciality and len(speciality) > MAX_SPECIALITY:
            raise Invalid(f"The speciality must be at most {MAX_SPECIALITY} characters")
        if bio and len(bio) > MAX_BIO:
            raise Invalid(f"The bio must be at most {MAX_BIO:,} characters")
        return cls(rate, speciality, bio)


def _text(value) -> str | None:
    if value is not None and not isinstance(value, str):
        raise Invalid("Text fields must be text")
    return (value or "").strip().replace("\r\n", "\n") or None


def set_profile(
    admin: User, person_id, profile: Profile, *, at: datetime, hub: Hub, request_id=None
) -> list[str]:
    """Set an astrologer's rate, speciality and bio; return the kinds of what changed.

    A new rate applies to requests made from now on: a session keeps the rate it was
    requested at, so nobody's live bill changes under them.
    """
    _check_admin(admin)
    changed = []
    with write_transaction():
        astrologer = _locked(person_id)
        if not astrologer.is_astrologer:
            raise NotFound(NOT_FOUND)
        old_rate = astrologer.rate_paise_per_minute
        for kind, field, value in (
            (RATE_CHANGED, "rate_paise_per_minute", profile.rate_paise_per_minute),
            (SPECIALITY_CHANGED, "speciality", profile.speciality),
            (BIO_CHANGED, "bio", profile.bio),
        ):
            if getattr(astrologer, field) == value:
                continue
            setattr(astrologer, field, value)
            changed.append(kind)
            detail = (
                f"{old_rate} -> {value} paise a minute"
                if kind == RATE_CHANGED
                else (value or "(cleared)")[:200]
            )
            _record(kind, admin, astrologer, at=at, request_id=request_id, detail=detail)
    if changed:  # open astrologer lists re-render the card (its rate, speciality)
        availability.announce(astrologer, hub)
    return changed


# ---------------------------------------------------------------- suspend and restore


@dataclass(frozen=True)
class Suspension:
    """What suspending an account did: the sessions it ended and the requests it withdrew."""

    person: User
    ended: list[consultations.EndOutcome]
    withdrawn: list[int]

    @property
    def charged_paise(self) -> int:
        return sum(o.consultation.total_cost_paise for o in self.ended if not o.already_ended)


def suspend(
    admin: User, person_id, note, *, at: datetime, hub: Hub, policy: Policy, request_id=None
) -> Suspension:
    """Suspend an account: it cannot sign in, its tokens, sign-ins and sockets stop, and what
    it had going ends as if an admin ended it (each live session settled once)."""
    _check_admin(admin)
    note = refunds.check_note(note)
    with write_transaction():
        person = _locked(person_id)
        if person.is_suspended:
            raise Conflict("This account is already suspended")
        person.suspended_at = person.signed_out_at = at
        db.session.execute(delete(ApiToken).where(ApiToken.user_id == person.id))
        _record(SUSPENDED, admin, person, at=at, request_id=request_id, detail=note[:200])
    # Committed: the account can start nothing new now. Wind down what it already had.
    ended, withdrawn = _wind_down(
        admin, person, note, at=at, hub=hub, policy=policy, request_id=request_id
    )
    if person.is_astrologer:
        availability.announce(person, hub)  # off the users' lists
    # Last, so each open page hears of its session's end before its socket closes.
    hub.publish([person.id], Event(SIGNED_OUT, {"everywhere": True}))
    return Suspension(person, ended, withdrawn)


def _wind_down(admin, person, note, *, at, hub, policy, request_id, passes: int = 3):
    """End the person's live sessions and withdraw their waiting requests, each event
    under the suspension's request id.

    A request an astrologer accepts while this runs is active by the next pass, and ends then.
    """
    ended, withdrawn = [], []
    for _ in range(passes):
        live = db.session.scalars(
            select(Consultation)
            .where(
                or_(Consultation.user_id == person.id, Consultation.astrologer_id == person.id),
                Consultation.status.in_(consultations.LIVE),
            )
            .order_by(Consultation.id)
            .execution_options(populate_existing=True)
        ).all()
        if not live:
            break
        for c in live:
            try:
                if c.status == consultations.ACTIVE:
                    ended.append(
                        consultations.end_by_admin(
                            admin,
                            c.id,
                            note=f"account suspended: {note}",
                            at=at,
                            hub=hub,
                            policy=policy,
                            request_id=request_id,
                        )
                    )
                else:
                    withdraw = (
                        consultations.cancel if c.user_id == person.id else consultations.decline
                    )
                    withdraw(person, c.id, at=at, hub=hub, request_id=request_id)
                    withdrawn.append(c.id)
            except Conflict:  # it moved on meanwhile (accepted, ended): the next pass sees it
                continue
    return ended, withdrawn


def restore(admin: User, person_id, note, *, at: datetime, hub: Hub, request_id=None) -> User:
    """Lift a suspension: the account may sign in again (its old sign-ins and tokens stay void)."""
    _check_admin(admin)
    note = refunds.check_note(note)
    with write_transaction():
        person = _locked(person_id)
        if not person.is_suspended:
            raise Conflict("This account is not suspended")
        person.suspended_at = None
        _record(RESTORED, admin, person, at=at, request_id=request_id, detail=note[:200])
    if person.is_astrologer:
        availability.announce(person, hub)
    return person


# ---------------------------------------------------------------- shared


def _check_admin(admin: User) -> None:
    if not admin.is_admin:
        raise Forbidden("Only admins can do this")


def _locked(person_id) -> User:
    """The person, their row locked for the rest of the transaction."""
    get(person_id)  # NotFound for admins and ids that name no one
    return db.session.get(User, person_id, with_for_update=True, populate_existing=True)


def _record(kind: str, admin: User, subject: User, **fields) -> None:
    audit.record(None, kind, actor_id=admin.id, subject_id=subject.id, **fields)
