"""Billing policy as pure functions of timestamps (DESIGN.md "Billing policy").

Cost is never accumulated by ticks: it is computed from when billing started, how long it
was paused, and when it stopped, so every reader at any instant gets the same answer.
"""

from datetime import datetime, timedelta

SECOND = timedelta(seconds=1)


def billable_seconds(started_at: datetime, stop_at: datetime, paused: timedelta) -> int:
    """Whole seconds billed between start and stop, less the paused time; never negative."""
    return max(0, (stop_at - started_at - paused) // SECOND)


def cost_paise(seconds: int, rate_paise_per_minute: int) -> int:
    """Per second, pro rata, rounded down to the paise."""
    return seconds * rate_paise_per_minute // 60


def funded_seconds(balance_paise: int, rate_paise_per_minute: int) -> int:
    """How many whole seconds a balance pays for: their cost never exceeds the balance."""
    return balance_paise * 60 // rate_paise_per_minute


def funded_until(
    started_at: datetime, paused: timedelta, balance_paise: int, rate_paise_per_minute: int
) -> datetime:
    """The instant the balance runs out, with pauses moving it out."""
    return started_at + paused + funded_seconds(balance_paise, rate_paise_per_minute) * SECOND


def commission_paise(cost: int, percent: int) -> int:
    """The platform's share of a cost, rounded down: the astrologer keeps the paise left over."""
    return cost * percent // 100
