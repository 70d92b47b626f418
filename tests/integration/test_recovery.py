"""Crash recovery in process, on a deterministic clock: a restarted scheduler settles what
a dead instance left active, billed only up to that instance's last heartbeat, whatever
else asks to end it first. (The crashes themselves, with SIGKILL: e2e/test_crashes.py.)"""

from datetime import UTC, datetime, timedelta

from helpers import PASSWORD


def test_an_end_asked_for_before_recovery_runs_is_billed_only_to_the_last_heartbeat(app):
    """Found by the soak: the crashed server's user (or their app, retrying) ends the
    session in the seconds after the restart, before recovery has decided it is an orphan."""
    from consult import accounts, consultations, scheduler, wallet
    from consult.db import db

    services = app.extensions["consult"]
    now = datetime.now(UTC)
    started, last_beat = now - timedelta(seconds=30), now - timedelta(seconds=2)
    user = accounts.create_user("orphan", PASSWORD, role="user", now=started)
    astrologer = accounts.create_user(
        "orphanastro", PASSWORD, role="astrologer", now=started, rate_paise_per_minute=6000
    )
    wallet.recharge(user.id, 50_000, at=started, provider=services.payments, hub=services.hub)
    c = consultations.request_consultation(
        user, astrologer.id, at=started, hub=services.hub, policy=services.policy
    )
    consultations.accept(astrologer, c.id, at=started, hub=services.hub)
    scheduler.beat("the-crashed-instance", last_beat)
    restarted = scheduler.Scheduler(app, interval=0.1)
    # A lone server (the in-memory hub) knows the fresh heartbeat is its dead
    # predecessor's: it settles at once, before any request can end the session.
    user_id, session_id = user.id, c.id  # tick() ends the session these objects live in
    assert restarted.recover() == [session_id]
    restarted.tick(restarted.booted_at + timedelta(seconds=0.5))

    outcome = consultations.end_by_party(
        db.session.get(accounts.User, user_id),
        session_id,
        at=restarted.booted_at + timedelta(seconds=1),
        hub=services.hub,
        policy=services.policy,
    )
    assert outcome.consultation.ended_at <= last_beat, (
        f"billed {outcome.consultation.billed_seconds} s, until "
        f"{outcome.consultation.ended_at}; the server died after {last_beat}"
    )


def test_funds_running_out_in_the_downtime_are_not_charged_past_the_last_heartbeat(app):
    """Deterministic: a dead instance's last heartbeat 1 s ago, a session whose funds run
    out 1 s from now (63 funded seconds, begun 62 s ago), and the restarted scheduler's
    first ticks, before recovery decides."""
    from sqlalchemy import select

    from consult import accounts, consultations, scheduler, wallet
    from consult.db import db

    services = app.extensions["consult"]
    now = datetime.now(UTC)
    started, last_beat = now - timedelta(seconds=62), now - timedelta(seconds=1)
    user = accounts.create_user("downtime", PASSWORD, role="user", now=started)
    astrologer = accounts.create_user(
        "downtimeastro", PASSWORD, role="astrologer", now=started, rate_paise_per_minute=6000
    )
    wallet.recharge(user.id, 6_300, at=started, provider=services.payments, hub=services.hub)
    c = consultations.request_consultation(
        user, astrologer.id, at=started, hub=services.hub, policy=services.policy
    )
    consultations.accept(astrologer, c.id, at=started, hub=services.hub)  # funded for 63 s
    scheduler.beat("the-crashed-instance", last_beat)

    restarted = scheduler.Scheduler(app, interval=0.1)
    session_id = c.id  # tick() ends the session these objects live in
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
