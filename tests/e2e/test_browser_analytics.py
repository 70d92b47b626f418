"""The analytics page in real Chromium (QA-CHECKLIST line 18): sessions, minutes, revenue,
refunds and end reasons per day and per astrologer as charts, with the numbers beside them,
and a CSV download.

A week of ended sessions is written through the domain into the database before its server
starts (the past cannot be waited for, and a running server's clock would expire a request
of last week while it is written), a refund goes through the admin API, and one session of
today runs through the API in real time. The page is checked against that plan: Chart.js drew
every canvas, each table holds the planned figures in rupees, the CSV link downloads the
same figures, axe finds nothing serious, and the console shows no error and no CSP
violation, at 1280 px and on a 375 px phone.
"""

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from consult.billing import commission_paise
from consult.clock import duration
from consult.money import rupees
from helpers import PASSWORD
from helpers.browser import answered, checked, make_user, open_as, shot, socket_open
from helpers.databases import database
from helpers.server import FAST, Server, ended_session, token_for, unique

pytestmark = [pytest.mark.browser, pytest.mark.server]

CANVASES = ("chart-volume", "chart-money", "chart-reasons")
PHONE = {"width": 375, "height": 800}
WIDE = {"width": 1280, "height": 900}
COMMISSION = 20  # percent: the server's default
REFUND = 5_000  # ₹50 back on the longest session of yesterday


@dataclass(frozen=True)
class Planned:
    days_ago: int
    at: str  # HH:MM, UTC
    user: int
    astrologer: int
    seconds: int
    reason: str
    stars: int | None = None  # the user's rating


ASTROLOGERS = (("Guru Dev", 6000), ("Tara Moon", 3000))  # ₹1 and 50 paise a second
PLAN = (
    Planned(6, "10:00", 0, 0, 300, "user_requested", 5),
    Planned(6, "14:00", 1, 1, 420, "astrologer_ended", 4),
    Planned(5, "09:00", 2, 0, 180, "user_requested", 3),
    Planned(4, "11:00", 0, 1, 600, "spend_cap"),
    Planned(4, "16:00", 1, 0, 240, "user_requested", 5),
    Planned(4, "18:00", 2, 0, 90, "insufficient_balance", 2),
    Planned(3, "12:00", 0, 0, 480, "user_requested", 4),
    Planned(2, "10:30", 1, 1, 360, "scheduled_end", 5),
    Planned(2, "13:00", 2, 0, 150, "user_requested", 4),
    Planned(1, "08:00", 0, 0, 720, "user_requested", 5),  # refunded REFUND
    Planned(1, "15:00", 1, 1, 270, "admin_ended"),
)
REASON_WORDS = {
    "user_requested": "User ended",
    "astrologer_ended": "Astrologer ended",
    "spend_cap": "Spend cap",
    "insufficient_balance": "Balance ran out",
    "scheduled_end": "Time limit",
    "admin_ended": "Ended by us",
}


@dataclass
class Ended:
    """One ended session as the page should count it."""

    day: date
    astrologer: str
    seconds: int
    cost: int
    reason: str
    stars: int | None = None
    refunded: int = 0
    session_id: int | None = None

    @property
    def commission(self) -> int:
        return commission_paise(self.cost, COMMISSION)


@pytest.fixture(scope="module")
def history(backend, tmp_path_factory, request):
    """A server on a database that already holds the plan: (server, today, the plan's sessions
    as the page should count them, the astrologers' usernames)."""
    with database(backend, tmp_path_factory.mktemp("server"), request) as url:
        srv = Server(url, dict(FAST))
        migrated = srv.cli("init-db")
        assert migrated.returncode == 0, migrated.stderr
        today = datetime.now(UTC).date()
        ended, usernames = _write_the_past(url, today)
        srv.start()
        yield srv, today, ended, usernames
        srv.stop()


@pytest.fixture(scope="module")
def server(history):
    return history[0]


@pytest.fixture(scope="module")
def world(history, admin) -> dict:
    """The plan, a refund of it through the admin API, and a session of today through the
    API: every ended session, as the page should count it."""
    server, today, ended, astrologers = history
    longest = max((e for e in ended if e.day == today - timedelta(days=1)), key=lambda e: e.seconds)
    r = admin.post(
        f"/api/admin/sessions/{longest.session_id}/refund",
        {"amountPaise": REFUND, "note": "The answer was cut short"},
    )
    assert r.status_code == 200, r.text
    longest.refunded = REFUND

    astrologer = token_for(server, astrologers[0])
    user = make_user(server, 50_000)
    done = ended_session(user, astrologer, seconds=2)
    ended.append(
        Ended(today, "Guru Dev", done["durationSeconds"], done["totalCostPaise"], "user_requested")
    )
    return {"today": today, "first": today - timedelta(days=6), "ended": ended}


def _write_the_past(database_url: str, today: date) -> tuple[list[Ended], list[str]]:
    """The plan's sessions, requested, accepted and ended at their own past instants through
    the domain; returns them and the astrologers' usernames."""
    from consult import accounts, consultations, feedback, wallet
    from consult.accounts import User
    from consult.db import db
    from helpers.databases import in_process_app
    from helpers.inprocess import be_present

    app = in_process_app(database_url)
    ended, usernames = [], []
    with app.app_context():
        s = app.extensions["consult"]
        long_ago = datetime.now(UTC) - timedelta(days=8)
        astrologers = []
        for name, rate in ASTROLOGERS:
            username = unique("astro.")
            usernames.append(username)
            made = accounts.create_user(
                username,
                PASSWORD,
                role="astrologer",
                now=long_ago,
                display_name=name,
                rate_paise_per_minute=rate,
            )
            astrologers.append((made.id, name, rate))
        users = []
        for _ in range(3):
            made = accounts.create_user(unique("client."), PASSWORD, role="user", now=long_ago)
            wallet.recharge(made.id, 1_000_000, at=long_ago, provider=s.payments, hub=s.hub)
            users.append(made.id)
        for p in PLAN:
            hour, minute = (int(x) for x in p.at.split(":"))
            day = today - timedelta(days=p.days_ago)
            start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
            astrologer_id, name, rate = astrologers[p.astrologer]
            db.session.rollback()
            c = consultations.request_consultation(
                db.session.get(User, users[p.user]),
                astrologer_id,
                at=start,
                hub=s.hub,
                policy=s.policy,
            )
            be_present(users[p.user], astrologer_id, hub=s.hub)
            consultations.accept(db.session.get(User, astrologer_id), c.id, at=start, hub=s.hub)
            consultations.end_session(
                c.id,
                reason=p.reason,
                at=start + timedelta(seconds=p.seconds),
                hub=s.hub,
                policy=s.policy,
            )
            if p.stars:
                rated_at = start + timedelta(seconds=p.seconds + 60)
                feedback.rate(db.session.get(User, users[p.user]), c.id, p.stars, None, at=rated_at)
            cost = p.seconds * rate // 60
            ended.append(Ended(day, name, p.seconds, cost, p.reason, p.stars, session_id=c.id))
        db.session.remove()
        db.engine.dispose()
    return ended, usernames


# ---------------------------------------------------------------- what the page should show


def day_words(day: date, first: date, last: date) -> str:
    return f"{day.day} {day:%b}" if first.year == last.year else f"{day.day} {day:%b %Y}"


def minutes(seconds: int) -> str:
    return f"{seconds / 60:.1f}"


def expected(world, by: str) -> dict[str, dict]:
    """Per row (the day's or the astrologer's words): what each table should hold."""
    first, last = world["first"], world["today"]
    keys = (
        [day_words(first + timedelta(days=n), first, last) for n in range((last - first).days + 1)]
        if by == "day"
        else []
    )
    rows: dict[str, list[Ended]] = {k: [] for k in keys}
    for e in world["ended"]:
        key = day_words(e.day, first, last) if by == "day" else e.astrologer
        rows.setdefault(key, []).append(e)
    return {key: _figures(group) for key, group in rows.items()}


def _figures(group: list[Ended]) -> dict:
    seconds = sum(e.seconds for e in group)
    stars = [e.stars for e in group if e.stars]
    reasons = {}
    for e in group:
        reasons[e.reason] = reasons.get(e.reason, 0) + 1
    return {
        "sessions": len(group),
        "seconds": seconds,
        "volume": [
            str(len(group)),
            minutes(seconds),
            duration(seconds // len(group)) if group else "—",
            f"{round(sum(stars) / len(stars), 1):.1f}" if stars else "—",
        ],
        "money": [
            rupees(sum(e.cost for e in group)),
            rupees(sum(e.commission for e in group)),
            rupees(sum(e.refunded for e in group)),
        ],
        "gross": sum(e.cost for e in group),
        "commission": sum(e.commission for e in group),
        "refunded": sum(e.refunded for e in group),
        "reasons": reasons,
    }


# ---------------------------------------------------------------- reading the page


def table(page: Page, table_id: str) -> dict[str, list[str]]:
    """A table's rows by their first cell, as Chromium renders them."""
    rows = page.evaluate(
        """id => Array.from(document.querySelectorAll('#' + id + ' tr'))
            .map(tr => Array.from(tr.cells).map(c => c.textContent.trim()))""",
        table_id,
    )
    return {row[0]: row[1:] for row in rows}


def the_week(world) -> str:
    """The analytics page over the plan's week, today included."""
    return f"/admin/analytics?from={world['first']}&to={world['today']}"


def charts_drawn(page: Page) -> None:
    """Chart.js made a chart on every canvas, and each has the page's figures to draw."""
    for canvas in CANVASES:
        expect(page.locator(f"#{canvas}")).to_be_visible()
        points = page.evaluate(
            """id => { const chart = Chart.getChart(document.getElementById(id));
                return chart ? chart.data.datasets.map(d => d.data.length) : null; }""",
            canvas,
        )
        assert points and all(n > 0 for n in points), (canvas, points)


# ---------------------------------------------------------------- QA line 18


def test_per_day_the_charts_are_drawn_with_the_numbers_beside_them_and_download_as_csv(
    browser, server, admin, world, contexts
):
    first, today = world["first"], world["today"]
    page = open_as(browser, server, contexts, admin, f"{the_week(world)}&by=day", viewport=WIDE)
    expect(page.get_by_role("heading", name="Analytics", exact=True)).to_be_visible()
    charts_drawn(page)
    want = expected(world, "day")

    volume, money, reasons = (
        table(page, "table-volume"),
        table(page, "table-money"),
        table(page, "table-reasons"),
    )
    assert list(volume)[1:-1] == list(want)  # every day of the range, in order
    codes = list(dict.fromkeys(p.reason for p in sorted(PLAN, key=_reason_rank)))
    assert reasons["Day"] == [REASON_WORDS[c] for c in codes]
    for key, figures in want.items():
        assert volume[key] == figures["volume"], key
        assert money[key] == figures["money"], key
        assert reasons[key] == [str(figures["reasons"].get(c, 0)) for c in codes], key
    everything = _figures(world["ended"])
    assert volume["Total"] == [*everything["volume"][:3], ""]  # no rating over the range
    assert money["Total"] == everything["money"]
    assert page.locator('[data-total="gross"]').text_content() == rupees(everything["gross"])
    assert page.locator('[data-total="refunds"]').text_content() == rupees(REFUND)

    # The CSV link is the API's, authenticated by the admin's cookie: the same figures.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == f"consult-analytics-{first}-to-{today}.csv"
    with open(download.value.path(), encoding="utf-8") as f:
        lines = {line["key"]: line for line in csv.DictReader(io.StringIO(f.read()))}
    assert list(lines) == [(first + timedelta(days=n)).isoformat() for n in range(7)]
    for n, figures in enumerate(want.values()):
        line = lines[(first + timedelta(days=n)).isoformat()]
        assert int(line["sessions"]) == figures["sessions"]
        assert int(line["billedSeconds"]) == figures["seconds"]
        assert int(line["grossPaise"]) == figures["gross"]
        assert int(line["commissionPaise"]) == figures["commission"]
        assert int(line["refundedPaise"]) == figures["refunded"]
        pairs = dict(p.split(":") for p in line["endReasons"].split(";") if p)
        assert {k: int(v) for k, v in pairs.items()} == figures["reasons"]

    checked(page, server)  # and the console is clean (conftest's clean_console)
    shot(page, "admin-analytics")


def test_per_astrologer_on_a_phone_the_page_fits_and_every_chart_is_drawn(
    browser, server, admin, world, contexts
):
    page = open_as(browser, server, contexts, admin, the_week(world), viewport=PHONE)
    # The range form is a GET: choosing "Astrologer" and showing makes a URL to share.
    page.get_by_label("Astrologer").check()
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(f"{server.url}{the_week(world)}&by=astrologer")
    socket_open(page)
    charts_drawn(page)
    want = expected(world, "astrologer")
    volume, money = table(page, "table-volume"), table(page, "table-money")
    assert list(volume) == ["Astrologer", "Guru Dev", "Tara Moon", "Total"]  # by gross
    for name in ("Guru Dev", "Tara Moon"):
        assert volume[name] == want[name]["volume"], name
        assert money[name] == want[name]["money"], name
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    checked(page, server)  # and the console is clean (conftest's clean_console)
    shot(page, "admin-analytics-phone")


# The one error is the page's own 400 answer, which the browser reports; nothing else.
@pytest.mark.console_allows(*answered(400))
def test_a_bad_range_says_why_and_draws_nothing(browser, server, admin, contexts):
    page = open_as(
        browser, server, contexts, admin, "/admin/analytics?from=2026-11-04&to=2026-11-01"
    )
    expect(page.get_by_role("alert")).to_contain_text("from must not be after to")
    assert page.locator("canvas").count() == 0
    assert page.evaluate("typeof window.Chart") == "undefined"
    checked(page, server)


def _reason_rank(p: Planned) -> int:
    from consult.consultations import END_REASONS

    return END_REASONS.index(p.reason)
