"""The operator's audit search (issue 12 part 5), through the Flask test client: each filter,
keyset pages of fifty, money events linked to their ledger transfers, a transfer's page, the
CSV download, and bad input answered in place.

In process, on SQLite and PostgreSQL (the query plans on SQLite, where they are stable).
"""

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from consult import audit, audit_search, ledger
from consult.clock import utcnow
from consult.consultations import refunds
from consult.db import db, write_transaction
from helpers.inprocess import (
    HX,
    RATE,
    end_as,
    ended_session,
    fresh,
    live_session,
    make_astrologer,
    request_session,
    services,
    text_of,
    user_obj,
)


@pytest.fixture
def sage(app):
    return make_astrologer("sage", rate=RATE, name="Sage Rao", token=False)


def refund(boss, session_id: int, amount: int, note: str = "Goodwill") -> None:
    fresh()
    refunds.refund(
        user_obj(boss), session_id, amount, note, at=utcnow(), hub=services().hub, request_id="r-1"
    )


def event_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="event-(\d+)">', html)]


def rows_of(html: str) -> dict[int, str]:
    return {int(n): row for n, row in re.findall(r'<tr id="event-(\d+)">(.*?)</tr>', html, re.S)}


def search(admin, **filters):
    return admin[0].get("/admin/audit", query_string=filters)


def all_events(**where) -> list[audit.SessionEvent]:
    fresh()
    query = select(audit.SessionEvent).order_by(audit.SessionEvent.id.desc())
    for name, value in where.items():
        query = query.where(getattr(audit.SessionEvent, name) == value)
    return list(db.session.scalars(query))


# ---------------------------------------------------------------- filters


def test_each_filter_finds_its_events_and_no_others(app, alice, asha, guru, sage, admin, boss):
    first = ended_session(alice, guru)
    second = ended_session(asha, sage)
    refund(boss, second, 500)
    client, token = admin
    client.post(
        f"/admin/people/{guru.id}/profile",
        data={"rate": "70", "speciality": "", "bio": "", "csrf_token": token},
        headers={**HX, "X-Request-Id": "req-rate-1"},
    )

    def found(**filters) -> set[int]:
        r = search(admin, **filters)
        assert r.status_code == 200, text_of(r)
        return set(event_ids(text_of(r)))

    everything = {e.id for e in all_events()}
    assert found() == everything
    assert found(session=str(first)) == {e.id for e in all_events(consultation_id=first)}
    assert found(session=f"#{second}") == {e.id for e in all_events(consultation_id=second)}
    # A person: as a party of the session, as the actor, as the subject of an admin's change.
    assert found(user="alice") == {e.id for e in all_events(consultation_id=first)}
    assert found(user=str(guru.id)) == (
        {e.id for e in all_events(consultation_id=first)}
        | {e.id for e in all_events(subject_id=guru.id)}
    )
    assert found(user="boss") == {e.id for e in all_events(actor_id=boss.id)}
    assert found(astrologer="sage") == {e.id for e in all_events(consultation_id=second)}
    assert found(user="asha", astrologer="guru") == set()
    assert found(kind="refunded") == {e.id for e in all_events(kind="refunded")}
    assert found(reason="user_requested") == {e.id for e in all_events(reason="user_requested")}
    assert found(request="req-rate-1") == {e.id for e in all_events(request_id="req-rate-1")}
    assert len(found(request="req-rate-1")) == 1
    assert found(kind="rate_changed", user="guru") == found(request="req-rate-1")


def test_a_time_range_includes_both_ends_to_the_minute(app, alice, guru, admin):
    long_ago = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    old = ended_session(alice, guru, seconds=30, at=long_ago)
    recent = ended_session(alice, guru, seconds=30)
    old_ids = {e.id for e in all_events(consultation_id=old)}
    recent_ids = {e.id for e in all_events(consultation_id=recent)}

    def found(**filters) -> set[int]:
        return set(event_ids(text_of(search(admin, **filters))))

    assert found(**{"from": "2026-01-10", "to": "2026-01-10"}) == old_ids
    assert found(**{"from": "2026-01-10T11:59", "to": "2026-01-10T12:00"}) == old_ids
    assert found(**{"from": "2026-01-10T12:01"}) == recent_ids
    assert found(to="2026-01-09") == set()


# ---------------------------------------------------------------- pages


def test_pages_of_fifty_newest_first_with_no_event_twice(app, alice, guru, admin):
    session_id = request_session(alice, guru)
    with write_transaction():
        for n in range(118):
            audit.record(session_id, "note", at=utcnow(), detail=f"n{n}")
    total = len(all_events(consultation_id=session_id))
    assert total == 119  # the request, and the notes
    seen, url, pages = [], "/admin/audit?kind=note", 0
    while url:
        html = text_of(admin[0].get(url.replace("&amp;", "&")))
        ids = event_ids(html)
        assert ids == sorted(ids, reverse=True)
        seen += ids
        pages += 1
        older = re.search(r'<a href="([^"]+)" rel="next">Older', html)
        url = older and older.group(1)
    assert pages == 3 and len(seen) == len(set(seen)) == 118
    # And back: the page newer than the last one is the middle one.
    last = text_of(admin[0].get(f"/admin/audit?kind=note&before={seen[99] + 0}"))
    assert event_ids(last) == seen[100:]
    newer = re.search(r'<a href="([^"]+)" rel="prev">', last).group(1).replace("&amp;", "&")
    assert event_ids(text_of(admin[0].get(newer))) == seen[50:100]


# ---------------------------------------------------------------- money and transfers


def test_money_events_link_to_their_transfers(app, alice, guru, admin, boss):
    session_id = ended_session(alice, guru, seconds=100)  # ₹100.00
    refund(boss, session_id, 1_000)
    refund(boss, session_id, 2_000)
    fresh()
    settlement = db.session.scalar(
        select(ledger.Transfer.id).where(ledger.Transfer.consultation_id == session_id)
    )
    refund_transfers = list(
        db.session.scalars(
            select(ledger.Transfer.id)
            .where(ledger.Transfer.refund_of_id == session_id)
            .order_by(ledger.Transfer.id)
        )
    )
    html = text_of(search(admin, session=str(session_id)))
    rows = rows_of(html)
    end_event = all_events(consultation_id=session_id, kind="ended")[0]
    refund_events = sorted(e.id for e in all_events(consultation_id=session_id, kind="refunded"))
    assert f'href="/admin/transfers/{settlement}">Transfer #{settlement}</a>' in rows[end_event.id]
    for event_id, transfer_id in zip(refund_events, refund_transfers, strict=True):
        assert f'href="/admin/transfers/{transfer_id}">' in rows[event_id]
    requested = all_events(consultation_id=session_id, kind="requested")[0]
    assert "/admin/transfers/" not in rows[requested.id]

    page = text_of(admin[0].get(f"/admin/transfers/{refund_transfers[1]}"))
    assert "Transfer #" in page and "Refund" in page
    assert re.search(r'data-field="amount">₹20.00<', page)
    assert f'href="/admin/sessions/{session_id}">#{session_id}</a>' in page
    assert f'href="/admin/people/{alice.id}">alice</a>' in page  # the wallet credited
    assert f'href="/admin/people/{guru.id}">Guru Dev</a>' in page  # the earnings debited


def test_a_session_that_billed_nothing_links_to_its_empty_settlement(app, alice, guru, admin):
    session_id = live_session(alice, guru)
    end_as(alice, session_id, utcnow() - timedelta(seconds=5))  # before it started: 0 s
    fresh()
    transfer = db.session.scalar(
        select(ledger.Transfer.id).where(ledger.Transfer.consultation_id == session_id)
    )
    html = text_of(search(admin, session=str(session_id), kind="ended"))
    assert f"/admin/transfers/{transfer}" in html
    assert "moved no money" in text_of(admin[0].get(f"/admin/transfers/{transfer}"))


# ---------------------------------------------------------------- CSV


def test_the_csv_holds_the_filtered_events_and_their_transfers(app, alice, asha, guru, admin, boss):
    first = ended_session(alice, guru)
    ended_session(asha, guru)
    refund(boss, first, 700, note='Sorry, "really", sorry')
    r = search(admin, user="alice", format="csv")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="consult-audit.csv"' in r.headers["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(text_of(r))))
    assert [int(line["eventId"]) for line in lines] == [
        e.id for e in all_events(consultation_id=first)
    ]
    assert list(lines[0]) == list(
        ("eventId", "at", "kind", "sessionId", "subjectId", "actorId", "actor", "reason")
        + ("amountPaise", "transferId", "requestId", "detail")
    )
    by_kind = {line["kind"]: line for line in lines}
    assert by_kind["refunded"]["amountPaise"] == "700"
    assert by_kind["refunded"]["actor"] == "boss"
    assert by_kind["refunded"]["detail"] == 'Sorry, "really", sorry'
    assert by_kind["ended"]["transferId"] and by_kind["refunded"]["transferId"]
    assert by_kind["requested"]["transferId"] == ""
    assert by_kind["ended"]["at"].endswith("Z")
    # The page links to the download with its own filters.
    html = text_of(search(admin, user="alice", kind="ended"))
    assert 'href="/admin/audit?format=csv&amp;user=alice&amp;kind=ended"' in html


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("filters", "says"),
    [
        ({"session": "abc"}, "The session must be a number like 42"),
        ({"session": str(10**30)}, "The session must be a number like 42"),
        ({"session": "-4"}, "The session must be a number like 42"),
        ({"user": "nobody-here"}, "No user is called 'nobody-here'"),
        ({"user": str(10**30)}, "No user is called"),
        ({"astrologer": "alice"}, "alice is not an astrologer"),
        ({"from": "yesterday"}, "Times must look like 2026-12-03"),
        ({"from": "2026-12-03", "to": "2026-12-01"}, "From must be before to"),
        ({"request": "x" * 65}, "longer than any value stored there"),
        ({"before": "abc"}, "before must be a number"),
    ],
)
def test_bad_filters_are_refused_in_place(app, alice, guru, admin, filters, says):
    ended_session(alice, guru)
    r = search(admin, **filters)
    assert r.status_code == 400
    html = text_of(r)
    error = re.search(r'<p class="error" role="alert"[^>]*>([^<]*)</p>', html)
    assert error and says in error.group(1).replace("&#39;", "'"), html
    assert event_ids(html) == []
    fragment = admin[0].get("/admin/audit", query_string=filters, headers=HX)
    assert fragment.status_code == 400
    assert text_of(fragment).lstrip().startswith('<section id="audit-results"')
    csv_answer = search(admin, **filters, format="csv")
    assert csv_answer.status_code == 400


# ---------------------------------------------------------------- events about people


def test_events_about_people_keep_the_books_check_and_the_trails_as_they_were(
    app, alice, guru, admin, boss
):
    from helpers.books import assert_books_balance

    session_id = ended_session(alice, guru)
    trail_before = [e.id for e in audit.trail(session_id)]
    client, token = admin
    client.post(f"/admin/people/{alice.id}/suspend", data={"note": "x", "csrf_token": token})
    client.post(f"/admin/people/{alice.id}/restore", data={"note": "y", "csrf_token": token})
    fresh()
    assert [e.id for e in audit.trail(session_id)] == trail_before
    assert [e.kind for e in audit.recent(kind="ended")] == ["ended"]
    assert_books_balance()
    # An event about nothing at all cannot be written.
    with pytest.raises(Exception, match="(?i)check|constraint"), write_transaction():
        audit.record(None, "suspended", at=utcnow(), actor_id=boss.id)


# ---------------------------------------------------------------- staying fast


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        (audit_search.Filters(kind="ended"), "ix_session_events_kind_id"),
        (audit_search.Filters(reason="admin_ended"), "ix_session_events_reason_id"),
        (audit_search.Filters(request_id="abc"), "ix_session_events_request_id"),
        (audit_search.Filters(session_id=5), "ix_session_events_consultation_id"),
        (audit_search.Filters(person_id=5), "ix_session_events_actor_id"),
        (audit_search.Filters(person_id=5), "ix_session_events_subject_id"),
        (audit_search.Filters(person_id=5), "ix_consultations_user_id"),
        (audit_search.Filters(astrologer_id=5), "ix_consultations_astrologer_id"),
        (  # a range; "since" alone reads the newest backwards, which is what it wants
            audit_search.Filters(
                since=datetime(2026, 1, 1, tzinfo=UTC), until=datetime(2026, 2, 1, tzinfo=UTC)
            ),
            "ix_session_events_at",
        ),
    ],
)
@pytest.mark.sqlite_only  # PostgreSQL plans an empty table as a scan: not a stable question
def test_each_filter_is_an_index_search_on_sqlite(app, filters, index):
    query = (
        select(audit.SessionEvent)
        .where(*audit_search._conditions(filters))
        .order_by(audit.SessionEvent.id.desc())
        .limit(51)
    )
    sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
    plan = " | ".join(row[-1] for row in db.session.execute(text("EXPLAIN QUERY PLAN " + sql)))
    assert f"INDEX {index}" in plan, plan
    assert "SCAN session_events" not in plan, plan
