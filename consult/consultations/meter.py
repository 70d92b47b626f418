"""The live bill: what an active consultation costs at an instant, from its timestamps."""

from dataclasses import dataclass
from datetime import datetime

from .. import billing, ledger
from ..errors import NotFound
from .model import (
    ACTIVE,
    BY_BALANCE,
    INSUFFICIENT_BALANCE,
    SCHEDULED_END,
    SESSION_NOT_FOUND,
    SPEND_CAP,
    Consultation,
    paused_of,
    paused_since_of,
)
from .queries import active_for, get_for_party


@dataclass(frozen=True)
class Meter:
    """The live bill of an active consultation at one instant."""

    session_id: int
    elapsed_seconds: int
    cost_paise: int
    wallet_paise: int
    funded_seconds_left: int  # what the wallet alone still pays for
    paused: bool
    rate_paise_per_minute: int
    user_id: int  # whose wallet: only they see the balance
    seconds_left: int  # until it ends by itself (`ends_by`), if nothing else ends it first
    ends_by: str  # BY_BALANCE, SPEND_CAP or SCHEDULED_END

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
    when, reason = automatic_end(consultation, wallet_paise)
    paused = paused_since_of(consultation) is not None
    if reason == SCHEDULED_END or not paused:
        left = max(0, int((when - max(at, consultation.started_at)).total_seconds()))
    else:  # a pause holds the funds' clock still
        left = max(0, int((when - paused_since_of(consultation)).total_seconds()))
    return Meter(
        session_id=consultation.id,
        elapsed_seconds=elapsed,
        cost_paise=billing.cost_paise(elapsed, rate),
        wallet_paise=wallet_paise,
        funded_seconds_left=max(0, billing.funded_seconds(wallet_paise, rate) - elapsed),
        paused=paused,
        rate_paise_per_minute=rate,
        user_id=consultation.user_id,
        seconds_left=left,
        ends_by=BY_BALANCE if reason == INSUFFICIENT_BALANCE else reason,
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
    """When the money for this consultation runs out (an ORM object or a row): the wallet's,
    or the user's spend cap where that is less. Pauses move it out."""
    funds = wallet_paise if c.max_spend_paise is None else min(wallet_paise, c.max_spend_paise)
    return billing.funded_until(c.started_at, paused_of(c), funds, c.rate_paise_per_minute)


def automatic_end(c, wallet_paise: int) -> tuple[datetime, str]:
    """When the consultation ends by itself if nothing else ends it, and with which reason:
    the funds (`insufficient_balance`, or `spend_cap` where the cap binds) or the time limit
    (`scheduled_end`). At a tie the user's own limit names the reason."""
    capped = c.max_spend_paise is not None and c.max_spend_paise <= wallet_paise
    ends = [
        (
            funded_until_of(c, wallet_paise),
            0 if capped else 1,
            SPEND_CAP if capped else INSUFFICIENT_BALANCE,
        )
    ]
    if c.ends_at is not None:
        ends.append((c.ends_at, 0, SCHEDULED_END))
    when, _, reason = min(ends)
    return when, reason


def billing_stop(c, at: datetime, wallet_paise: int) -> datetime:
    """When billing stops if the consultation ends at `at`: never past a pause, the funds,
    the spend cap or the time limit, so the cost never passes the cap."""
    bounds = [at, funded_until_of(c, wallet_paise)]
    if c.ends_at is not None:
        bounds.append(c.ends_at)
    if (since := paused_since_of(c)) is not None:
        bounds.append(since)
    return max(c.started_at, min(bounds))
