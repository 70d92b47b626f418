"""The ledger audit: the money invariants as code, checked over the whole database.

`check()` reads every transfer, entry, account, consultation and end event in one snapshot
and returns a report whose problems each name the offending row. The invariants:

- every transfer balances (its debits equal its credits), a recharge moves money from the
  outside world into one user wallet, a settlement names its consultation;
- every account's cached balance equals the sum of its entries; no user wallet is negative;
- every ended consultation has exactly one settlement transfer and exactly one "ended"
  audit event, agreeing with it on the reason and the cost;
- its cost is `billed_seconds * rate // 60`, and it billed no second after `ended_at`
  (`billed_seconds` is at most the whole seconds from `started_at` to `ended_at`);
- the settlement takes exactly the cost from that user's wallet and pays it to that
  astrologer and the platform, and was posted in the same act as the end;
- nothing is charged for a consultation that has not ended, and nothing was ever billed for
  one that never started;
- a refund names its ended consultation, moves money from that astrologer's earnings and
  the platform back to that user's wallet, and the refunds of a consultation add up to its
  `refunded_paise` and never to more than its cost.

`flask --app app audit-ledger` runs it for an operator.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import case, func, select

from . import ledger
from .audit import SessionEvent
from .consultations import (
    CANCELLED,
    DECLINED,
    END_REASONS,
    ENDED,
    EXPIRED,
    REQUESTED,
    Consultation,
)
from .db import db

RECHARGE, SETTLEMENT, REFUND = "recharge", "settlement", "refund"
NEVER_STARTED = (REQUESTED, DECLINED, CANCELLED, EXPIRED)


@dataclass(frozen=True)
class Problem:
    """One broken invariant, naming the row that breaks it."""

    rule: str  # a short, stable name of the invariant
    table: str  # where the offending row lives
    row_id: int | None
    detail: str

    def __str__(self) -> str:
        return f"{self.table} #{self.row_id}: {self.detail} [{self.rule}]"


@dataclass
class Report:
    transfers: int = 0
    sessions: int = 0
    accounts: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, rule: str, table: str, row_id, detail: str) -> None:
        self.problems.append(Problem(rule, table, row_id, detail))


def problems() -> list[Problem]:
    """Every broken invariant in the database (an empty list when the books are sound)."""
    return check().problems


def check() -> Report:
    """Check the whole database in one read snapshot, so a live server cannot fool it."""
    session = db.session
    session.rollback()  # start a fresh read transaction: one snapshot for every query below
    if session.get_bind().dialect.name != "sqlite":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    try:
        report = Report()
        accounts = {a.id: a for a in session.execute(select(ledger.Account)).scalars()}
        report.accounts = len(accounts)
        _check_accounts(report, accounts)
        transfers = _check_transfers(report, accounts)
        _check_consultations(report, accounts, transfers)
        return report
    finally:
        session.rollback()


# ---------------------------------------------------------------- accounts


def _signed():
    return case(
        (ledger.Entry.direction == ledger.CREDIT, ledger.Entry.amount_paise),
        else_=-ledger.Entry.amount_paise,
    )


def _check_accounts(report: Report, accounts: dict) -> None:
    sums = dict(
        db.session.execute(
            select(ledger.Entry.account_id, func.sum(_signed())).group_by(ledger.Entry.account_id)
        ).all()
    )
    for account_id in sums.keys() - accounts.keys():
        report.add("entry_account", "accounts", account_id, "entries name a missing account")
    for account in accounts.values():
        from_entries = sums.get(account.id, 0)
        if account.kind != ledger.USER_WALLET:  # its balance is its entries' sum
            if account.balance_paise != 0:
                report.add(
                    "balance_matches_entries",
                    "accounts",
                    account.id,
                    f"{_label(account)} keeps no running balance "
                    f"but caches {account.balance_paise} paise",
                )
            continue
        if account.balance_paise != from_entries:
            report.add(
                "balance_matches_entries",
                "accounts",
                account.id,
                f"{_label(account)} caches {account.balance_paise} paise "
                f"but its entries sum to {from_entries}",
            )
        if min(account.balance_paise, from_entries) < 0:
            report.add(
                "wallet_not_negative",
                "accounts",
                account.id,
                f"{_label(account)} is negative ({account.balance_paise} paise cached, "
                f"{from_entries} by its entries)",
            )


def _label(account) -> str:
    owner = f" of user {account.owner_id}" if account.owner_id is not None else ""
    return f"{account.kind}{owner}"


# ---------------------------------------------------------------- transfers


@dataclass
class _Transfer:
    id: int
    kind: str
    consultation_id: int | None
    created_at: object
    refund_of_id: int | None = None
    debits: dict = field(default_factory=lambda: defaultdict(int))  # account id -> paise
    credits: dict = field(default_factory=lambda: defaultdict(int))

    @property
    def debited(self) -> int:
        return sum(self.debits.values())

    @property
    def credited(self) -> int:
        return sum(self.credits.values())


def _check_transfers(report: Report, accounts: dict) -> dict[int, _Transfer]:
    transfers = {
        row.id: _Transfer(row.id, row.kind, row.consultation_id, row.created_at, row.refund_of_id)
        for row in db.session.execute(
            select(
                ledger.Transfer.id,
                ledger.Transfer.kind,
                ledger.Transfer.consultation_id,
                ledger.Transfer.created_at,
                ledger.Transfer.refund_of_id,
            )
        )
    }
    report.transfers = len(transfers)
    for transfer_id, account_id, direction, amount in db.session.execute(
        select(
            ledger.Entry.transfer_id,
            ledger.Entry.account_id,
            ledger.Entry.direction,
            ledger.Entry.amount_paise,
        )
    ):
        transfer = transfers.get(transfer_id)
        if transfer is None:
            report.add(
                "entry_transfer", "transfers", transfer_id, "entries name a missing transfer"
            )
            continue
        side = transfer.debits if direction == ledger.DEBIT else transfer.credits
        side[account_id] += amount

    for t in transfers.values():
        if t.debited != t.credited:
            report.add(
                "transfer_balances",
                "transfers",
                t.id,
                f"{t.kind} debits {t.debited} paise but credits {t.credited}",
            )
        if t.kind == RECHARGE:
            _check_recharge(report, t, accounts)
        elif t.kind == REFUND:
            if t.refund_of_id is None or t.consultation_id is not None:
                report.add(
                    "refund_names_session",
                    "transfers",
                    t.id,
                    "a refund must name the consultation it refunds (refund_of_id) and no other",
                )
        elif t.kind == SETTLEMENT:
            if t.consultation_id is None:
                report.add(
                    "settlement_names_session",
                    "transfers",
                    t.id,
                    "a settlement that names no consultation",
                )
        else:
            report.add("transfer_kind", "transfers", t.id, f"unknown transfer kind {t.kind!r}")
    return transfers


def _check_recharge(report: Report, t: _Transfer, accounts: dict) -> None:
    kinds = {
        side: {accounts[a].kind for a in entries if a in accounts}
        for side, entries in (("debit", t.debits), ("credit", t.credits))
    }
    if t.consultation_id is not None:
        report.add(
            "recharge_shape",
            "transfers",
            t.id,
            f"a recharge names consultation {t.consultation_id}",
        )
    if not t.credited:
        report.add("recharge_shape", "transfers", t.id, "a recharge that moves no money")
    elif kinds["debit"] != {ledger.EXTERNAL_PAYMENTS} or kinds["credit"] != {ledger.USER_WALLET}:
        report.add(
            "recharge_shape",
            "transfers",
            t.id,
            f"a recharge must move money from external payments to a user wallet, "
            f"not from {sorted(kinds['debit'])} to {sorted(kinds['credit'])}",
        )


# ---------------------------------------------------------------- consultations


def _check_consultations(report: Report, accounts: dict, transfers: dict) -> None:
    settlements, refunds = defaultdict(list), defaultdict(list)
    for t in transfers.values():
        if t.consultation_id is not None:
            settlements[t.consultation_id].append(t)
        if t.refund_of_id is not None:
            refunds[t.refund_of_id].append(t)
    ended_events = defaultdict(list)
    for event in db.session.execute(
        select(
            SessionEvent.id,
            SessionEvent.consultation_id,
            SessionEvent.reason,
            SessionEvent.cost_paise,
            SessionEvent.at,
        ).where(SessionEvent.kind == "ended")
    ):
        ended_events[event.consultation_id].append(event)
    wallets = {a.owner_id: a.id for a in accounts.values() if a.kind == ledger.USER_WALLET}
    earnings = {a.owner_id: a.id for a in accounts.values() if a.kind == ledger.ASTROLOGER_EARNINGS}
    platform = {a.id for a in accounts.values() if a.kind == ledger.PLATFORM_REVENUE}

    columns = Consultation.__table__.c
    seen = set()
    for c in db.session.execute(select(columns)):
        report.sessions += 1
        seen.add(c.id)
        mine = settlements.get(c.id, [])
        events = ended_events.get(c.id, [])
        _check_refunds(report, c, refunds.get(c.id, []), wallets, earnings, platform)
        if c.status == ENDED:
            _check_ended(report, c, mine, events, wallets, earnings, platform)
            continue
        for t in mine:
            report.add(
                "charged_only_when_ended",
                "transfers",
                t.id,
                f"settles consultation {c.id}, which is {c.status}, not ended",
            )
        for event in events:
            report.add(
                "charged_only_when_ended",
                "session_events",
                event.id,
                f"an 'ended' event for consultation {c.id}, which is {c.status}",
            )
        billed = [
            name
            for name in ("ended_at", "end_reason", "billed_seconds", "total_cost_paise")
            if getattr(c, name) is not None
        ]
        if c.status in NEVER_STARTED and c.started_at is not None:
            billed.insert(0, "started_at")
        if billed:
            report.add(
                "unsettled_has_no_bill",
                "consultations",
                c.id,
                f"{c.status} but has {', '.join(billed)} set",
            )
    for consultation_id in (settlements.keys() | ended_events.keys() | refunds.keys()) - seen:
        report.add(
            "settlement_names_session",
            "consultations",
            consultation_id,
            "settled or ended, but no such consultation exists",
        )


def _check_ended(report, c, settlements, events, wallets, earnings, platform) -> None:
    missing = [
        name
        for name in ("started_at", "ended_at", "end_reason", "billed_seconds", "total_cost_paise")
        if getattr(c, name) is None
    ]
    if missing:
        report.add(
            "ended_is_complete", "consultations", c.id, f"ended without {', '.join(missing)}"
        )
        return
    if c.end_reason not in END_REASONS:
        report.add(
            "ended_is_complete", "consultations", c.id, f"unknown end reason {c.end_reason!r}"
        )
    cost, seconds, rate = c.total_cost_paise, c.billed_seconds, c.rate_paise_per_minute
    if cost != seconds * rate // 60:
        report.add(
            "cost_is_policy",
            "consultations",
            c.id,
            f"charged {cost} paise for {seconds} s at {rate}/min; "
            f"the policy says {seconds * rate // 60}",
        )
    span = (c.ended_at - c.started_at) // timedelta(seconds=1)
    if not 0 <= seconds <= max(span, 0):
        report.add(
            "billed_within_session",
            "consultations",
            c.id,
            f"billed {seconds} s, but only {span} whole seconds lie between startedAt "
            f"{c.started_at.isoformat()} and endedAt {c.ended_at.isoformat()}",
        )

    if len(settlements) != 1:
        report.add(
            "settled_once",
            "consultations",
            c.id,
            f"ended with {len(settlements)} settlement transfers "
            f"{[t.id for t in settlements]}, not exactly one",
        )
    if len(events) != 1:
        report.add(
            "ended_event_once",
            "consultations",
            c.id,
            f"ended with {len(events)} 'ended' audit events {[e.id for e in events]}, "
            "not exactly one",
        )
    for event in events:
        if (event.reason, event.cost_paise) != (c.end_reason, cost):
            report.add(
                "ended_event_agrees",
                "session_events",
                event.id,
                f"says {event.reason} for {event.cost_paise} paise; consultation {c.id} "
                f"says {c.end_reason} for {cost}",
            )
    for t in settlements:
        _check_settlement(report, c, t, wallets, earnings, platform)
        if len(events) == 1 and t.created_at != events[0].at:
            report.add(
                "settled_with_the_end",
                "transfers",
                t.id,
                f"posted at {t.created_at.isoformat()}, but consultation {c.id} ended "
                f"(its 'ended' event) at {events[0].at.isoformat()}: not one act",
            )


def _check_settlement(report, c, t: _Transfer, wallets, earnings, platform) -> None:
    cost = c.total_cost_paise
    if t.kind != SETTLEMENT:
        report.add("settlement_shape", "transfers", t.id, f"a {t.kind} names consultation {c.id}")
    wallet = wallets.get(c.user_id)
    if set(t.debits) - {wallet} or t.debited != cost:
        report.add(
            "settlement_takes_the_cost",
            "transfers",
            t.id,
            f"takes {t.debited} paise from accounts {sorted(t.debits)}; consultation {c.id} "
            f"cost {cost} from the wallet (account {wallet}) of user {c.user_id}",
        )
    payees = {earnings.get(c.astrologer_id)} | platform
    if set(t.credits) - payees or t.credited != cost:
        report.add(
            "settlement_pays_the_cost",
            "transfers",
            t.id,
            f"pays {t.credited} paise to accounts {sorted(t.credits)}; consultation {c.id} "
            f"cost {cost}, payable to astrologer {c.astrologer_id} and the platform only",
        )


def _check_refunds(report, c, refunds, wallets, earnings, platform) -> None:
    """Money back to the user, from whom it was paid to, never more than the cost."""
    total = sum(t.credited for t in refunds)
    if refunds and c.status != ENDED:
        report.add(
            "refund_only_when_ended",
            "consultations",
            c.id,
            f"{c.status}, not ended, but refunded by transfers {[t.id for t in refunds]}",
        )
        return
    if total != (c.refunded_paise or 0):
        report.add(
            "refund_recorded",
            "consultations",
            c.id,
            f"records {c.refunded_paise} paise refunded; its refund transfers add up to {total}",
        )
    if refunds and total > (c.total_cost_paise or 0):
        report.add(
            "refund_within_cost",
            "consultations",
            c.id,
            f"refunded {total} paise of a cost of {c.total_cost_paise}",
        )
    sources = {earnings.get(c.astrologer_id)} | platform
    for t in refunds:
        if set(t.credits) - {wallets.get(c.user_id)} or set(t.debits) - sources:
            report.add(
                "refund_shape",
                "transfers",
                t.id,
                f"a refund of consultation {c.id} must move money from astrologer "
                f"{c.astrologer_id}'s earnings and the platform to user {c.user_id}'s wallet",
            )
