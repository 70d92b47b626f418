"""People who use Consult: end users, astrologers and admins, and how they prove who they are."""

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from . import off_the_loop, passwords
from .db import UTCDateTime, db, write_transaction
from .errors import Conflict, Forbidden, Invalid

ROLES = ("user", "astrologer", "admin")
MAX_BIO = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SUSPENDED = "This account is suspended"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,31}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 128


class RoleChecks:
    """What a role allows, for anything with a `role`: a User, or a socket's Caller."""

    @property
    def is_user(self) -> bool:
        """An end user (the paying party), as opposed to an astrologer or an admin."""
        return self.role == "user"

    @property
    def is_astrologer(self) -> bool:
        return self.role == "astrologer"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class User(RoleChecks, UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'astrologer', 'admin')", name="role"),
        CheckConstraint(
            "role != 'astrologer' OR rate_paise_per_minute > 0", name="astrologer_has_rate"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    rate_paise_per_minute: Mapped[int | None]
    speciality: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Astrologers: whether they take requests, and how many chats at once (None: no cap).
    availability: Mapped[str] = mapped_column(String(8), default="online", server_default="online")
    max_sessions: Mapped[int | None]
    bio: Mapped[str | None] = mapped_column(String(MAX_BIO))  # an astrologer's, set by an admin
    # Suspension (consult/people.py): while `suspended_at` is set the account cannot sign in
    # and its tokens and browser sign-ins are refused. `signed_out_at` outlives a restore:
    # browser sign-ins from before the last suspension never count again (see `get_id`).
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None

    def get_id(self) -> str:
        """What a browser's sign-in remembers (Flask-Login's "alternative token"): the id, and
        once the account has been suspended also that instant, so older sign-ins go stale."""
        if self.signed_out_at is None:
            return str(self.id)
        return f"{self.id}.{(self.signed_out_at - EPOCH) // timedelta(microseconds=1)}"


@dataclass(frozen=True)
class Caller(RoleChecks):
    """Who a long-lived connection acts for: a user's id and role, kept without a session."""

    id: int
    role: str


class ApiToken(db.Model):
    """A bearer token for programs; only its hash is stored, so a database leak grants nothing."""

    __tablename__ = "api_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BrowserSignIn(db.Model):
    """One browser's sign-in, named by a digest of the random marker in its session cookie.

    The cookie is signed, not stored: without this row a copy of it taken before the
    sign-out would stay good until the secret key changed. Signing out closes the row.
    """

    __tablename__ = "browser_sign_ins"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    signed_in_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signed_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def open_sign_in(user: User, key: str, *, at: datetime) -> None:
    with write_transaction():
        db.session.add(BrowserSignIn(key=key, user_id=user.id, signed_in_at=at))


def close_sign_in(key: str, *, at: datetime) -> None:
    with write_transaction():
        row = db.session.get(BrowserSignIn, key)
        if row is not None and row.signed_out_at is None:
            row.signed_out_at = at


def sign_in_is_open(user_id: int, key: str | None) -> bool:
    row = db.session.get(BrowserSignIn, key) if key else None
    return row is not None and row.user_id == user_id and row.signed_out_at is None


def validate_credentials(username, password) -> tuple[str, str]:
    """Return a normalised (username, password) pair or raise Invalid with the reason."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise Invalid("username and password must be strings")
    username = normal_username(username)
    if not USERNAME.match(username):
        raise Invalid(
            "Username must be 3 to 32 characters: lowercase letters, digits, '.', '_' or '-'"
        )
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Invalid(f"Password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if (reason := passwords.weakness(password, username)) is not None:
        raise Invalid(reason)
    return username, password


def create_user(
    username,
    password,
    *,
    role: str = "user",
    now: datetime,
    display_name: str | None = None,
    rate_paise_per_minute: int | None = None,
    speciality: str | None = None,
) -> User:
    """Create an account and its wallet or earnings account; raise Conflict if the name is taken."""
    from . import ledger

    username, password = validate_credentials(username, password)
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    if role == "astrologer" and not (
        isinstance(rate_paise_per_minute, int) and rate_paise_per_minute > 0
    ):
        raise Invalid("an astrologer needs a positive rate in paise per minute")
    user = User(
        username=username,
        display_name=(display_name or username).strip()[:80],
        password_hash=hash_password(password),
        role=role,
        rate_paise_per_minute=rate_paise_per_minute if role == "astrologer" else None,
        speciality=speciality,
        created_at=now,
    )
    try:
        with write_transaction():
            db.session.add(user)
            db.session.flush()
            if role == "user":
                ledger.account_id(ledger.USER_WALLET, user.id)
            elif role == "astrologer":
                ledger.account_id(ledger.ASTROLOGER_EARNINGS, user.id)
    except IntegrityError:
        raise Conflict("That username is taken") from None
    return user


# Password hashes run in a thread of their own. Each costs ~95 ms of CPU (scrypt, with
# hashlib letting go of the GIL): on the event loop a sign-up or a sign-in stalled every
# socket of the process that long (an end, a chat message), and in gevent's shared pool an
# fsync of the WAL would wait behind it. One thread: sign-ins queue there, not the sessions.
_HASHING = off_the_loop.OwnPool(1)


def hash_password(password: str) -> str:
    # The module's name looked up at each call: tests and benchmarks swap in a cheap hash.
    return off_the_loop.run(generate_password_hash, password, pool=_HASHING)


def _password_matches(password_hash: str, password: str) -> bool:
    return off_the_loop.run(check_password_hash, password_hash, password, pool=_HASHING)


class Suspended(Forbidden):
    """The password matched, but an admin has suspended the account."""


def normal_username(username) -> str:
    """The one form of a username: what sign-up stores, sign-in looks up, the throttle counts."""
    return str(username).strip().lower()[:64]


def authenticate(username, password) -> User | None:
    """Return the user whose password matches, else None; raise Suspended for a suspended
    account (only to someone who knows its password: a wrong one answers None as ever).

    An unknown username costs a password check too, against a hash of nothing: the answer's
    timing does not tell who has an account (issue 13 F3).
    """
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    user = db.session.scalar(select(User).where(User.username == normal_username(username)))
    if user is None:
        _password_matches(_nobodys_hash(), password)
        return None
    if not _password_matches(user.password_hash, password):
        return None
    if user.is_suspended:
        raise Suspended(SUSPENDED)
    return user


@functools.cache
def _nobodys_hash() -> str:
    """A hash in the production format (so it costs what a real check costs), of a random secret."""
    return hash_password(secrets.token_urlsafe(16))


def user_for_sign_in(remembered: str) -> User | None:
    """The account a browser's sign-in names (its `get_id`), unless it is suspended or the
    sign-in predates its last suspension."""
    user_id = remembered.partition(".")[0]
    if not (user_id.isascii() and user_id.isdigit()) or len(user_id) > 18:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.is_suspended or user.get_id() != remembered:
        return None
    return user


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User, *, now: datetime, ttl_seconds: int) -> str:
    """Create a bearer token that survives restarts and expires after `ttl_seconds`."""
    token = secrets.token_urlsafe(32)
    user_id = user.id
    with write_transaction():  # never a read transaction upgraded to a write (SQLite)
        db.session.add(
            ApiToken(
                token_hash=_hash(token),
                user_id=user_id,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_seconds),
            )
        )
    return token


def user_for_token(token: str, *, now: datetime) -> User | None:
    """Return the owner of a live token, else None."""
    if not token or len(token) > 256:
        return None
    row = db.session.get(ApiToken, _hash(token))
    if row is None or row.expires_at <= now:
        return None
    user = db.session.get(User, row.user_id)
    return None if user is None or user.is_suspended else user  # suspension deletes them too


def astrologers() -> list[User]:
    """The astrologers users can see: a suspended one is not on the list."""
    return list(
        db.session.scalars(
            select(User)
            .where(User.role == "astrologer", User.suspended_at.is_(None))
            .order_by(User.id)
        )
    )
