"""The double-entry ledger: every movement of money is one balanced transfer, in integer paise.

Money leaves a *debited* account and arrives in a *credited* one; an account's balance is
its credits minus its debits. The cached `balance_paise` is moved by the same transaction
as the entries, with an atomic UPDATE, so concurrent transfers cannot lose an update and a
user wallet cannot go below zero (the UPDATE's guard, and a CHECK constraint behind it).
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    String,
    UniqueConstraint,
    case,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from .db import UTCDateTime, db
from .errors import PaymentRequired

USER_WALLET = "user_wallet"
ASTROLOGER_EARNINGS = "astrologer_earnings"
PLATFORM_REVENUE = "platform_revenue"
EXTERNAL_PAYMENTS = "external_payments"  # the outside world: money enters Consult from here

DEBIT, CREDIT = "debit", "credit"


class Account(db.Model):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("kind", "owner_id", name="uq_accounts_kind_owner"),
        CheckConstraint("kind != 'user_wallet' OR balance_paise >= 0", name="wallet_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    balance_paise: Mapped[int] = mapped_column(default=0)


class Transfer(db.Model):
    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # recharge | settlement
    memo: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A settlement names its consultation; the unique constraint makes a second
    # settlement of one consultation impossible at the database level.
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultations.id"), unique=True)
    external_reference: Mapped[str | None] = mapped_column(String(100))


class Entry(db.Model):
    __tablename__ = "entries"
    __table_args__ = (
        CheckConstraint("amount_paise > 0", name="positive_amount"),
        CheckConstraint("direction IN ('debit', 'credit')", name="direction"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    direction: Mapped[str] = mapped_column(String(6))
    amount_paise: Mapped[int]


@dataclass(frozen=True)
class Move:
    """`amount_paise` leaves `source` (debited) and arrives in `target` (credited)."""

    source: Account
    target: Account
    amount_paise: int


def open_account(kind: str, owner_id: int | None = None) -> Account:
    """Return the account of this kind and owner, creating it (in the caller's transaction)."""
    owner = Account.owner_id.is_(None) if owner_id is None else Account.owner_id == owner_id
    account = db.session.scalar(select(Account).where(Account.kind == kind, owner))
    if account is None:
        account = Account(kind=kind, owner_id=owner_id, balance_paise=0)
        db.session.add(account)
        db.session.flush()
    return account


def lock(account: Account) -> Account:
    """Hold the account's row until the transaction ends (SQLite already holds the database)."""
    db.session.execute(select(Account.id).where(Account.id == account.id).with_for_update())
    return account


def wallet_of(user_id: int) -> Account:
    return open_account(USER_WALLET, user_id)


def earnings_of(astrologer_id: int) -> Account:
    return open_account(ASTROLOGER_EARNINGS, astrologer_id)


def balance(account: Account) -> int:
    """Read the balance fresh from the database (the cached column, kept equal to the entries)."""
    return db.session.scalar(select(Account.balance_paise).where(Account.id == account.id))


def post_transfer(
    kind: str,
    moves: list[Move],
    *,
    at: datetime,
    memo: str,
    consultation_id: int | None = None,
    external_reference: str | None = None,
) -> Transfer:
    """Record one balanced transfer in the caller's transaction; zero-amount moves are skipped.

    Raises PaymentRequired (and the caller's transaction must roll back) if a user wallet
    would go negative.
    """
    transfer = Transfer(
        kind=kind,
        memo=memo,
        created_at=at,
        consultation_id=consultation_id,
        external_reference=external_reference,
    )
    db.session.add(transfer)
    db.session.flush()
    for move in moves:
        if not isinstance(move.amount_paise, int) or move.amount_paise < 0:
            raise ValueError("a move is a non-negative whole number of paise")
        if move.amount_paise == 0:
            continue
        _shift(move.source, -move.amount_paise)
        _shift(move.target, move.amount_paise)
        db.session.add_all(
            [
                Entry(
                    transfer_id=transfer.id,
                    account_id=move.source.id,
                    direction=DEBIT,
                    amount_paise=move.amount_paise,
                ),
                Entry(
                    transfer_id=transfer.id,
                    account_id=move.target.id,
                    direction=CREDIT,
                    amount_paise=move.amount_paise,
                ),
            ]
        )
    db.session.flush()
    return transfer


def _shift(account: Account, delta: int) -> None:
    statement = (
        update(Account)
        .where(Account.id == account.id)
        .values(balance_paise=Account.balance_paise + delta)
        .execution_options(synchronize_session=False)
    )
    if account.kind == USER_WALLET and delta < 0:
        statement = statement.where(Account.balance_paise >= -delta)
    if db.session.execute(statement).rowcount != 1:
        raise PaymentRequired("Insufficient balance")
    db.session.expire(account, ["balance_paise"])


def entries_balance(account_id: int) -> int:
    """The balance as the sum of the account's entries: what the cached column must equal."""
    signed = case((Entry.direction == CREDIT, Entry.amount_paise), else_=-Entry.amount_paise)
    return db.session.scalar(
        select(func.coalesce(func.sum(signed), 0)).where(Entry.account_id == account_id)
    )


def statement_of(account: Account, limit: int = 100) -> list[dict]:
    """The account's movements, newest first, one line per transfer: what a wallet page shows."""
    signed = case((Entry.direction == CREDIT, Entry.amount_paise), else_=-Entry.amount_paise)
    rows = db.session.execute(
        select(Transfer, func.sum(signed).label("amount"))
        .join(Entry, Entry.transfer_id == Transfer.id)
        .where(Entry.account_id == account.id)
        .group_by(Transfer.id)
        .order_by(Transfer.created_at.desc(), Transfer.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "at": transfer.created_at,
            "kind": transfer.kind,
            "memo": transfer.memo,
            "consultation_id": transfer.consultation_id,
            "amount_paise": amount,
        }
        for transfer, amount in rows
    ]
