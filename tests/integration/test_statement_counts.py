"""The hot paths cost a fixed, small number of SQL statements: a guard that cannot flake.

An end, a chat message and a recharge are counted statement by statement (BEGIN included),
and the scheduler's tick must cost the same with one live session or forty: it finds due
sessions through indexes, never by reading every live one. The limits are the numbers
reached in the lean rewrite; a change that adds a statement to these paths must say why
here.
"""

import struct
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, text

from consult import accounts, chat, consultations, wallet
from consult.accounts import Caller
from consult.clock import utcnow
from consult.db import db
from helpers import PASSWORD
from helpers.inprocess import be_present

# BEGIN, the locked row with its user's wallet, the key's earlier answer, the
# compare-and-set, the transfer, its entries, the wallet's balance, the audit record, the
# key's answer. The same on PostgreSQL: no other account's row is written, so none needs
# locking in order.
END_STATEMENTS = 9
END_WITHOUT_ID_STATEMENTS = END_STATEMENTS + 1  # the caller's active session first
CHAT_STATEMENTS = 3  # BEGIN, the session's parties and status, the insert
# BEGIN, lock the wallet, the key, the transfer, its entries, the wallet, the balance after,
# then the due time of the live session: BEGIN, its row, the balance, its new due time.
RECHARGE_STATEMENTS = 11


@contextmanager
def counted():
    """Collect every SQL statement sent to the database inside the block."""
    statements = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


@pytest.fixture
def services_(app):
    return app.extensions["consult"]


@pytest.fixture
def live(app, services_):
    """Make live sessions: a user with ₹500 and an astrologer at ₹20/min each, accepted."""
    made = []

    def make():
        n = len(made)
        now = utcnow()
        user = accounts.create_user(f"user{n}", PASSWORD, role="user", now=now)
        astrologer = accounts.create_user(
            f"astro{n}", PASSWORD, role="astrologer", now=now, rate_paise_per_minute=2000
        )
        wallet.recharge(user.id, 50_000, at=now, provider=services_.payments, hub=services_.hub)
        c = consultations.request_consultation(
            user, astrologer.id, at=now, hub=services_.hub, policy=services_.policy
        )
        be_present(user.id, astrologer.id, hub=services_.hub)
        consultations.accept(astrologer, c.id, at=now, hub=services_.hub)
        # What a socket keeps: the caller's id and role, with no database session behind them.
        made.append((Caller(user.id, user.role), Caller(astrologer.id, astrologer.role), c.id))
        return made[-1]

    return make


def _end(services_, caller, session_id):
    return consultations.end_for_caller(
        caller,
        session_id,
        at=utcnow() + timedelta(seconds=30),
        hub=services_.hub,
        policy=services_.policy,
        idempotency_key="end-1",
        fingerprint="end",
    )


def test_an_end_by_id_costs_nine_statements(live, services_):
    first, _, first_id = live()
    _end(services_, first, first_id)  # the platform's account is looked up once per process
    user, _, session_id = live()
    live()  # a third session in the database changes nothing
    with counted() as statements:
        outcome = _end(services_, user, session_id)
    assert outcome.consultation.total_cost_paise == 1000  # 30 s at ₹20/min
    assert len(statements) <= END_STATEMENTS, "\n".join(statements)


def test_an_end_of_the_active_session_costs_one_more(live, services_):
    first, _, first_id = live()
    _end(services_, first, first_id)
    user, astrologer, _ = live()
    with counted() as statements:
        outcome = _end(services_, astrologer, None)
    assert not outcome.already_ended
    assert len(statements) <= END_WITHOUT_ID_STATEMENTS, "\n".join(statements)


def test_a_chat_message_costs_three_statements(live, services_):
    user, _, session_id = live()
    with counted() as statements:
        chat.post_message(user, session_id, "Namaste", at=utcnow(), hub=services_.hub)
    assert len(statements) <= CHAT_STATEMENTS, "\n".join(statements)


def test_a_recharge_during_a_session_costs_a_fixed_number(live, services_):
    user, _, _ = live()
    with counted() as statements:
        wallet.recharge(user.id, 5_000, at=utcnow(), provider=services_.payments, hub=services_.hub)
    assert len(statements) <= RECHARGE_STATEMENTS, "\n".join(statements)


def test_a_scheduler_scan_costs_the_same_with_one_live_session_or_forty(live, services_):
    policy, now = services_.policy, utcnow() + timedelta(seconds=5)
    live()
    with counted() as one:
        assert consultations.due_ends(now=now, policy=policy) == []
        assert consultations.low_balance(now=now, policy=policy) == []
    for _ in range(39):
        live()
    with counted() as forty:
        assert consultations.due_ends(now=now, policy=policy) == []
        assert consultations.low_balance(now=now, policy=policy) == []
    assert len(forty) == len(one) <= 2, "\n".join(forty)


def test_a_tick_with_no_request_to_expire_takes_no_write_lock(live, services_):
    live()  # an active session: not a request, nothing to expire
    with counted() as statements:
        assert (
            consultations.expire_stale(now=utcnow(), hub=services_.hub, policy=services_.policy)
            == []
        )
    reads = [s for s in statements if s != "BEGIN"]  # a read's own, on SQLite
    assert len(reads) == 1 and reads[0].lstrip().startswith("SELECT"), statements
    assert "FOR UPDATE" not in reads[0] and "BEGIN IMMEDIATE" not in statements


DUE_COLUMNS = ("funded_until", "user_left_at", "astrologer_left_at", "ends_at")


def test_the_due_queries_use_the_due_time_indexes(app, live, services_):
    """The plans name the indexes: the database proves the tick reads only what is due."""
    live()
    branches = [
        f"SELECT id FROM consultations WHERE status = 'active' AND {column} <= :at"
        for column in DUE_COLUMNS
    ]
    due = " UNION ALL ".join(branches)  # the shape of consultations.due._due_query
    params = {"at": utcnow().replace(tzinfo=None)}
    if db.engine.dialect.name == "sqlite":
        rows = db.session.execute(text(f"EXPLAIN QUERY PLAN {due}"), params)
        plan = " ".join(str(row[-1]) for row in rows)
    else:
        # PostgreSQL plans by statistics: give it 2,000 live sessions, none of them due, as
        # in production, and it must choose each due time's own index.
        _many_live_sessions_none_due(2000)
        plan = " ".join(row[0] for row in db.session.execute(text(f"EXPLAIN {due}"), params))
    db.session.rollback()
    assert "ix_consultations_status_funded_until" in plan, plan
    for column in DUE_COLUMNS[1:]:  # partial: only the sessions that have one
        assert f"ix_consultations_active_{column}" in plan, plan


def test_the_due_queries_write_the_status_into_the_sql(app):
    """A bound status would leave PostgreSQL's generic plan of the prepared statement unable
    to prove the partial indexes' `status = 'active'`, and it would scan."""
    from consult.consultations import due

    at = utcnow()
    for query in (due._due_query(at, at), due._NEXT_DUE):
        sql = str(query.compile(db.engine))
        assert sql.count("consultations.status = 'active'") == 4, sql


@pytest.mark.sqlite_only  # PostgreSQL plans a near-empty table as a scan
def test_the_next_due_time_is_read_from_the_due_time_indexes(app, live):
    from consult.consultations import due

    live()
    compiled = due._NEXT_DUE.compile(db.engine)
    at = utcnow().replace(tzinfo=None).isoformat(" ")
    values = compiled.construct_params({"now": at, "cutoff": at})
    positional = tuple(values[name] for name in compiled.positiontup)
    rows = db.session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional)
    plan = " ".join(str(row[-1]) for row in rows)
    db.session.rollback()
    assert "ix_consultations_status_funded_until" in plan, plan
    for column in DUE_COLUMNS[1:]:
        assert f"ix_consultations_active_{column}" in plan, plan


def _many_live_sessions_none_due(count: int) -> None:
    astrologer = db.session.scalar(text("SELECT id FROM users WHERE role = 'astrologer' LIMIT 1"))
    db.session.execute(
        text(
            "INSERT INTO users (username, display_name, password_hash, role, created_at) "
            "SELECT 'bulk' || g, 'Bulk', 'x', 'user', now() FROM generate_series(1, :n) g"
        ),
        {"n": count},
    )
    db.session.execute(
        text(
            "INSERT INTO consultations (user_id, astrologer_id, rate_paise_per_minute, status, "
            "requested_at, started_at, funded_until, paused_micros, refunded_paise) "
            "SELECT id, :astrologer, 100, 'active', now(), now(), now() + interval '1 hour', 0, 0 "
            "FROM users WHERE username LIKE 'bulk%'"
        ),
        {"astrologer": astrologer},
    )
    db.session.execute(text("ANALYZE consultations"))


def test_a_party_coming_and_going_outside_a_live_session_costs_one_read(live, services_):
    """Most sockets open and close with no live session: no write lock, no fsync."""
    live()  # someone else's live session
    idle = accounts.create_user("browsing", PASSWORD, role="user", now=utcnow()).id
    for change in (consultations.party_returned, consultations.party_left):
        with counted() as statements:
            assert change(idle, at=utcnow(), hub=services_.hub) == []
        reads = [s for s in statements if s != "BEGIN"]  # a read's own, on SQLite
        assert len(reads) == 1 and reads[0].lstrip().startswith("SELECT"), statements


def test_a_party_leaving_a_live_session_pauses_it(live, services_):
    user, _, session_id = live()
    with counted() as statements:
        paused = consultations.party_left(user.id, at=utcnow(), hub=services_.hub)
    assert paused == [session_id]
    assert any(s.lstrip().upper().startswith("UPDATE CONSULTATIONS") for s in statements)


# The pages (b-trees: tables and indexes) an end writes, each a 4 KB frame of SQLite's WAL
# at commit: the consultation and five of its indexes, the transfer and its settlement's
# unique index, the entries and their two indexes, the wallet, the audit record and its
# six indexes, the idempotency key's answer and its index. No index a session nobody left
# would only pass through (migration f3a8c1d5b7e2: 25 before).
END_WAL_PAGES = 20


def _wal_frames(database: str) -> int:
    """The frames of the WAL's current generation (SQLite's file format, section 4)."""
    with open(database + "-wal", "rb") as wal:
        data = wal.read()
    page_size, salts = struct.unpack(">I", data[8:12])[0], data[16:24]
    frames, offset = 0, 32
    while offset + 24 + page_size <= len(data) and data[offset + 8 : offset + 16] == salts:
        frames, offset = frames + 1, offset + 24 + page_size
    return frames


@pytest.mark.sqlite_only
def test_an_end_writes_a_fixed_number_of_pages(live, services_):
    first, _, first_id = live()
    _end(services_, first, first_id)
    user, _, session_id = live()
    database = db.engine.url.database
    before = _wal_frames(database)
    _end(services_, user, session_id)
    pages = _wal_frames(database) - before
    assert 0 < pages <= END_WAL_PAGES  # none (a WAL begun again between) would prove nothing


def test_a_ticks_lease_and_heartbeat_cost_a_statement_each(app):
    """Both are written twice a second and once a second on the event loop: each a lean
    transaction of one UPDATE (and BEGIN on SQLite) once the row exists."""
    from consult.scheduler import beat, hold_lease

    now, ttl = utcnow(), timedelta(seconds=2)
    hold_lease("counted", "me", now=now, ttl=ttl)
    beat("me", now)
    with counted() as statements:
        assert hold_lease("counted", "me", now=now + timedelta(seconds=1), ttl=ttl)
        beat("me", now + timedelta(seconds=1))
    writes = [s for s in statements if s not in ("BEGIN", "BEGIN IMMEDIATE")]
    assert len(writes) == 2 and all(s.lstrip().startswith("UPDATE") for s in writes), statements
