"""The live bill: what an active consultation costs at an instant, from its timestamps."""

from dataclasses import dataclass
from datetime import datetime

from .. import billing, ledger
from ..errors import NotFound
from .model import ACTIVE, SESSION_NOT_FOUND, Consultation, paused_of, paused_since_of
from .queries import active_for, get_for_party


@dataclass(frozen=True)
class Meter:
    """The live bill of an active consultation at one instant."""

    session_id: int
    elapsed_seconds: int
    cost_paise: int
    wallet_paise: int
    funded_seconds_left: int
    paused: bool
    rate_paise_per_minute: int
    user_id: int  # whose wallet: only they see the balance

    @property
    def balance_paise(self) -> int:
        """The wallet minus the cost so far: what the user would have if it ended now."""
        return self.wallet_paise - self.cost_paise


def wallet_balance(user_id: int) -> int:
    return ledger.balance(ledger.account_id(ledger.USER_WALLET, user_id))


def meter(consultation: Consultation, at: datetime, wallet_paise: int | None = None) -> Meter:
    """The live bill at `at`: pure arithmetic on the consultation's timestamps."""
    if wallet_paise is None:
        wallet_paise = wallet_balance(consultation.user_id)
    rate = consultation.rate_paise_per_minute
    stop = billing_stop(consultation, at, wallet_paise)
    elapsed = billing.billable_seconds(consultation.started_at, stop, paused_of(consultation))
    return Meter(
        session_id=consultation.id,
        elapsed_seconds=elapsed,
        cost_paise=billing.cost_paise(elapsed, rate),
        wallet_paise=wallet_paise,
        funded_seconds_left=max(0, billing.funded_seconds(wallet_paise, rate) - elapsed),
        paused=paused_since_of(consultation) is not None,
        rate_paise_per_minute=rate,
        user_id=consultation.user_id,
    )


def bill_for(viewer, consultation_id, *, at: datetime) -> Meter:
    """The live bill of the given active consultation, or of the viewer's active one."""
    if consultation_id in (None, ""):
        consultation = active_for(viewer)
        if consultation is None:
            raise NotFound("No active session found")
        return meter(consultation, at)
    try:
        consultation = get_for_party(int(consultation_id), viewer)
    except (TypeError, ValueError):
        raise NotFound(SESSION_NOT_FOUND) from None
    if consultation.status != ACTIVE:
        raise NotFound("No active session found")
    return meter(consultation, at)


def funded_until_of(c, wallet_paise: int) -> datetime:
    """When the wallet runs out for this consultation (an ORM object or a row)."""
    return billing.funded_until(c.started_at, paused_of(c), wallet_paise, c.rate_paise_per_minute)


def billing_stop(c, at: datetime, wallet_paise: int) -> datetime:
    """When billing stops if the consultation ends at `at`: never past a pause or the funds."""
    bounds = [at, funded_until_of(c, wallet_paise)]
    if (since := paused_since_of(c)) is not None:
        bounds.append(since)
    return max(c.started_at, min(bounds))
