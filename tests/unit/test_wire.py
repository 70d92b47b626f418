"""The JSON shapes of the contract (consult/openapi.json, docs/websocket.md), built from
plain objects: every field the contract names, times in UTC with a Z, and the balance only
for the user who pays."""

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

from consult import wire
from consult.consultations.settlement import EndOutcome
from helpers.contract import (
    BILLING_FIELDS,
    END_FIELDS,
    ENDED_FIELDS,
    MESSAGE_FIELDS,
    RATING_FIELDS,
    REPORT_FIELDS,
    SESSION_FIELDS,
)

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
USER, ASTROLOGER = 7, 9


def ended_consultation(**changes):
    fields = dict(
        id=42,
        user_id=USER,
        astrologer_id=ASTROLOGER,
        astrologer=SimpleNamespace(display_name="Guru Dev"),
        status="ended",
        rate_paise_per_minute=6100,
        requested_at=T0,
        started_at=T0 + timedelta(seconds=5),
        ended_at=T0 + timedelta(seconds=130),
        end_reason="user_requested",
        billed_seconds=125,
        total_cost_paise=125 * 6100 // 60,
        balance_after_paise=10_000 - 125 * 6100 // 60,
        max_minutes=None,
        max_spend_paise=None,
        refunded_paise=None,
    )
    return SimpleNamespace(**{**fields, **changes})


def test_a_session_has_every_field_and_utc_times():
    body = wire.session(ended_consultation())
    assert set(body) >= SESSION_FIELDS
    assert (body["requestedAt"], body["endedAt"]) == (
        "2026-03-01T10:00:00Z",
        "2026-03-01T10:02:10Z",
    )
    assert (body["durationSeconds"], body["totalCostPaise"]) == (125, 12_708)
    assert body["refundedPaise"] == 0  # never null: nothing refunded is zero


def test_a_time_in_another_zone_is_given_in_utc():
    india = timezone(timedelta(hours=5, minutes=30))
    body = wire.session(ended_consultation(started_at=datetime(2026, 3, 1, 15, 30, tzinfo=india)))
    assert body["startedAt"] == "2026-03-01T10:00:00Z"


def test_a_session_not_yet_started_has_null_times_and_cost():
    body = wire.session(
        ended_consultation(
            status="requested",
            started_at=None,
            ended_at=None,
            end_reason=None,
            billed_seconds=None,
            total_cost_paise=None,
        )
    )
    assert body["startedAt"] is body["endedAt"] is body["totalCostPaise"] is None


def test_an_end_answer_shows_the_balance_only_to_the_user():
    outcome = EndOutcome(consultation=ended_consultation(), already_ended=False)
    mine = wire.end_answer(outcome, viewer_id=USER)
    theirs = wire.end_answer(outcome, viewer_id=ASTROLOGER)
    assert set(mine) >= END_FIELDS and set(theirs) >= END_FIELDS
    assert mine["balancePaise"] == 10_000 - 12_708 and theirs["balancePaise"] is None
    assert {k: v for k, v in mine.items() if k != "balancePaise"} == {
        k: v for k, v in theirs.items() if k != "balancePaise"
    }
    assert mine["alreadyEnded"] is False and mine["endedAt"] == "2026-03-01T10:02:10Z"


def test_the_ended_event_carries_the_settled_figures():
    assert wire.ended_event(ended_consultation()) == {
        "sessionId": 42,
        "reason": "user_requested",
        "timestamp": "2026-03-01T10:02:10Z",
        "durationSeconds": 125,
        "totalCostPaise": 12_708,
    }
    assert set(wire.ended_event(ended_consultation())) >= ENDED_FIELDS


def test_the_bill_shows_the_balance_only_to_the_user():
    meter = SimpleNamespace(
        session_id=42,
        user_id=USER,
        elapsed_seconds=30,
        cost_paise=3_050,
        balance_paise=6_950,
        funded_seconds_left=68,
        paused=False,
        rate_paise_per_minute=6100,
        ends_by=None,
        seconds_left=None,
    )
    mine, theirs = wire.bill(meter, viewer_id=USER), wire.bill(meter, viewer_id=ASTROLOGER)
    assert set(mine) >= BILLING_FIELDS and set(theirs) >= BILLING_FIELDS
    assert (mine["balancePaise"], theirs["balancePaise"]) == (6_950, None)


def test_messages_ratings_and_reports_have_their_fields():
    message = SimpleNamespace(id=1, sender_id=USER, text="Namaste", sent_at=T0)
    assert set(wire.message(message)) | {"sessionId"} >= MESSAGE_FIELDS
    rating = SimpleNamespace(consultation_id=42, stars=5, comment=None, rated_at=T0)
    assert set(wire.rating(rating)) >= RATING_FIELDS
    report = SimpleNamespace(
        id=3,
        consultation_id=42,
        category="other",
        text="why",
        status="open",
        created_at=T0,
        refund_paise=None,
        note=None,
        resolved_at=None,
    )
    assert set(wire.report(report)) >= REPORT_FIELDS
