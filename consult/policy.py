"""The business settings of a deployment, read once from the app config, and the one fact
of the moment billing must also obey: a restart's doubt."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Restart:
    """In the seconds after an instance starts while others had just been beating, nobody
    knows yet whether the whole system was down. A session begun before `booted_at` is known
    to have been billable only up to `alive_until`, the newest heartbeat of those others: an
    end in the meantime bills no further (if they are alive, that is at most a beat ago)."""

    booted_at: datetime
    alive_until: datetime


@dataclass(frozen=True)
class Policy:
    min_session_seconds: int = 60  # a request needs a balance funding at least this long
    commission_percent: int = 20  # the platform's share of every settled cost
    disconnect_grace_seconds: int = 30
    request_timeout_seconds: int = 120
    low_balance_warning_seconds: int = 60
    make_good_seconds: int = 60  # an astrologer leaving sooner costs the user nothing (0: off)
    make_good_silent: bool = True  # a billed session the astrologer never wrote in is free
    restart: Restart | None = None  # set only while a restart's doubt lasts (Services.policy)

    @classmethod
    def from_config(cls, config) -> "Policy":
        return cls(
            min_session_seconds=int(config["MIN_SESSION_SECONDS"]),
            commission_percent=int(config["PLATFORM_COMMISSION_PERCENT"]),
            disconnect_grace_seconds=int(config["DISCONNECT_GRACE_SECONDS"]),
            request_timeout_seconds=int(config["REQUEST_TIMEOUT_SECONDS"]),
            low_balance_warning_seconds=int(config["LOW_BALANCE_WARNING_SECONDS"]),
            make_good_seconds=int(config["MAKE_GOOD_SECONDS"]),
            make_good_silent=_yes(config["MAKE_GOOD_SILENT_ASTROLOGER"]),
        )


def _yes(value) -> bool:
    """A switch from the environment or a config file: `false`, `0`, `no` and `off` turn it off."""
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off", "")
    return bool(value)
