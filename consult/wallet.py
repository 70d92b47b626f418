"""The user's wallet: recharges through a payment provider, and the balance they see."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from . import consultations, idempotency, ledger
from .db import write_transaction
from .errors import Invalid
from .numbers import MAX_ID, is_whole
from .realtime import Event, Hub

MAX_RECHARGE_PAISE = 10_000_000  # ₹1,00,000 in one go


class PaymentProvider(Protocol):
    name: str

    def charge(self, user_id: int, amount_paise: int, reference: str) -> str:
        """Take the money from the payer; return the provider's payment id or raise."""


class DemoPaymentProvider:
    """Approves every payment without moving real money: for demos and tests only."""

    name = "Demo payment (no real money)"

    def charge(self, user_id: int, amount_paise: int, reference: str) -> str:
        return f"demo-{reference}"


@dataclass(frozen=True)
class RechargeResult:
    balance_paise: int
    replayed: bool


def check_amount(amount) -> int:
    if not is_whole(amount, 1, MAX_ID):
        raise Invalid("amountPaise must be a positive whole number of paise")
    if amount > MAX_RECHARGE_PAISE:
        raise Invalid(f"amountPaise must be at most {MAX_RECHARGE_PAISE}")
    return amount


def recharge(
    user_id: int,
    amount_paise,
    *,
    at: datetime,
    provider: PaymentProvider,
    hub: Hub,
    idempotency_key: str | None = None,
) -> RechargeResult:
    """Add money to the wallet; a retry with the same key replays the first answer."""
    amount = check_amount(amount_paise)
    key = idempotency.check_key(idempotency_key)
    fingerprint = f"recharge:{amount}"
    with write_transaction():
        # Lock the wallet first: concurrent recharges of one user (one key or not) queue
        # here, so a retry finds its twin's record instead of crediting again.
        wallet = ledger.lock(ledger.account_id(ledger.USER_WALLET, user_id))
        replayed = idempotency.replay(user_id, key, fingerprint)
        if replayed is not None:
            return RechargeResult(replayed["balancePaise"], replayed=True)
        reference = uuid.uuid4().hex
        payment_id = provider.charge(user_id, amount, reference)
        ledger.post_transfer(
            "recharge",
            [ledger.Move(ledger.account_id(ledger.EXTERNAL_PAYMENTS), wallet, amount)],
            wallet=wallet,
            at=at,
            memo=f"Recharge via {provider.name}",
            external_reference=payment_id,
        )
        result = RechargeResult(ledger.balance(wallet), replayed=False)
        idempotency.remember(user_id, key, fingerprint, {"balancePaise": result.balance_paise}, at)
    # More money moves a live session's funded end out. The scheduler's due time is a hint
    # it checks against the ledger before ending, so it is brought up to date after the
    # commit (never under the wallet's lock, which would invert the settlement's lock order).
    consultations.refresh_funded_until(user_id)
    hub.publish([user_id], Event("wallet:updated", {"balancePaise": result.balance_paise}))
    return result
