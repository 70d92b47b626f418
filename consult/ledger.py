"""The double-entry ledger: every movement of money is one balanced transfer, in integer paise.

Money leaves a *debited* account and arrives in a *credited* one; an account's balance is
its credits minus its debits. Every transfer moves exactly one user wallet (a recharge into
it, a settlement out of it, a refund back), and only a wallet keeps a running
`balance_paise`: it has a floor to guard, so the same transaction moves it with one atomic
UPDATE that refuses to go below zero (a CHECK constraint stands behind it). Earnings, the
platform's revenue and the outside world's account have no floor; their balance is the sum
of their entries, so no transfer writes their rows, and concurrent ends of one astrologer's
sessions (all of them paying the one platform) never queue on a shared row.
"""

import weakref
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    bindparam,
    case,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from . import statements
from .db import UTCDateTime, db
from .errors import PaymentRequired
from .statements import Statement, in_lean_transaction

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
    balance_paise: Mapped[int] = mapped_column(default=0)  # user wallets only; 0 elsewhere


class Transfer(db.Model):
    __tablename__ = "transfers"
    __table_args__ = (
        Index(
            "ix_transfers_refund_of_id",
            "refund_of_id",
            sqlite_where=text("refund_of_id IS NOT NULL"),
            postgresql_where=text("refund_of_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # recharge | settlement | refund
    memo: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A settlement names its consultation; the unique constraint makes a second
    # settlement of one consultation impossible at the database level.
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultations.id"), unique=True)
    # A refund names the session it gives money back for (several refunds may name one);
    # indexed for refunds alone, so a settlement or a recharge writes no page of it.
    refund_of_id: Mapped[int | None] = mapped_column(ForeignKey("consultations.id"))
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
    """`amount_paise` leaves account `source` (debited) and arrives in account `target` (credited).

    Accounts are named by id: `account_id` finds them, once per process.
    """

    source: int
    target: int
    amount_paise: int

    def reversed(self) -> "Move":
        return Move(self.target, self.source, self.amount_paise)


def consultation_moves(user_id: int, astrologer_id: int, amount: int, platform_share: int):
    """A consultation's money leaving the user's wallet: the astrologer's share to their
    earnings, the rest to the platform. A refund is the same split, reversed."""
    wallet = account_id(USER_WALLET, user_id)
    return [
        Move(wallet, account_id(ASTROLOGER_EARNINGS, astrologer_id), amount - platform_share),
        Move(wallet, account_id(PLATFORM_REVENUE), platform_share),
    ]


def open_account(kind: str, owner_id: int | None = None) -> Account:
    """Return the account of this kind and owner, creating it (in the caller's transaction)."""
    owner = Account.owner_id.is_(None) if owner_id is None else Account.owner_id == owner_id
    account = db.session.scalar(select(Account).where(Account.kind == kind, owner))
    if account is None:
        account = Account(kind=kind, owner_id=owner_id, balance_paise=0)
        db.session.add(account)
        db.session.flush()
    return account


# An account's id never changes: the hot paths (an end, a chat, a recharge) look each one up
# once per process and database. Only committed accounts are remembered, so a rolled-back
# creation can never leave a dangling id behind.
_known_ids: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()
_OWNED_ACCOUNT_ID = Statement(
    select(Account.id).where(
        Account.kind == bindparam("kind"), Account.owner_id == bindparam("owner_id")
    )
)
_UNOWNED_ACCOUNT_ID = Statement(  # the platform's and the outside world's
    select(Account.id).where(Account.kind == bindparam("kind"), Account.owner_id.is_(None))
)


def account_id(kind: str, owner_id: int | None = None) -> int:
    """The id of the account of this kind and owner, creating it if need be."""
    known = _known_ids.setdefault(statements.engine(), {})
    found = known.get((kind, owner_id))
    if found is not None:
        return found
    # Its first use in this process: a plain read of the id (the ORM's object load cost a
    # sixth of the scheduler's CPU ending seeded sessions), creating the account if need be.
    query = _UNOWNED_ACCOUNT_ID if owner_id is None else _OWNED_ACCOUNT_ID
    found = query.run({"kind": kind, "owner_id": owner_id}).scalar()
    if found is not None and in_lean_transaction():
        # A lean transaction cannot create accounts (only the session does), so the one it
        # found was committed before it began: its id is settled.
        known[(kind, owner_id)] = found
        return found
    found = found or open_account(kind, owner_id).id
    # Remembered once this transaction commits (it may be the one creating the account).
    db.session.info.setdefault("consult_account_ids", {})[(kind, owner_id)] = found
    return found


@event.listens_for(Session, "after_commit")
def _remember_account_ids(session) -> None:
    pending = session.info.pop("consult_account_ids", None)
    if pending:
        _known_ids.setdefault(session.get_bind(), {}).update(pending)


@event.listens_for(Session, "after_rollback")
def _forget_account_ids(session) -> None:
    session.info.pop("consult_account_ids", None)


_accounts, _transfers, _entries = Account.__table__, Transfer.__table__, Entry.__table__
# The hot paths' statements, run on the driver's cursor (statements.py).
_INSERT_TRANSFER = Statement(insert(_transfers).returning(_transfers.c.id))
_INSERT_ENTRY = Statement(insert(_entries))
_LOCKED_BALANCE = Statement(
    select(_accounts.c.balance_paise)
    .where(_accounts.c.id == bindparam("id"), _accounts.c.kind == USER_WALLET)
    .with_for_update()
)
_KIND_AND_BALANCE = select(_accounts.c.kind, _accounts.c.balance_paise).where(
    _accounts.c.id == bindparam("id")
)
# The wallet moves by `:delta`, or no row changes when that would take it below zero.
_MOVE_WALLET = Statement(
    update(_accounts)
    .where(
        _accounts.c.id == bindparam("wallet"),
        _accounts.c.kind == USER_WALLET,
        _accounts.c.balance_paise + bindparam("delta") >= 0,
    )
    .values(balance_paise=_accounts.c.balance_paise + bindparam("delta"))
)


def locked_balance(wallet_id: int) -> int:
    """The wallet's balance, its row held until the transaction ends (SQLite already holds
    the database): nothing can move it before the caller commits."""
    return _LOCKED_BALANCE.run({"id": wallet_id}).scalar_one()


def lock(wallet_id: int) -> int:
    """Hold the wallet's row until the transaction ends (SQLite already holds the database)."""
    locked_balance(wallet_id)
    return wallet_id


def wallet_of(user_id: int) -> Account:
    return open_account(USER_WALLET, user_id)


def earnings_of(astrologer_id: int) -> Account:
    return open_account(ASTROLOGER_EARNINGS, astrologer_id)


def balance(account) -> int:
    """The account's balance, read fresh: a wallet's running balance, or the sum of entries.

    `account` is an Account or an account id.
    """
    account_id_ = account if isinstance(account, int) else account.id
    kind, cached = db.session.execute(_KIND_AND_BALANCE, {"id": account_id_}).one()
    return cached if kind == USER_WALLET else entries_balance(account_id_)


def post_transfer(
    kind: str,
    moves: list[Move],
    *,
    wallet: int,
    at: datetime,
    memo: str,
    consultation_id: int | None = None,
    refund_of_id: int | None = None,
    external_reference: str | None = None,
) -> int:
    """Record one balanced transfer of `wallet`'s money in the caller's transaction;
    zero-amount moves are skipped.

    Three statements whatever the moves: the transfer, its entries, and the guarded UPDATE
    of the wallet's balance. Raises PaymentRequired (and the caller's transaction must roll
    back) if the wallet would go negative. Returns the transfer's id.
    """
    for move in moves:
        if not isinstance(move.amount_paise, int) or move.amount_paise < 0:
            raise ValueError("a move is a non-negative whole number of paise")
        if wallet not in (move.source, move.target):
            raise ValueError("every move of a transfer moves its wallet")
    moves = [m for m in moves if m.amount_paise > 0]
    transfer_id = _INSERT_TRANSFER.run(
        {
            "kind": kind,
            "memo": memo,
            "created_at": at,
            "consultation_id": consultation_id,
            "refund_of_id": refund_of_id,
            "external_reference": external_reference,
        },
    ).scalar_one()
    if not moves:
        return transfer_id
    _INSERT_ENTRY.run_many(
        [
            {
                "transfer_id": transfer_id,
                "account_id": account,
                "direction": direction,
                "amount_paise": m.amount_paise,
            }
            for m in moves
            for account, direction in ((m.source, DEBIT), (m.target, CREDIT))
        ],
    )
    delta = sum(m.amount_paise if m.target == wallet else -m.amount_paise for m in moves)
    if _MOVE_WALLET.run({"wallet": wallet, "delta": delta}).rowcount != 1:
        # Nothing partial can stay: the caller's transaction rolls back on this error.
        raise PaymentRequired("Insufficient balance")
    return transfer_id


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
            "consultation_id": transfer.consultation_id or transfer.refund_of_id,
            "amount_paise": amount,
        }
        for transfer, amount in rows
    ]
