"""The reconciliation: sound books pass, and every kind of corruption is named by its row.

A healthy database is made by a real flow through the domain (every way a session can end,
and the ways it can never start); each corruption is then injected directly in SQL, as a
bug or a hand edit would leave it, and must be found in process and by the operator CLI.
"""

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from consult import consultations, ledger, ledger_audit
from consult.clock import utcnow
from consult.db import db
from helpers.inprocess import (
    add_money,
    end_as,
    fresh,
    live_session,
    make_astrologer,
    make_user,
    request_session,
    services,
    user_obj,
)
from helpers.server import ROOT

RATE = 6100  # not a multiple of 60: every cost is rounded down


@dataclass
class Books:
    """The rows of the healthy flow that the corruptions below aim at."""

    user_ended: int
    astrologer_ended: int
    funds_out: int
    disconnected: int
    crashed: int
    zero_cost: int
    active: int
    declined: int
    alice_wallet: int
    guru_earnings: int
    tara_earnings: int
    recharges: int
    sessions: int

    def settlement(self, session_id: int) -> int:
        return sql_one("SELECT id FROM transfers WHERE consultation_id = :s", s=session_id)


APPEND_ONLY = ("entries", "transfers", "session_events")


@pytest.fixture
def tamper_freely(app):
    """Take away the database's append-only triggers, as someone with rights over its
    schema could: the books check must still name what they then change. (PostgreSQL's
    schema outlives the test: they are switched back on after it.)"""
    postgres = db.engine.dialect.name == "postgresql"
    for table in APPEND_ONLY:
        if postgres:
            sql(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        else:
            for change in ("update", "delete"):
                sql(f"DROP TRIGGER {table}_append_only_{change}")
    db.session.commit()
    yield
    if postgres:
        db.session.rollback()
        for table in APPEND_ONLY:
            sql(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
        db.session.commit()


def sql(statement: str, **params):
    db.session.execute(text(statement), params)


def sql_one(statement: str, **params):
    return db.session.execute(text(statement), params).scalar_one()


def account_of(kind: str, owner_id: int) -> int:
    return sql_one("SELECT id FROM accounts WHERE kind = :k AND owner_id = :o", k=kind, o=owner_id)


def healthy_flow() -> Books:
    """Sessions ended every way there is, and some never started; every step committed."""
    s = services()
    hub, policy = s.hub, s.policy
    t0 = utcnow() - timedelta(hours=2)

    def at(seconds: float):
        return t0 + timedelta(seconds=seconds)

    alice = make_user("alice", balance=100_000)
    bob = make_user("bob", balance=6_200)  # funds 60 s at RATE
    carol, dave, erin = (make_user(n, balance=30_000) for n in ("carol", "dave", "erin"))
    guru = make_astrologer("guru", rate=RATE)
    tara = make_astrologer("tara", rate=3500)

    user_ended = live_session(alice, guru, started_at=at(0))
    add_money(alice.id, 2_500, at=at(30))  # a recharge during a live session
    end_as(alice, user_ended, at(125.7))
    astrologer_ended = live_session(alice, tara, started_at=at(200))
    end_as(tara, astrologer_ended, at(261.2))

    funds_out = live_session(bob, guru, started_at=at(300))
    consultations.end_session(
        funds_out, reason=consultations.INSUFFICIENT_BALANCE, at=at(400), hub=hub, policy=policy
    )
    disconnected = live_session(carol, tara, started_at=at(0))
    consultations.party_left(carol.id, at=at(17.5), hub=hub)
    consultations.end_session(
        disconnected, reason=consultations.USER_DISCONNECTED, at=at(47.5), hub=hub, policy=policy
    )
    zero_cost = live_session(erin, tara, started_at=at(500))
    end_as(erin, zero_cost, at(500.4))  # under a second: nothing to pay, no entries

    crashed = live_session(dave, guru, started_at=at(600))
    consultations.recover_after_crash(
        last_alive=at(642.9), started_before=at(601), hub=hub, policy=policy
    )

    declined = request_session(erin, guru, at=at(700))
    consultations.decline(user_obj(guru), declined, at=at(705), hub=hub)
    cancelled = request_session(erin, guru, at=at(710))
    consultations.cancel(user_obj(erin), cancelled, at=at(711), hub=hub)
    request_session(dave, tara, at=at(720))
    assert consultations.expire_stale(now=at(720 + 3600), hub=hub, policy=policy)
    active = live_session(carol, guru)
    fresh()
    return Books(
        user_ended=user_ended,
        astrologer_ended=astrologer_ended,
        funds_out=funds_out,
        disconnected=disconnected,
        crashed=crashed,
        zero_cost=zero_cost,
        active=active,
        declined=declined,
        alice_wallet=account_of(ledger.USER_WALLET, alice.id),
        guru_earnings=account_of(ledger.ASTROLOGER_EARNINGS, guru.id),
        tara_earnings=account_of(ledger.ASTROLOGER_EARNINGS, tara.id),
        recharges=6,
        sessions=10,
    )


def audit_ledger_cli(app) -> subprocess.CompletedProcess:
    """The operator command, as an operator runs it, against this test's database."""
    db.session.remove()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(DATABASE_URL=app.config["DATABASE_URL"], SECRET_KEY="test")
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "audit-ledger"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# ---------------------------------------------------------------- healthy books


def test_a_healthy_database_after_every_kind_of_end_reconciles(app):
    books = healthy_flow()
    report = ledger_audit.check()
    assert report.problems == []
    assert report.ok
    settled = sql_one("SELECT count(*) FROM consultations WHERE status = 'ended'")
    assert settled == 6
    assert report.transfers == books.recharges + settled
    assert report.sessions == books.sessions
    # The flow really did produce what the corruptions below rely on.
    ended = db.session.get(consultations.Consultation, books.funds_out)
    assert (ended.end_reason, ended.billed_seconds) == ("insufficient_balance", 60)
    assert db.session.get(consultations.Consultation, books.zero_cost).total_cost_paise == 0
    assert db.session.get(consultations.Consultation, books.crashed).billed_seconds == 42

    result = audit_ledger_cli(app)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == (
        f"ledger OK: {books.recharges + settled} transfers, {books.sessions} sessions checked"
    )


def test_an_empty_database_reconciles(app):
    report = ledger_audit.check()
    assert report.ok and report.sessions == 0


# ---------------------------------------------------------------- corruptions


def unbalanced_transfer(b: Books):
    """A credit entry grew by one paisa (and the cached balance with it): money from nowhere."""
    recharge = sql_one(
        "SELECT min(t.id) FROM transfers t JOIN entries e ON e.transfer_id = t.id "
        "WHERE t.kind = 'recharge' AND e.account_id = :w",
        w=b.alice_wallet,
    )
    sql(
        "UPDATE entries SET amount_paise = amount_paise + 1 "
        "WHERE transfer_id = :t AND direction = 'credit'",
        t=recharge,
    )
    sql("UPDATE accounts SET balance_paise = balance_paise + 1 WHERE id = :w", w=b.alice_wallet)
    return [("transfer_balances", "transfers", recharge)]


def cached_balance_drift(b: Books):
    sql("UPDATE accounts SET balance_paise = balance_paise + 700 WHERE id = :w", w=b.alice_wallet)
    return [("balance_matches_entries", "accounts", b.alice_wallet)]


def running_balance_on_earnings(b: Books):
    """Earnings keep no running balance: a cached figure there is one nobody maintains."""
    sql("UPDATE accounts SET balance_paise = 700 WHERE id = :a", a=b.guru_earnings)
    return [("balance_matches_entries", "accounts", b.guru_earnings)]


def negative_wallet(b: Books):
    """A balanced transfer takes more than the wallet holds, written past the cached column
    (whose CHECK constraint would refuse it): the wallet's entries sum below zero."""
    platform = sql_one("SELECT id FROM accounts WHERE kind = 'platform_revenue'")
    held = sql_one("SELECT balance_paise FROM accounts WHERE id = :w", w=b.alice_wallet)
    transfer = sql_one(
        "INSERT INTO transfers (kind, memo, created_at) "
        "SELECT 'recharge', 'forged', created_at FROM transfers WHERE id = 1 RETURNING id"
    )
    for account, direction in ((b.alice_wallet, "debit"), (platform, "credit")):
        sql(
            "INSERT INTO entries (transfer_id, account_id, direction, amount_paise) "
            "VALUES (:t, :a, :d, :x)",
            t=transfer,
            a=account,
            d=direction,
            x=held + 5,
        )
    return [
        ("wallet_not_negative", "accounts", b.alice_wallet),
        ("balance_matches_entries", "accounts", b.alice_wallet),
        ("recharge_shape", "transfers", transfer),
    ]


def settlement_lost(b: Books):
    """The settlement no longer names its session: an ended session that was never charged."""
    transfer = b.settlement(b.user_ended)
    sql("UPDATE transfers SET consultation_id = NULL WHERE id = :t", t=transfer)
    return [
        ("settled_once", "consultations", b.user_ended),
        ("settlement_names_session", "transfers", transfer),
    ]


def second_ended_event(b: Books):
    sql(
        "INSERT INTO session_events (consultation_id, kind, reason, cost_paise, at) "
        "SELECT consultation_id, kind, reason, cost_paise, at FROM session_events "
        "WHERE consultation_id = :s AND kind = 'ended'",
        s=b.astrologer_ended,
    )
    return [("ended_event_once", "consultations", b.astrologer_ended)]


def ended_event_missing(b: Books):
    sql(
        "DELETE FROM session_events WHERE consultation_id = :s AND kind = 'ended'",
        s=b.disconnected,
    )
    return [("ended_event_once", "consultations", b.disconnected)]


def cost_off_the_policy(b: Books):
    sql(
        "UPDATE consultations SET total_cost_paise = total_cost_paise + 1 WHERE id = :s",
        s=b.user_ended,
    )
    return [("cost_is_policy", "consultations", b.user_ended)]


def billed_after_the_end(b: Books):
    """Seconds billed beyond endedAt, priced consistently so only the overrun is wrong."""
    sql(
        "UPDATE consultations SET billed_seconds = billed_seconds + 100, "
        "total_cost_paise = (billed_seconds + 100) * rate_paise_per_minute / 60 WHERE id = :s",
        s=b.crashed,
    )
    return [("billed_within_session", "consultations", b.crashed)]


def charged_while_active(b: Books):
    """A settlement moved onto a session that is still running."""
    transfer = b.settlement(b.user_ended)
    sql("UPDATE transfers SET consultation_id = :s WHERE id = :t", s=b.active, t=transfer)
    return [
        ("charged_only_when_ended", "transfers", transfer),
        ("settled_once", "consultations", b.user_ended),
    ]


def billed_but_never_started(b: Books):
    sql("UPDATE consultations SET total_cost_paise = 500 WHERE id = :s", s=b.declined)
    return [("unsettled_has_no_bill", "consultations", b.declined)]


def paid_to_the_wrong_astrologer(b: Books):
    """The settlement of guru's session credits tara instead (earnings keep no running
    balance, so nothing else has to move to match)."""
    transfer = b.settlement(b.user_ended)
    entry_id, amount = db.session.execute(
        text("SELECT id, amount_paise FROM entries WHERE transfer_id = :t AND account_id = :a"),
        {"t": transfer, "a": b.guru_earnings},
    ).one()
    sql("UPDATE entries SET account_id = :a WHERE id = :e", a=b.tara_earnings, e=entry_id)
    return [("settlement_pays_the_cost", "transfers", transfer)]


def settled_long_after_the_end(b: Books):
    transfer = b.settlement(b.funds_out)
    posted = db.session.get(ledger.Transfer, transfer).created_at
    db.session.execute(
        update(ledger.Transfer)
        .where(ledger.Transfer.id == transfer)
        .values(created_at=posted + timedelta(days=1))
    )
    return [("settled_with_the_end", "transfers", transfer)]


def reopened_after_settlement(b: Books):
    """A settled session set back to active: charged, but not ended."""
    sql("UPDATE consultations SET status = 'active' WHERE id = :s", s=b.astrologer_ended)
    return [
        ("charged_only_when_ended", "transfers", b.settlement(b.astrologer_ended)),
        ("unsettled_has_no_bill", "consultations", b.astrologer_ended),
    ]


CORRUPTIONS = [
    unbalanced_transfer,
    cached_balance_drift,
    running_balance_on_earnings,
    negative_wallet,
    settlement_lost,
    second_ended_event,
    ended_event_missing,
    cost_off_the_policy,
    billed_after_the_end,
    charged_while_active,
    billed_but_never_started,
    paid_to_the_wrong_astrologer,
    settled_long_after_the_end,
    reopened_after_settlement,
]


def named(report) -> set[tuple[str, str, int]]:
    return {(p.rule, p.table, p.row_id) for p in report.problems}


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
def test_each_corruption_is_named_by_its_row(app, corrupt, tamper_freely):
    books = healthy_flow()
    expected = corrupt(books)
    db.session.commit()
    report = ledger_audit.check()
    assert not report.ok
    found = named(report)
    for problem in expected:
        assert problem in found, f"{problem} not among {sorted(found)}"
    # Only the rows that were touched are named: no noise about the healthy ones.
    touched = {(table, row) for _, table, row in expected}
    assert {(p.table, p.row_id) for p in report.problems} <= touched | _collateral(books, corrupt)
    for problem in report.problems:
        assert f"#{problem.row_id}" in str(problem) and problem.table in str(problem)


def _collateral(books: Books, corrupt) -> set[tuple[str, int]]:
    """Rows a corruption breaks as a matter of course besides the ones it aims at."""
    if corrupt is cost_off_the_policy:  # the settlement and the audit no longer agree with it
        event = sql_one(
            "SELECT id FROM session_events WHERE consultation_id = :s AND kind = 'ended'",
            s=books.user_ended,
        )
        return {("transfers", books.settlement(books.user_ended)), ("session_events", event)}
    if corrupt is billed_after_the_end:
        event = sql_one(
            "SELECT id FROM session_events WHERE consultation_id = :s AND kind = 'ended'",
            s=books.crashed,
        )
        return {("transfers", books.settlement(books.crashed)), ("session_events", event)}
    if corrupt is charged_while_active:
        return {("consultations", books.active)}
    if corrupt is reopened_after_settlement:
        event = sql_one(
            "SELECT id FROM session_events WHERE consultation_id = :s AND kind = 'ended'",
            s=books.astrologer_ended,
        )
        return {("session_events", event)}
    return set()


def test_the_cli_names_every_corruption_and_exits_non_zero(app, tamper_freely):
    books = healthy_flow()
    expected = [problem for corrupt in CORRUPTIONS[:1] for problem in corrupt(books)]
    # Several corruptions at once, on rows that do not overlap, all reported in one run.
    for corrupt in (
        cached_balance_drift,
        second_ended_event,
        billed_after_the_end,
        billed_but_never_started,
        settled_long_after_the_end,
    ):
        expected += corrupt(books)
    db.session.commit()

    result = audit_ledger_cli(app)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for rule, table, row in expected:
        assert any(f"{table} #{row}:" in line and f"[{rule}]" in line for line in lines), (
            rule,
            table,
            row,
            result.stdout,
        )
    assert "ledger OK" not in result.stdout
    assert "problem(s)" in result.stderr
