"""The second wave over REST (README "Before and after the end"): limits, ratings, reports,
make-good, refunds, availability.

In process, on SQLite and PostgreSQL. Times are passed to the domain where a rule depends
on them (the scheduler's due ends, the 24-hour and 7-day windows), so nothing sleeps.
"""

from dataclasses import replace
from datetime import timedelta

import pytest

from consult import chat, consultations, feedback
from consult.clock import utcnow
from helpers import PASSWORD
from helpers.books import assert_books_balance
from helpers.contract import ASTROLOGER_FIELDS, REPORT_FIELDS, SESSION_FIELDS, checked
from helpers.inprocess import (
    accept_session,
    add_money,
    balance_of,
    ended_session,
    listen,
    live_session,
    make_user,
    services,
    session_row,
    user_obj,
)

NOT_AVAILABLE = {"error": "Astrologer is not available"}


@pytest.fixture
def make_good(app, monkeypatch):
    """Turn the make-good on as deployed by default (the suite's servers run without it)."""
    s = services()
    monkeypatch.setattr(
        s, "settings", replace(s.settings, make_good_seconds=60, make_good_silent=True)
    )
    return s.policy


def post(client, person, path, body=None, **headers):
    return checked(client.post(path, json=body, headers={**person.auth, **headers}))


def put(client, person, path, body=None):
    return checked(client.put(path, json=body, headers=person.auth))


def get(client, person, path):
    return checked(client.get(path, headers=person.auth))


def end_at(person, session_id, at):
    s = services()
    return consultations.end_by_party(
        user_obj(person), session_id, at=at, hub=s.hub, policy=s.policy
    )


def tick(at):
    """What one scheduler tick would end at `at`, and why."""
    return [
        (d.consultation_id, d.reason)
        for d in consultations.due_ends(now=at, policy=services().policy)
    ]


def settle_due(at):
    s = services()
    for session_id, reason in tick(at):
        consultations.end_session(session_id, reason=reason, at=at, hub=s.hub, policy=s.policy)


def request(client, user, astrologer, **limits):
    return post(client, user, "/api/sessions", {"astrologerId": astrologer.id, **limits})


# ---------------------------------------------------------------- limits


def test_a_request_carries_the_users_limits(client, asha, guru):
    r = request(client, asha, guru, maxMinutes=5, maxSpendPaise=12_000)
    assert r.status_code == 201
    body = r.get_json()
    assert set(body) == SESSION_FIELDS
    assert (body["maxMinutes"], body["maxSpendPaise"], body["refundedPaise"]) == (5, 12_000, 0)


@pytest.mark.parametrize(
    "limits",
    [
        {"maxMinutes": 0},
        {"maxMinutes": -3},
        {"maxMinutes": 1.5},
        {"maxMinutes": "5"},
        {"maxMinutes": True},
        {"maxSpendPaise": 0},
        {"maxSpendPaise": 10**30},
        {"maxSpendPaise": [100]},
    ],
)
def test_a_bad_limit_is_refused_and_nothing_is_requested(client, asha, guru, limits):
    r = request(client, asha, guru, **limits)
    assert r.status_code == 400
    field = next(iter(limits))
    assert r.get_json()["error"].startswith(f"{field} must be a whole number")
    assert get(client, asha, "/api/sessions").get_json() == []


def test_the_spend_cap_ends_the_session_and_the_cost_never_passes_it(client, asha, guru):
    started = utcnow()
    session_id = request(client, asha, guru, maxSpendPaise=2_550).get_json()["id"]
    accept_session(guru, session_id, at=started)
    bill = get(client, asha, "/api/billing/status").get_json()
    assert bill["endsBy"] == "spend_cap"
    assert tick(started + timedelta(seconds=24.9)) == []
    # ₹25.50 buys 25 whole seconds at a rupee a second: due then, with its own reason.
    assert tick(started + timedelta(seconds=25)) == [(session_id, "spend_cap")]
    settle_due(started + timedelta(seconds=40))  # a late tick bills no further
    ended = get(client, asha, f"/api/sessions/{session_id}").get_json()
    assert (ended["endReason"], ended["durationSeconds"], ended["totalCostPaise"]) == (
        "spend_cap",
        25,
        2_500,
    )
    assert balance_of(asha) == 100_000 - 2_500
    assert_books_balance()


def test_the_time_limit_ends_the_session_as_scheduled(client, asha, guru):
    started = utcnow()
    session_id = request(client, asha, guru, maxMinutes=2).get_json()["id"]
    accept_session(guru, session_id, at=started)
    assert get(client, asha, "/api/billing/status").get_json()["endsBy"] == "scheduled_end"
    assert tick(started + timedelta(seconds=119)) == []
    settle_due(started + timedelta(seconds=125))
    ended = get(client, asha, f"/api/sessions/{session_id}").get_json()
    assert (ended["endReason"], ended["durationSeconds"], ended["totalCostPaise"]) == (
        "scheduled_end",
        120,
        12_000,
    )


def test_the_balance_still_ends_a_session_whose_cap_is_above_it(client, guru):
    poor = make_user("poor", balance=7_000)
    started = utcnow()
    session_id = request(client, poor, guru, maxSpendPaise=50_000).get_json()["id"]
    accept_session(guru, session_id, at=started)
    assert get(client, poor, "/api/billing/status").get_json()["endsBy"] == "balance"
    assert tick(started + timedelta(seconds=70)) == [(session_id, "insufficient_balance")]


def test_changing_a_limit_moves_the_end_and_null_clears_it(client, asha, guru):
    session_id = live_session(asha, guru)
    path = f"/api/sessions/{session_id}/limits"
    r = put(client, asha, path, {"maxSpendPaise": 600_000, "maxMinutes": 3})
    assert r.status_code == 200
    assert (r.get_json()["maxSpendPaise"], r.get_json()["maxMinutes"]) == (600_000, 3)
    bill = get(client, asha, "/api/billing/status").get_json()
    assert bill["endsBy"] == "scheduled_end" and 170 <= bill["secondsLeft"] <= 180
    cleared = put(client, asha, path, {"maxMinutes": None}).get_json()
    assert (cleared["maxMinutes"], cleared["maxSpendPaise"]) == (None, 600_000)
    # ₹1,000 in the wallet against a ₹6,000 cap: the wallet ends it first now.
    assert get(client, asha, "/api/billing/status").get_json()["endsBy"] == "balance"
    assert session_row(session_id).ends_at is None


def test_a_limit_already_reached_or_a_foreign_session_changes_nothing(client, asha, guru):
    session_id = live_session(asha, guru, started_at=utcnow() - timedelta(seconds=90))
    path = f"/api/sessions/{session_id}/limits"
    reached = put(client, asha, path, {"maxMinutes": 1})
    assert reached.status_code == 409 and "already run that long" in reached.get_json()["error"]
    spent = put(client, asha, path, {"maxSpendPaise": 9_000})  # 90 s cost ₹90
    assert spent.status_code == 409 and "already cost that much" in spent.get_json()["error"]
    assert put(client, guru, path, {"maxMinutes": 9}).status_code == 403
    stranger = make_user("stranger")
    assert put(client, stranger, path, {"maxMinutes": 9}).status_code == 404
    assert put(client, asha, path, {"maxMinutes": "9"}).status_code == 400
    row = session_row(session_id)
    assert (row.max_minutes, row.max_spend_paise) == (None, None)
    end_at(asha, session_id, utcnow())
    over = put(client, asha, path, {"maxMinutes": 9})
    assert over.status_code == 409 and "has ended" in over.get_json()["error"]


def test_a_change_of_limits_tells_both_parties(client, asha, guru):
    session_id = live_session(asha, guru)
    heard = [listen(asha), listen(guru)]
    put(client, asha, f"/api/sessions/{session_id}/limits", {"maxMinutes": 30})
    for listener in heard:
        assert listener.named("billing:updated") == [{"sessionId": session_id}]


# ---------------------------------------------------------------- ratings


def test_a_rating_shows_on_the_astrologers_card_and_can_change_for_a_day(
    client, asha, guru, monkeypatch
):
    session_id = ended_session(asha, guru, seconds=120)
    path = f"/api/sessions/{session_id}/rating"
    r = put(client, asha, path, {"stars": 4, "comment": "Clear and kind"})
    assert r.status_code == 200
    assert r.get_json()["stars"] == 4 and r.get_json()["comment"] == "Clear and kind"
    assert put(client, asha, path, {"stars": 5}).get_json()["stars"] == 5
    assert get(client, guru, path).get_json()["stars"] == 5  # the astrologer may read it
    (card,) = [a for a in get(client, asha, "/api/astrologers").get_json() if a["id"] == guru.id]
    assert set(card) == ASTROLOGER_FIELDS
    assert (card["ratingAverage"], card["ratingCount"]) == (5.0, 1)

    later = utcnow() + timedelta(hours=24, seconds=1)
    monkeypatch.setattr("consult.web.api.utcnow", lambda: later)
    too_late = put(client, asha, path, {"stars": 1})
    assert too_late.status_code == 409
    assert get(client, asha, path).get_json()["stars"] == 5


def test_ratings_average_to_one_decimal(client, guru):
    for stars, name in ((5, "ravi"), (4, "meera"), (4, "kabir")):
        person = make_user(name, balance=50_000)
        session_id = ended_session(person, guru, seconds=120)
        rated = put(client, person, f"/api/sessions/{session_id}/rating", {"stars": stars})
        assert rated.status_code == 200
    (card,) = [a for a in get(client, guru, "/api/astrologers").get_json() if a["id"] == guru.id]
    assert (card["ratingAverage"], card["ratingCount"]) == (4.3, 3)


@pytest.mark.parametrize(
    "body, status",
    [
        ({"stars": 0}, 400),
        ({"stars": 6}, 400),
        ({"stars": 4.5}, 400),
        ({"stars": "5"}, 400),
        ({"stars": None}, 400),
        ({"stars": 5, "comment": "x" * 1001}, 400),
        ({"stars": 5, "comment": 7}, 400),
    ],
)
def test_a_bad_rating_is_refused(client, asha, guru, body, status):
    session_id = ended_session(asha, guru, seconds=120)
    r = put(client, asha, f"/api/sessions/{session_id}/rating", body)
    assert r.status_code == status
    assert get(client, asha, f"/api/sessions/{session_id}/rating").status_code == 404


def test_only_the_user_rates_and_only_an_ended_session_with_billed_time(client, asha, guru):
    live = live_session(asha, guru)
    early = put(client, asha, f"/api/sessions/{live}/rating", {"stars": 5})
    assert early.status_code == 409
    end_at(asha, live, session_row(live).started_at)  # ended at once: nothing billed
    unbilled = put(client, asha, f"/api/sessions/{live}/rating", {"stars": 5})
    assert unbilled.status_code == 409
    billed = ended_session(asha, guru, seconds=120)
    assert put(client, guru, f"/api/sessions/{billed}/rating", {"stars": 5}).status_code == 403
    other = make_user("other")
    assert put(client, other, f"/api/sessions/{billed}/rating", {"stars": 1}).status_code == 404


# ---------------------------------------------------------------- reports and refunds


def test_a_report_is_resolved_with_a_refund_that_both_parties_see(client, asha, guru, boss):
    session_id = ended_session(asha, guru, seconds=100)  # ₹100
    r = post(
        client,
        asha,
        f"/api/sessions/{session_id}/report",
        {"category": "quality", "text": "The answers were copied"},
    )
    assert r.status_code == 201
    report = r.get_json()
    assert set(report) >= REPORT_FIELDS
    assert (report["status"], report["refundPaise"], report["note"]) == ("open", 0, None)
    again = post(
        client, asha, f"/api/sessions/{session_id}/report", {"category": "other", "text": "x"}
    )
    assert again.status_code == 409
    queue = get(client, boss, "/api/admin/reports?status=open").get_json()
    assert [q["id"] for q in queue] == [report["id"]]
    heard = listen(asha)

    resolve = f"/api/admin/reports/{report['id']}/resolve"
    done = post(client, boss, resolve, {"refundPaise": 4_000, "note": "Half, and a bit"})
    assert done.status_code == 200
    assert (done.get_json()["status"], done.get_json()["refundPaise"]) == ("refunded", 4_000)
    assert post(client, boss, resolve, {"refundPaise": 0, "note": "again"}).status_code == 409
    assert balance_of(asha) == 100_000 - 10_000 + 4_000
    assert heard.named("session:refunded") == [
        {"sessionId": session_id, "refundedPaise": 4_000, "reason": "report"}
    ]
    for party in (asha, guru):
        seen = get(client, party, f"/api/sessions/{session_id}/report").get_json()
        assert (seen["status"], seen["note"]) == ("refunded", "Half, and a bit")
        summary = get(client, party, f"/api/sessions/{session_id}/summary").get_json()
        assert summary["refundedPaise"] == 4_000 and summary["report"]["status"] == "refunded"
    assert_books_balance()


def test_a_report_can_be_rejected_and_refunds_never_pass_the_cost(client, asha, guru, boss):
    session_id = ended_session(asha, guru, seconds=30)  # ₹30
    report = post(
        client, asha, f"/api/sessions/{session_id}/report", {"category": "billing", "text": "?"}
    ).get_json()
    resolve = f"/api/admin/reports/{report['id']}/resolve"
    too_much = post(client, boss, resolve, {"refundPaise": 3_001, "note": "all and more"})
    assert too_much.status_code == 409
    rejected = post(client, boss, resolve, {"refundPaise": 0, "note": "Billed correctly"})
    assert rejected.get_json()["status"] == "rejected"
    assert balance_of(asha) == 100_000 - 3_000
    refund = f"/api/admin/sessions/{session_id}/refund"
    assert post(client, boss, refund, {"amountPaise": 2_000, "note": "goodwill"}).status_code == 200
    over = post(client, boss, refund, {"amountPaise": 1_001, "note": "more"})
    assert over.status_code == 409
    assert post(client, boss, refund, {"amountPaise": 1_000, "note": "the rest"}).status_code == 200
    assert session_row(session_id).refunded_paise == 3_000
    assert balance_of(asha) == 100_000
    assert_books_balance()


@pytest.mark.parametrize(
    "body",
    [
        {"category": "rude", "text": "x"},
        {"category": "quality", "text": ""},
        {"category": "quality", "text": "x" * 2001},
        {"category": None, "text": "x"},
    ],
)
def test_a_bad_report_is_refused(client, asha, guru, body):
    session_id = ended_session(asha, guru, seconds=120)
    assert post(client, asha, f"/api/sessions/{session_id}/report", body).status_code == 400
    assert get(client, asha, f"/api/sessions/{session_id}/report").status_code == 404


def test_reports_only_after_the_end_and_within_seven_days(client, asha, guru, monkeypatch):
    live = live_session(asha, guru)
    body = {"category": "quality", "text": "x"}
    assert post(client, asha, f"/api/sessions/{live}/report", body).status_code == 409
    end_at(asha, live, utcnow())
    later = utcnow() + timedelta(days=7, seconds=5)
    monkeypatch.setattr("consult.web.api.utcnow", lambda: later)
    late = post(client, asha, f"/api/sessions/{live}/report", body)
    assert late.status_code == 409 and "7 days" in late.get_json()["error"]


def test_an_admin_refund_honours_its_idempotency_key(client, asha, guru, boss):
    session_id = ended_session(asha, guru, seconds=60)
    path = f"/api/admin/sessions/{session_id}/refund"
    body = {"amountPaise": 1_500, "note": "sorry"}
    first = post(client, boss, path, body, **{"Idempotency-Key": "refund-1"})
    retry = post(client, boss, path, body, **{"Idempotency-Key": "refund-1"})
    assert first.status_code == retry.status_code == 200
    assert retry.get_json()["refundedPaise"] == 1_500
    misuse = post(client, boss, path, {**body, "amountPaise": 1}, **{"Idempotency-Key": "refund-1"})
    assert misuse.status_code == 422
    assert balance_of(asha) == 100_000 - 6_000 + 1_500


@pytest.mark.parametrize(
    "body",
    [
        {"amountPaise": 0, "note": "x"},
        {"amountPaise": -5, "note": "x"},
        {"amountPaise": "100", "note": "x"},
        {"amountPaise": 10**40, "note": "x"},
        {"amountPaise": 100, "note": ""},
        {"amountPaise": 100},
    ],
)
def test_a_bad_refund_is_refused(client, asha, guru, boss, body):
    session_id = ended_session(asha, guru, seconds=120)
    r = post(client, boss, f"/api/admin/sessions/{session_id}/refund", body)
    assert r.status_code == 400
    assert session_row(session_id).refunded_paise == 0


def test_admin_routes_refuse_everyone_else(client, asha, guru):
    session_id = ended_session(asha, guru, seconds=120)
    for person in (asha, guru):
        for method, path in (
            ("get", "/api/admin/sessions"),
            ("post", "/api/admin/sessions/end"),
            ("post", f"/api/admin/sessions/{session_id}/refund"),
            ("get", "/api/admin/reports"),
            ("post", "/api/admin/reports/1/resolve"),
        ):
            r = getattr(client, method)(path, json={}, headers=person.auth)
            assert r.status_code == 403, (person.role, path)
        assert client.get("/api/admin/reports").status_code == 401


# ---------------------------------------------------------------- make-good


def test_an_astrologer_who_ends_in_the_first_minute_costs_nothing(client, asha, guru, make_good):
    started = utcnow() - timedelta(seconds=40)
    session_id = live_session(asha, guru, started_at=started)
    chat.post_message(user_obj(guru), session_id, "Namaste", at=started, hub=services().hub)
    heard = listen(asha)
    outcome = end_at(guru, session_id, started + timedelta(seconds=40))
    assert outcome.consultation.total_cost_paise == 4_000
    assert outcome.consultation.refunded_paise == 4_000
    assert balance_of(asha) == 100_000
    assert heard.named("session:refunded") == [
        {"sessionId": session_id, "refundedPaise": 4_000, "reason": "early_end"}
    ]
    assert heard.named("wallet:updated")[-1] == {"balancePaise": 100_000}
    body = get(client, asha, f"/api/sessions/{session_id}").get_json()
    assert (body["totalCostPaise"], body["refundedPaise"]) == (4_000, 4_000)
    assert_books_balance()


def test_a_silent_astrologer_costs_nothing_and_one_who_wrote_is_paid(client, guru, make_good):
    silent_user, heard_user = make_user("silent", 50_000), make_user("heard", 50_000)
    started = utcnow() - timedelta(minutes=5)
    silent = live_session(silent_user, guru, started_at=started)
    end_at(silent_user, silent, started + timedelta(minutes=3))
    assert balance_of(silent_user) == 50_000
    assert session_row(silent).refunded_paise == 18_000

    spoken = live_session(heard_user, guru, started_at=started)
    chat.post_message(user_obj(guru), spoken, "Your chart says", at=started, hub=services().hub)
    end_at(heard_user, spoken, started + timedelta(minutes=3))
    assert balance_of(heard_user) == 50_000 - 18_000
    assert session_row(spoken).refunded_paise == 0
    assert_books_balance()


def test_a_user_who_ends_early_pays_as_always(client, asha, guru, make_good):
    started = utcnow() - timedelta(seconds=20)
    session_id = live_session(asha, guru, started_at=started)
    chat.post_message(user_obj(guru), session_id, "Hello", at=started, hub=services().hub)
    end_at(asha, session_id, started + timedelta(seconds=20))
    assert balance_of(asha) == 100_000 - 2_000


# ---------------------------------------------------------------- availability


def test_a_busy_or_offline_astrologer_cannot_be_requested(client, asha, guru):
    for status in ("busy", "offline"):
        r = put(client, guru, "/api/me/availability", {"status": status})
        assert r.get_json() == {"status": status, "maxSessions": None}
        refused = request(client, asha, guru)
        assert (refused.status_code, refused.get_json()) == (409, NOT_AVAILABLE)
        (card,) = [
            a for a in get(client, asha, "/api/astrologers").get_json() if a["id"] == guru.id
        ]
        assert card["availability"] == status
    put(client, guru, "/api/me/availability", {"status": "online"})
    assert request(client, asha, guru).status_code == 201


def test_an_astrologer_at_their_chat_limit_shows_busy_and_is_refused(client, guru):
    put(client, guru, "/api/me/availability", {"status": "online", "maxSessions": 1})
    first, second = make_user("first", 50_000), make_user("second", 50_000)
    live_session(first, guru)
    refused = request(client, second, guru)
    assert (refused.status_code, refused.get_json()) == (409, NOT_AVAILABLE)
    (card,) = [a for a in get(client, second, "/api/astrologers").get_json() if a["id"] == guru.id]
    assert card["availability"] == "busy"
    put(client, guru, "/api/me/availability", {"status": "online", "maxSessions": None})
    assert request(client, second, guru).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"status": "away"},
        {},
        {"status": "online", "maxSessions": 0},
        {"status": "online", "maxSessions": 2.5},
        {"status": "online", "maxSessions": 10**20},
    ],
)
def test_bad_availability_is_refused(client, guru, body):
    assert put(client, guru, "/api/me/availability", body).status_code == 400
    assert user_obj(guru).availability == "online"


def test_only_astrologers_set_availability(client, asha):
    assert put(client, asha, "/api/me/availability", {"status": "busy"}).status_code == 403


# ---------------------------------------------------------------- operators end sessions


def test_an_admin_ends_sessions_in_bulk_each_settled_once(client, guru, boss):
    users = [make_user(name, 50_000) for name in ("one", "two")]
    ids = [live_session(u, guru, started_at=utcnow() - timedelta(seconds=30)) for u in users]
    heard = [listen(u) for u in users]
    r = post(
        client, boss, "/api/admin/sessions/end", {"sessionIds": [*ids, 99999], "note": "abuse"}
    )
    results = r.get_json()["results"]
    assert [(x["sessionId"], x["status"]) for x in results] == [
        (ids[0], 200),
        (ids[1], 200),
        (99999, 404),
    ]
    assert all(x["body"]["reason"] == "admin_ended" for x in results[:2])
    for listener, session_id in zip(heard, ids, strict=True):
        (ended,) = listener.named("consult:ended")
        assert (ended["sessionId"], ended["reason"]) == (session_id, "admin_ended")
    again = post(client, boss, "/api/admin/sessions/end", {"sessionIds": ids, "note": "again"})
    assert all(x["body"]["alreadyEnded"] for x in again.get_json()["results"])
    listing = get(client, boss, "/api/admin/sessions?status=ended").get_json()
    assert {s["id"] for s in listing} >= set(ids)
    assert_books_balance()


# ---------------------------------------------------------------- the automatic summary


def test_the_summary_digests_the_chat(client, asha, guru):
    started = utcnow() - timedelta(minutes=3)
    session_id = live_session(asha, guru, started_at=started)
    hub = services().hub
    lines = [
        (asha, "Namaste. Will my career change this year? I feel stuck in my career."),
        (guru, "Namaste"),
        (guru, "Saturn moves into your tenth house in March, so a career change is likely."),
        (asha, "Thank you"),
        (guru, "Ok"),
    ]
    for person, text in lines:
        chat.post_message(user_obj(person), session_id, text, at=started, hub=hub)
    end_at(asha, session_id, started + timedelta(minutes=2))
    digest = get(client, asha, f"/api/sessions/{session_id}/summary").get_json()["digest"]
    assert digest["firstQuestion"] == lines[0][1]
    assert digest["lastAnswer"] == lines[2][1]  # the last substantial one, not "Ok"
    assert (digest["userMessages"], digest["astrologerMessages"]) == (2, 3)
    assert digest["topWords"][0] == {"word": "career", "count": 3}
    assert digest["billedSeconds"] == 120


def test_nothing_here_reaches_the_database_for_a_stranger(client, asha, guru):
    session_id = ended_session(asha, guru, seconds=120)
    stranger = make_user("nosy")
    assert get(client, stranger, f"/api/sessions/{session_id}/rating").status_code == 404
    assert get(client, stranger, f"/api/sessions/{session_id}/report").status_code == 404
    r = post(
        client, stranger, f"/api/sessions/{session_id}/report", {"category": "other", "text": "x"}
    )
    assert r.status_code == 404
    assert feedback.reports() == []
    assert PASSWORD  # the shared test password signs everyone in
    add_money(stranger.id, 1)
