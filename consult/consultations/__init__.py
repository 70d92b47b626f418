"""Consultations: request, accept, pause, and End Session with its one settlement function.

The package follows the life of a consultation; callers use the names below.

- `model`: the record, its states and end reasons, the pause arithmetic
- `queries`: reading consultations as their parties may see them
- `meter`: the live bill at an instant
- `lifecycle`: request, accept, decline, cancel, expire (before billing)
- `settlement`: End Session, settled once whoever asks
- `pauses`: billing pauses while a party is away
- `due`: what the scheduler asks (due ends, low balance) and crash recovery
"""

from . import limits, live, refunds
from .due import (
    due_ends,
    low_balance,
    mark_warned,
    next_due,
    rebuild_due_times,
    recover_after_crash,
    refresh_funded_until,
)
from .lifecycle import accept, cancel, decline, expire_stale, request_consultation
from .limits import set_limits
from .meter import Meter, bill_for, meter, wallet_balance
from .model import (
    ACTIVE,
    ADMIN_ENDED,
    ASTROLOGER_DISCONNECTED,
    ASTROLOGER_ENDED,
    BY_BALANCE,
    CANCELLED,
    DECLINED,
    END_REASONS,
    ENDED,
    EXPIRED,
    INSUFFICIENT_BALANCE,
    LIVE,
    NOT_ACTIVE,
    NOT_WAITING,
    REQUESTED,
    SCHEDULED_END,
    SESSION_NOT_FOUND,
    SPEND_CAP,
    STATUSES,
    SYSTEM_ERROR,
    USER_DISCONNECTED,
    USER_REQUESTED,
    Consultation,
)
from .pauses import party_left, party_returned, pause_vanished_parties
from .queries import (
    active_count,
    active_counts,
    active_for,
    active_id_for,
    everyone,
    get_for_party,
    list_for,
    live_for,
    on_desk,
)
from .settlement import (
    Ended,
    EndOutcome,
    end_by_admin,
    end_by_party,
    end_for_caller,
    end_session,
)

__all__ = [
    "ACTIVE",
    "ADMIN_ENDED",
    "BY_BALANCE",
    "SCHEDULED_END",
    "SPEND_CAP",
    "active_count",
    "active_counts",
    "limits",
    "live",
    "refunds",
    "set_limits",
    "ASTROLOGER_DISCONNECTED",
    "ASTROLOGER_ENDED",
    "CANCELLED",
    "DECLINED",
    "END_REASONS",
    "ENDED",
    "EXPIRED",
    "INSUFFICIENT_BALANCE",
    "LIVE",
    "NOT_ACTIVE",
    "NOT_WAITING",
    "REQUESTED",
    "SESSION_NOT_FOUND",
    "STATUSES",
    "SYSTEM_ERROR",
    "USER_DISCONNECTED",
    "USER_REQUESTED",
    "Consultation",
    "EndOutcome",
    "Ended",
    "Meter",
    "accept",
    "active_for",
    "active_id_for",
    "bill_for",
    "cancel",
    "decline",
    "due_ends",
    "next_due",
    "end_by_admin",
    "end_by_party",
    "everyone",
    "end_for_caller",
    "end_session",
    "expire_stale",
    "get_for_party",
    "list_for",
    "live_for",
    "low_balance",
    "mark_warned",
    "meter",
    "on_desk",
    "party_left",
    "party_returned",
    "pause_vanished_parties",
    "rebuild_due_times",
    "recover_after_crash",
    "refresh_funded_until",
    "request_consultation",
    "wallet_balance",
]
