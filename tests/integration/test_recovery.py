"""Crash recovery in process, on a deterministic clock: a restarted scheduler settles what
a dead instance left active, billed only up to that instance's last heartbeat, whatever
else asks to end it first. (The crashes themselves, with SIGKILL: e2e/test_crashes.py.)"""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from consult import accounts, consultations, scheduler
from consult.db import db
from helpers.inprocess import live_session, make_astrologer, make_user, services


def orphan(name: str, balance: int, started: datetime, last_beat: datetime) -> tuple[int, int]:
    """A session live since `started` (at 6000 paise a minute) on a server that died after
    its last heartbeat at `last_beat`: the user's id and the session's."""
    user = make_user(name, balance=balance)
    session_id = live_session(user, make_astrologer(f"{name}astro", rate=6000), started_at=started)
    scheduler.beat("the-crashed-instance", last_beat)
    return user.id, session_id


def test_an_end_asked_for_before_recovery_runs_is_billed_only_to_the_last_heartbeat(app):
    """Found by the soak: the crashed server's user (or their app, retrying) ends the
    session in the seconds after the restart, before recovery has decided it is an orphan."""
    now = datetime.now(UTC)
    started, last_beat = now - timedelta(seconds=30), now - timedelta(seconds=2)
    user_id, session_id = orphan("orphan", 50_000, started, last_beat)
    restarted = scheduler.Scheduler(app, interval=0.1)
    # A lone server (the in-memory hub) knows the fresh heartbeat is its dead
    # predecessor's: it settles at once, before any request can end the session.
    assert restarted.recover() == [session_id]
    restarted.tick(restarted.booted_at + timedelta(seconds=0.5))

    outcome = consultations.end_by_party(
        db.session.get(accounts.User, user_id),
        session_id,
        at=restarted.booted_at + timedelta(seconds=1),
        hub=services().hub,
        policy=services().policy,
    )
    assert outcome.consultation.ended_at <= last_beat, (
        f"billed {outcome.consultation.billed_seconds} s, until "
        f"{outcome.consultation.ended_at}; the server died after {last_beat}"
    )


def test_funds_running_out_in_the_downtime_are_not_charged_past_the_last_heartbeat(app):
    """Deterministic: a dead instance's last heartbeat 1 s ago, a session whose funds run
    out 1 s from now (63 funded seconds, begun 62 s ago), and the restarted scheduler's
    first ticks, before recovery decides."""
    now = datetime.now(UTC)
    started, last_beat = now - timedelta(seconds=62), now - timedelta(seconds=1)
    _, session_id = orphan("downtime", 6_300, started, last_beat)  # funded for 63 s
    restarted = scheduler.Scheduler(app, interval=0.1)
    assert restarted.recover() == [session_id]  # alone: the fresh beat is a dead predecessor's
    for seconds in (1, 2, 2.5):  # ticks before the heartbeat goes stale
        restarted.tick(restarted.booted_at + timedelta(seconds=seconds))
    for seconds in (3.1, 3.5):  # now it is stale: recovery settles what is left
        restarted.tick(restarted.booted_at + timedelta(seconds=seconds))
    db.session.rollback()
    settled = db.session.scalar(
        select(consultations.Consultation).where(consultations.Consultation.id == session_id)
    )
    assert settled.status == "ended"
    assert settled.ended_at <= last_beat, (settled.end_reason, settled.ended_at, last_beat)
    assert settled.end_reason == "system_error"


# ---------------------------------------------------------------- one of several instances


def restarted_in_a_cluster(app) -> scheduler.Scheduler:
    """An instance of a cluster starting up, made the app's clock (as start_background does)."""
    restarted = scheduler.Scheduler(app, interval=0.1, alone=False)
    services().scheduler = restarted
    return restarted


def end_by_user(user_id: int, session_id: int, at: datetime):
    return consultations.end_by_party(
        db.session.get(accounts.User, user_id),
        session_id,
        at=at,
        hub=services().hub,
        policy=services().policy,
    ).consultation


def test_a_whole_cluster_restarting_bills_no_end_past_the_last_heartbeat(app):
    """Every worker of a cluster dies and restarts within seconds (a gunicorn restart). The
    first to start sees its dead predecessors' fresh heartbeats and cannot yet tell; its
    siblings start and beat too. An end asked for meanwhile bills only to the last beat,
    funded ends wait, and the verdict (the predecessors never beat again) settles the rest
    there, however alive the siblings are."""
    now = datetime.now(UTC)
    started, last_beat = now - timedelta(seconds=60), now - timedelta(seconds=1)
    asker, ended_early = orphan("asker", 50_000, started, last_beat)
    _, left_alone = orphan("quiet", 50_000, started, last_beat)
    _, run_dry = orphan("dry", 6_100, started, last_beat)  # funded for 61 s: in the downtime
    scheduler.beat("another-crashed-worker", last_beat - timedelta(seconds=0.5))

    restarted = restarted_in_a_cluster(app)
    assert restarted.recover() == []  # fresh heartbeats: wait and see
    boot = restarted.booted_at
    doubt = services().policy.restart
    assert (doubt.booted_at, doubt.alive_until) == (boot, last_beat)
    scheduler.beat("a-sibling-worker", boot + timedelta(seconds=0.2))  # started after the crash

    settled = end_by_user(asker, ended_early, boot + timedelta(seconds=1))
    assert settled.ended_at == last_beat and settled.billed_seconds == 59
    restarted.tick(boot + timedelta(seconds=1.5))
    db.session.rollback()
    assert db.session.get(consultations.Consultation, run_dry).status == "active"  # waits

    for seconds in (2.5, 3.1, 3.5):
        scheduler.beat("a-sibling-worker", boot + timedelta(seconds=seconds))
        restarted.tick(boot + timedelta(seconds=seconds))
    db.session.rollback()
    for session_id in (left_alone, run_dry):
        c = db.session.get(consultations.Consultation, session_id)
        assert (c.status, c.end_reason, c.ended_at) == ("ended", "system_error", last_beat)
    assert services().policy.restart is None  # decided: ends bill as always


def test_a_worker_restarting_beside_live_ones_changes_nobodys_bill_but_a_beats_worth(app):
    """Only one worker restarts; the others keep beating. The doubt lasts until they are seen
    to beat again: an end meanwhile bills to their newest beat (under a second short), and
    after the verdict nothing is settled and ends bill to their own instant."""
    now = datetime.now(UTC)
    started = now - timedelta(seconds=60)
    user_a, first = orphan("first", 50_000, started, now - timedelta(seconds=0.4))
    user_b, second = orphan("second", 50_000, started, now - timedelta(seconds=0.4))
    restarted = restarted_in_a_cluster(app)
    assert restarted.recover() == []
    boot = restarted.booted_at
    scheduler.beat("the-crashed-instance", boot + timedelta(seconds=0.6))  # alive after all
    settled = end_by_user(user_a, first, boot + timedelta(seconds=1))
    assert settled.ended_at == boot + timedelta(seconds=0.6)

    for seconds in (1.6, 2.6, 3.6):
        scheduler.beat("the-crashed-instance", boot + timedelta(seconds=seconds))
        restarted.tick(boot + timedelta(seconds=seconds))
    db.session.rollback()
    assert db.session.get(consultations.Consultation, second).status == "active"
    assert services().policy.restart is None
    at = boot + timedelta(seconds=4)
    assert end_by_user(user_b, second, at).ended_at == at
