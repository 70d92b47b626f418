"""`/metrics` in process: what ends, refunds and the scheduler count, the live sessions
gauge against the database, and who may scrape it."""

import re
from datetime import timedelta

import pytest

from consult import consultations, scheduler
from consult.clock import utcnow
from helpers.databases import in_process_app
from helpers.inprocess import (
    end_as,
    ended_session,
    fresh,
    isolated_client,
    live_session,
    make_astrologer,
    make_user,
    services,
    user_obj,
)
from helpers.metrics import value

TOKEN = "scrape-me-3f9a"


@pytest.fixture
def scraper_app(app):
    """An app on the test's database with settings of the test's choosing (`scraper_app(**)`)."""
    made = []

    def build(**settings):
        other = in_process_app(app.config["DATABASE_URL"], **settings)
        made.append(other)
        return other

    yield build
    for other in made:
        with other.app_context():
            from consult.db import db

            db.engine.dispose()


@pytest.fixture
def scrape(scraper_app):
    """Scrape /metrics with the token: the exposition's text."""
    client = isolated_client(scraper_app(METRICS_TOKEN=TOKEN))

    def get() -> str:
        r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
        assert r.content_type.startswith("text/plain; version=0.0.4")
        return r.text

    return get


def test_an_end_counts_once_under_its_reason_with_one_settlement_time(scrape, alice, guru):
    before = scrape()
    session_id = live_session(alice, guru, started_at=utcnow() - timedelta(seconds=30))
    end_as(alice, session_id, utcnow())
    end_as(alice, session_id, utcnow())  # already ended: settles nothing, counts nothing
    after = scrape()
    ends = "consult_session_ends_total"
    assert (
        value(after, ends, reason="user_requested")
        == value(before, ends, reason="user_requested") + 1
    )
    timed = "consult_settlement_seconds_count"
    assert value(after, timed) == value(before, timed) + 1
    assert value(after, "consult_settlement_seconds_sum") > value(
        before, "consult_settlement_seconds_sum"
    )


def test_a_refund_counts_once_with_its_paise_under_its_reason(scrape, alice, guru, boss):
    session_id = ended_session(alice, guru, seconds=100)  # ₹100
    before = scrape()
    s = services()
    consultations.refunds.refund(
        user_obj(boss), session_id, 2_500, "the line dropped", at=utcnow(), hub=s.hub
    )
    after = scrape()
    assert value(after, "consult_refunds_total", reason="admin") == (
        value(before, "consult_refunds_total", reason="admin") + 1
    )
    assert value(after, "consult_refunded_paise_total", reason="admin") == (
        value(before, "consult_refunded_paise_total", reason="admin") + 2_500
    )


def test_the_live_sessions_gauge_is_the_number_of_active_sessions(scrape, alice, asha, guru):
    other = make_astrologer("other")
    assert value(scrape(), "consult_live_sessions") == 0
    first = live_session(alice, guru)
    live_session(asha, other)
    assert value(scrape(), "consult_live_sessions") == 2
    end_as(alice, first, utcnow())
    fresh()
    assert value(scrape(), "consult_live_sessions") == consultations.active_count() == 1


def test_a_due_end_fired_by_the_scheduler_records_how_late_it_was(app, scrape, guru):
    poor = make_user("poor", balance=6_000)  # a minute at a rupee a second
    started = utcnow() - timedelta(seconds=70)
    live_session(poor, guru, started_at=started)
    before = scrape()
    scheduler.Scheduler(app, interval=0.1).tick(started + timedelta(seconds=62))
    after = scrape()
    late = "consult_scheduler_end_lateness_seconds"
    assert value(after, late + "_count") == value(before, late + "_count") + 1
    added = value(after, late + "_sum") - value(before, late + "_sum")
    assert 2 <= added < 10  # due at 60 s, fired by a tick at 62 s
    assert value(after, late + "_bucket", le="1.0") == value(before, late + "_bucket", le="1.0")
    assert value(after, "consult_session_ends_total", reason="insufficient_balance") == (
        value(before, "consult_session_ends_total", reason="insufficient_balance") + 1
    )


# ---------------------------------------------------------------- who may scrape


def without_csrf(page: bytes) -> bytes:
    """The page without its CSRF token, signed with the second it was made in, and without
    the path the language switch returns to (each page names its own)."""
    page = re.sub(rb'name="next" value="[^"]*"', b'name="next" value="PATH"', page)
    return re.sub(rb"[\w-]{8,}\.[\w-]{4,}\.[\w-]{16,}", b"CSRF", page)


@pytest.mark.parametrize(
    "settings, headers, address",
    [
        ({}, {}, "127.0.0.1"),  # neither setting: closed to everyone
        ({}, {"Authorization": f"Bearer {TOKEN}"}, "127.0.0.1"),
        ({"METRICS_TOKEN": TOKEN}, {}, "127.0.0.1"),
        ({"METRICS_TOKEN": TOKEN}, {"Authorization": "Bearer wrong"}, "127.0.0.1"),
        ({"METRICS_ALLOWED_ADDRESSES": "10.0.0.5"}, {}, "10.0.0.6"),
        # both set: both must hold
        (
            {"METRICS_TOKEN": TOKEN, "METRICS_ALLOWED_ADDRESSES": "10.0.0.5"},
            {"Authorization": f"Bearer {TOKEN}"},
            "10.0.0.6",
        ),
        (
            {"METRICS_TOKEN": TOKEN, "METRICS_ALLOWED_ADDRESSES": "10.0.0.5"},
            {},
            "10.0.0.5",
        ),
    ],
)
def test_metrics_answer_an_unknown_paths_404_to_whoever_may_not_scrape(
    scraper_app, settings, headers, address
):
    app = scraper_app(**settings)
    assert "metrics.scrape" in {rule.endpoint for rule in app.url_map.iter_rules()}
    client = isolated_client(app)
    r = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": address})
    unknown = client.get("/no-such-page", environ_base={"REMOTE_ADDR": address})
    assert (r.status_code, without_csrf(r.data)) == (404, without_csrf(unknown.data))


@pytest.mark.parametrize(
    "settings, headers, address",
    [
        ({"METRICS_TOKEN": TOKEN}, {"Authorization": f"Bearer {TOKEN}"}, "192.0.2.7"),
        ({"METRICS_ALLOWED_ADDRESSES": "10.0.0.9, 10.0.0.5"}, {}, "10.0.0.5"),
        ({"METRICS_ALLOWED_ADDRESSES": "10.1.0.0/16"}, {}, "10.1.2.3"),
        (
            {"METRICS_TOKEN": TOKEN, "METRICS_ALLOWED_ADDRESSES": "10.0.0.5"},
            {"Authorization": f"Bearer {TOKEN}"},
            "10.0.0.5",
        ),
    ],
)
def test_metrics_answer_a_scraper_the_settings_let_in(scraper_app, settings, headers, address):
    client = isolated_client(scraper_app(**settings))
    r = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": address})
    assert r.status_code == 200
    assert "# TYPE consult_session_ends_total counter" in r.text
    assert "consult_live_sessions 0.0" in r.text


def test_a_mistyped_allowed_address_stops_the_start(app):
    with pytest.raises(ValueError):
        in_process_app(app.config["DATABASE_URL"], METRICS_ALLOWED_ADDRESSES="10.0.0.300")
