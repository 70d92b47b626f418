"""The scheduler's lease and heartbeat: one holder at a time, taken over only once it has
expired, and each written in a few statements (they run twice a second on the event loop)."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from consult import scheduler
from consult.db import db
from consult.scheduler import Heartbeat, Lease, beat, hold_lease

NOW = datetime(2026, 12, 5, 5, 0, tzinfo=UTC)
TTL = timedelta(seconds=2)


def _lease() -> tuple[str, datetime]:
    db.session.rollback()  # a fresh read, not the session's cached row
    row = db.session.get(Lease, "clock")
    return row.holder, row.expires_at


def test_the_first_asker_takes_a_free_lease(app):
    assert hold_lease("clock", "a", now=NOW, ttl=TTL)
    assert _lease() == ("a", NOW + TTL)


def test_another_instance_cannot_take_it_before_it_expires(app):
    assert hold_lease("clock", "a", now=NOW, ttl=TTL)
    assert not hold_lease("clock", "b", now=NOW + TTL - timedelta(microseconds=1), ttl=TTL)
    assert _lease() == ("a", NOW + TTL)  # unchanged by the refusal


def test_the_holder_renews_it_and_so_keeps_it(app):
    assert hold_lease("clock", "a", now=NOW, ttl=TTL)
    assert hold_lease("clock", "a", now=NOW + timedelta(seconds=1), ttl=TTL)
    assert _lease() == ("a", NOW + timedelta(seconds=3))
    assert not hold_lease("clock", "b", now=NOW + TTL, ttl=TTL)  # the renewal counts


def test_an_expired_lease_goes_to_whoever_asks_next(app):
    assert hold_lease("clock", "a", now=NOW, ttl=TTL)
    assert hold_lease("clock", "b", now=NOW + TTL, ttl=TTL)
    assert _lease() == ("b", NOW + 2 * TTL)
    assert not hold_lease("clock", "a", now=NOW + TTL, ttl=TTL)  # the old holder lost it


def test_a_heartbeat_is_written_then_moved(app):
    beat("a", NOW)
    beat("b", NOW)
    beat("a", NOW + timedelta(seconds=1))
    db.session.rollback()
    rows = db.session.execute(select(Heartbeat.instance_id, Heartbeat.beat_at)).all()
    assert sorted(rows) == [("a", NOW + timedelta(seconds=1)), ("b", NOW)]
    assert scheduler.last_alive(excluding="b") == NOW + timedelta(seconds=1)
