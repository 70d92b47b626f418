"""Idempotency keys: a retried request with the same key replays the first answer.

The record is written in the same transaction as the effect it describes, so a crash can
never leave an effect without its record (a retry would repeat it) or the reverse.
"""

import json
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, bindparam, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from .db import UTCDateTime, db
from .errors import IdempotencyMismatch, Invalid
from .statements import Statement

MAX_KEY_LENGTH = 200


class IdempotencyRecord(db.Model):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_user_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    fingerprint: Mapped[str] = mapped_column(String(200))
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# An end with a key runs both, on the driver's cursor (statements.py).
_records = IdempotencyRecord.__table__
_FIND = Statement(
    select(_records.c.fingerprint, _records.c.response).where(
        _records.c.user_id == bindparam("user_id"), _records.c.key == bindparam("key")
    )
)
_INSERT = Statement(insert(_records))


def check_key(key) -> str | None:
    """Validate a client-supplied key (None means the request is not idempotent)."""
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise Invalid(f"Idempotency key must be a string of 1 to {MAX_KEY_LENGTH} characters")
    return key


def replay(user_id: int, key: str | None, fingerprint: str) -> dict | None:
    """Return the stored answer for this key, None if it is new; refuse a reused key."""
    if key is None:
        return None
    record = _FIND.run({"user_id": user_id, "key": key}).one_or_none()
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyMismatch("This Idempotency-Key was already used for a different request")
    return json.loads(record.response)


def remember(user_id: int, key: str | None, fingerprint: str, response: dict, at: datetime):
    """Store the answer in the caller's transaction."""
    if key is not None:
        _INSERT.run(
            {
                "user_id": user_id,
                "key": key,
                "fingerprint": fingerprint,
                "response": json.dumps(response),
                "created_at": at,
            },
        )
