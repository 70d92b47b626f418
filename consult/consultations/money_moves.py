"""A consultation's money moves: its settlement takes the cost from the user's wallet, a
refund gives some of it back. Each is one balanced ledger transfer and the audit event that
tells of it, written together in the caller's transaction, so the books and the trail agree.
"""

from dataclasses import dataclass
from datetime import datetime

from .. import audit, ledger


@dataclass(frozen=True)
class Kind:
    """What a money move is called in the ledger and in the trail, and which way it goes."""

    transfer: str  # the ledger transfer's kind
    event: str  # the audit event's kind
    link: str  # the transfer's column that names the consultation
    back: bool  # back to the user's wallet, not out of it


SETTLEMENT = Kind("settlement", "ended", "consultation_id", back=False)
REFUND = Kind("refund", "refunded", "refund_of_id", back=True)


def post(
    kind: Kind,
    session,
    amount: int,
    platform_share: int,
    *,
    at: datetime,
    memo: str,
    wallet_before: int,
    **event,
) -> int:
    """Move `amount` between the user's wallet and the astrologer's earnings and the
    platform's revenue (`platform_share` of it), and record the audit event; returns the
    transfer's id.

    `session` names the parties (`id`, `user_id`, `astrologer_id`); `event` is the rest of
    the audit event (`actor_id`, `reason`, `request_id`, `detail`, `idempotency_key`).
    """
    moves = ledger.consultation_moves(
        session.user_id, session.astrologer_id, amount, platform_share
    )
    if kind.back:
        moves = [move.reversed() for move in moves]
    transfer_id = ledger.post_transfer(
        kind.transfer,
        moves,
        wallet=ledger.account_id(ledger.USER_WALLET, session.user_id),
        at=at,
        memo=memo,
        **{kind.link: session.id},
    )
    wallet_after = wallet_before + amount if kind.back else wallet_before - amount
    audit.record(
        session.id,
        kind.event,
        at=at,
        cost_paise=amount,
        wallet=(wallet_before, wallet_after),
        **event,
    )
    return transfer_id
