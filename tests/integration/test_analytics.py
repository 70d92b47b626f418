"""GET /api/admin/analytics: per day and per astrologer, JSON and CSV, and its query plans."""

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from consult import analytics
from consult.db import db
from helpers.analytics import analytics_world
from helpers.contract import checked
from helpers.inprocess import isolated_client, login, make_user


@pytest.fixture
def client(app):
    return isolated_client(app)


@pytest.fixture
def world(app):
    return analytics_world()


def get(client, person, query):
    return checked(client.get(f"/api/admin/analytics?{query}", headers=person.auth))


def test_per_day_every_day_of_the_range_with_its_figures(client, world):
    r = get(client, world["admin"], "from=2026-11-01&to=2026-11-04&by=day")
    assert r.status_code == 200
    days = {line["key"]: line for line in r.get_json()}
    assert list(days) == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    assert days["2026-11-01"]["sessions"] == 0 and days["2026-11-01"]["endReasons"] == {}
    one = days["2026-11-02"]
    assert (one["sessions"], one["billedSeconds"], one["grossPaise"]) == (2, 160, 13_000)
    assert (one["commissionPaise"], one["refundedPaise"]) == (2_600, 4_000)
    assert one["endReasons"] == {"user_requested": 2}
    assert one["ratingAverage"] == 5.0 and one["averageSeconds"] == 80
    two = days["2026-11-03"]
    assert (two["grossPaise"], two["commissionPaise"], two["endReasons"]) == (
        5_000,
        1_000,
        {"spend_cap": 1},
    )
    assert two["ratingAverage"] == 2.0


def test_per_astrologer_largest_gross_first(client, world):
    lines = get(client, world["admin"], "from=2026-11-01&to=2026-11-30&by=astrologer").get_json()
    assert [(x["key"], x["astrologerId"], x["grossPaise"]) for x in lines] == [
        ("Guru Dev", world["guru"].id, 15_000),
        ("Tara Moon", world["tara"].id, 3_000),
    ]
    assert lines[0]["ratingAverage"] == 3.5 and lines[0]["refundedPaise"] == 4_000


def test_the_same_numbers_download_as_csv(client, world):
    r = get(client, world["admin"], "from=2026-11-02&to=2026-11-03&format=csv")
    assert r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [row["key"] for row in rows] == ["2026-11-02", "2026-11-03"]
    assert rows[0]["grossPaise"] == "13000" and rows[1]["endReasons"] == "spend_cap:1"


@pytest.mark.parametrize(
    "query",
    [
        "from=yesterday",
        "from=2026-11-05&to=2026-11-01",
        "from=2025-01-01&to=2026-11-01",
        "by=week",
        "from=2026-13-01",
    ],
)
def test_a_bad_range_is_refused(client, world, query):
    r = get(client, world["admin"], query)
    assert r.status_code == 400 and r.get_json()["error"]


def test_only_admins_read_analytics(client, world):
    for person in (world["guru"], make_user("nosy")):
        assert get(client, person, "by=day").status_code == 403
    assert client.get("/api/admin/analytics").status_code == 401


def test_the_analytics_queries_read_ended_sessions_by_the_status_ended_at_index(app, world):
    """The day range is one index range, not a scan: on PostgreSQL with 100,000 ended
    sessions (the planner chooses by statistics), on SQLite by its planner's rules."""
    query = (
        "SELECT date(ended_at), count(*) FROM consultations WHERE status = 'ended' "
        "AND ended_at >= '2025-06-01' AND ended_at < '2025-06-08' GROUP BY date(ended_at)"
    )
    if db.engine.dialect.name == "sqlite":
        rows = db.session.execute(text(f"EXPLAIN QUERY PLAN {query}"))
        plan = " ".join(str(r[-1]) for r in rows)
    else:
        db.session.execute(
            text(
                "INSERT INTO consultations (user_id, astrologer_id, rate_paise_per_minute, "
                "status, requested_at, started_at, ended_at, end_reason, billed_seconds, "
                "total_cost_paise, paused_micros, refunded_paise) "
                "SELECT :user, :guru, 100, 'ended', t, t, t + interval '1 minute', "
                "'user_requested', 60, 100, 0, 0 FROM generate_series(1, 100000) g, "
                "LATERAL (SELECT timestamp '2024-01-01' + g * interval '10 minutes' AS t) x"
            ),
            {"user": world["admin"].id, "guru": world["guru"].id},
        )
        db.session.execute(text("ANALYZE consultations"))
        plan = " ".join(row[0] for row in db.session.execute(text(f"EXPLAIN {query}")))
    db.session.rollback()
    assert "ix_consultations_status_ended_at" in plan, plan


def test_parse_range_defaults_to_the_last_thirty_days():
    today = datetime(2026, 12, 3, tzinfo=UTC).date()
    first, last = analytics.parse_range(None, None, today=today)
    assert (first.isoformat(), last.isoformat()) == ("2026-11-04", "2026-12-03")


# ---------------------------------------------------------------- an astrologer's statement


def test_an_astrologers_statement_per_day_and_per_session_nets_out_refunds(client, world):
    guru = world["guru"]
    by_day = client.get(
        "/api/me/earnings?from=2026-11-01&to=2026-11-30&by=day", headers=guru.auth
    ).get_json()
    assert by_day == [
        {
            "key": "2026-11-02",
            "sessions": 1,
            "grossPaise": 10_000,
            "commissionPaise": 2_000,
            "refundedPaise": 0,
            "netPaise": 8_000,
        },
        {
            # the spend-capped session settled, and ₹40 of the first refunded (80 % of it theirs)
            "key": "2026-11-03",
            "sessions": 1,
            "grossPaise": 5_000,
            "commissionPaise": 1_000,
            "refundedPaise": 3_200,
            "netPaise": 800,
        },
    ]
    by_session = client.get(
        "/api/me/earnings?from=2026-11-01&to=2026-11-30&by=session", headers=guru.auth
    ).get_json()
    assert [line["netPaise"] for line in by_session] == [8_000 - 3_200, 4_000]
    total = sum(line["netPaise"] for line in by_day)
    assert total == 8_000 + 4_000 - 3_200


def test_the_statement_downloads_as_csv_and_is_the_astrologers_own(client, world):
    r = client.get(
        "/api/me/earnings?from=2026-11-01&to=2026-11-30&format=csv", headers=world["tara"].auth
    )
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert rows == [
        {
            "key": "2026-11-02",
            "sessions": "1",
            "grossPaise": "3000",
            "commissionPaise": "600",
            "refundedPaise": "0",
            "netPaise": "2400",
        }
    ]
    assert client.get("/api/me/earnings", headers=world["admin"].auth).status_code == 403
    assert client.get("/api/me/earnings?by=week", headers=world["tara"].auth).status_code == 400


def test_the_dashboards_statement_page_shows_the_same_lines_with_a_total(app, world):
    browser = isolated_client(app)
    login(browser, world["guru"])
    assert 'href="/dashboard/earnings"' in browser.get("/dashboard").get_data(as_text=True)

    html = browser.get("/dashboard/earnings?from=2026-11-01&to=2026-11-30").get_data(as_text=True)
    nets = re.findall(r'<tr data-key="([^"]+)">.*?data-field="net">([^<]+)<', html, re.S)
    # The latest day first, then the bottom line: ₹80.00 + ₹8.00 = ₹88.00.
    assert nets == [("2026-11-03", "₹8.00"), ("2026-11-02", "₹80.00"), ("total", "₹88.00")]
    assert (
        'href="/api/me/earnings?format=csv&amp;from=2026-11-01&amp;to=2026-11-30&amp;by=day"'
        in html
    )

    per_session = browser.get("/dashboard/earnings?from=2026-11-01&to=2026-11-30&by=session")
    html = per_session.get_data(as_text=True)
    linked = re.findall(r'<a href="/sessions/(\d+)/summary">#(\d+)</a>', html)
    assert len(linked) == 2 and all(a == b for a, b in linked)
    assert re.search(r'<tr data-key="total">.*?data-field="net">₹88.00<', html, re.S)


@pytest.mark.parametrize(
    "query, error",
    [
        ("from=2026-12-01&to=2026-11-01", "from must not be after to"),
        ("from=yesterday", "from and to must be dates like 2026-12-31"),
        ("by=week", "by must be day or session"),
    ],
)
def test_a_bad_range_on_the_statement_page_says_what_is_wrong(app, world, query, error):
    browser = isolated_client(app)
    login(browser, world["tara"])
    r = browser.get(f"/dashboard/earnings?{query}")
    assert r.status_code == 400
    assert error in r.get_data(as_text=True)


def test_only_astrologers_have_a_statement_page(app, world):
    browser = isolated_client(app)
    login(browser, world["admin"])
    assert browser.get("/dashboard/earnings").status_code == 403
    assert isolated_client(app).get("/dashboard/earnings").status_code == 302  # to sign in
