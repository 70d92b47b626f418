"""The analytics page (issue 12 part 3, QA-CHECKLIST line 18), through the Flask test client:
the range form, the tables beside the charts with the seeded figures in rupees, the figures
the charts draw, the CSV link, refused ranges, and who may see it.

In process, on SQLite and PostgreSQL. (In Chromium: e2e/test_browser_analytics.py.)
"""

import csv
import io
import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from helpers.analytics import analytics_world
from helpers.inprocess import isolated_client

RANGE = "from=2026-11-01&to=2026-11-04"


class Page(HTMLParser):
    """The tables of a page by id (each row's cell texts, head, body and foot in order) and
    the JSON of its data block."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.data: str | None = None
        self._table: list | None = None
        self._cell: list[str] | None = None
        self._in_data = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id", f"t{len(self.tables)}"), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "script" and attrs.get("id") == "analytics-data":
            self._in_data, self.data = True, ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "script":
            self._in_data = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_data:
            self.data += data

    def rows(self, table: str) -> dict[str, list[str]]:
        """A table's rows (its head's too) by their first cell."""
        return {row[0]: row[1:] for row in self.tables[table] if row}


@pytest.fixture
def world(app):
    return analytics_world()


@pytest.fixture
def admin_client(open_browser, world):
    return open_browser(world["admin"])[0]


def page_of(client, query: str, status: int = 200) -> tuple[str, Page]:
    r = client.get(f"/admin/analytics?{query}")
    assert r.status_code == status, r.get_data(as_text=True)[:2000]
    html = r.get_data(as_text=True)
    return html, Page(html)


def test_per_day_the_tables_show_every_day_with_its_figures_in_rupees(admin_client):
    html, page = page_of(admin_client, f"{RANGE}&by=day")
    volume = page.rows("table-volume")
    assert volume["Day"] == ["Sessions", "Billed minutes", "Average length", "Rating"]
    assert volume["1 Nov"] == ["0", "0.0", "—", "—"]
    assert volume["2 Nov"] == ["2", "2.7", "1:20", "5.0"]
    assert volume["3 Nov"] == ["1", "0.8", "0:50", "2.0"]
    assert volume["4 Nov"] == ["0", "0.0", "—", "—"]
    assert volume["Total"] == ["3", "3.5", "1:10", ""]
    money = page.rows("table-money")
    assert money["Day"] == ["Gross", "Commission", "Refunds"]
    assert money["2 Nov"] == ["₹130.00", "₹26.00", "₹40.00"]
    assert money["3 Nov"] == ["₹50.00", "₹10.00", "₹0.00"]
    assert money["Total"] == ["₹180.00", "₹36.00", "₹40.00"]
    reasons = page.rows("table-reasons")
    assert reasons["Day"] == ["User ended", "Spend cap"]
    assert reasons["2 Nov"] == ["2", "0"] and reasons["3 Nov"] == ["0", "1"]
    assert reasons["Total"] == ["2", "1"] and reasons["Share"] == ["67%", "33%"]
    for words in ("Sessions</dt><dd", "₹180.00", "₹36.00", "₹40.00", "3.5", "1:10"):
        assert words in html
    # Each table is captioned and its headers are scoped (the page's accessible figures).
    assert html.count("<caption") == 3 and 'scope="row"' in html and 'scope="col"' in html


def test_the_charts_draw_the_tables_own_figures(admin_client):
    html, page = page_of(admin_client, f"{RANGE}&by=day")
    for canvas in ("chart-volume", "chart-money", "chart-reasons"):
        assert f'<canvas id="{canvas}" role="img" aria-label=' in html
    assert '<script type="application/json" id="analytics-data">' in html
    data = json.loads(page.data)
    assert data["by"] == "day"
    assert data["labels"] == ["1 Nov", "2 Nov", "3 Nov", "4 Nov"]
    assert data["sessions"] == [0, 2, 1, 0]
    assert data["billedMinutes"] == [0, 2.7, 0.8, 0]
    assert data["grossPaise"] == [0, 13_000, 5_000, 0]
    assert data["commissionPaise"] == [0, 2_600, 1_000, 0]
    assert data["refundedPaise"] == [0, 4_000, 0, 0]
    assert data["reasons"] == [
        {"code": "user_requested", "label": "User ended", "counts": [0, 2, 0, 0]},
        {"code": "spend_cap", "label": "Spend cap", "counts": [0, 0, 1, 0]},
    ]
    # Chart.js and the page's script are files of our own origin: the CSP stays 'self'.
    assert re.search(r'<script src="/static/vendor/chart\.umd\.min\.js" defer>', html)
    assert re.search(r'<script src="/static/analytics\.js" defer>', html)
    assert "<script>" not in html and " style=" not in html


def test_per_astrologer_each_astrologer_with_sessions_is_a_row(admin_client):
    _, page = page_of(admin_client, f"{RANGE}&by=astrologer")
    volume, money = page.rows("table-volume"), page.rows("table-money")
    assert list(volume) == ["Astrologer", "Guru Dev", "Tara Moon", "Total"]  # by gross
    assert volume["Guru Dev"] == ["2", "2.5", "1:15", "3.5"]
    assert volume["Tara Moon"] == ["1", "1.0", "1:00", "—"]
    assert money["Guru Dev"] == ["₹150.00", "₹30.00", "₹40.00"]
    assert money["Tara Moon"] == ["₹30.00", "₹6.00", "₹0.00"]
    assert page.rows("table-reasons")["Guru Dev"] == ["1", "1"]
    assert json.loads(page.data)["labels"] == ["Guru Dev", "Tara Moon"]


def test_the_form_keeps_the_range_and_the_csv_link_downloads_the_same_figures(admin_client):
    html, _ = page_of(admin_client, f"{RANGE}&by=astrologer")
    assert 'name="from" value="2026-11-01"' in html and 'name="to" value="2026-11-04"' in html
    assert re.search(r'value="astrologer" checked', html)
    assert re.search(r'<form method="get" action="/admin/analytics"', html)
    href = re.search(r'<a class="button[^"]*" href="([^"]+)" download>Download CSV</a>', html)
    url = urlsplit(href.group(1).replace("&amp;", "&"))
    assert url.path == "/api/admin/analytics"
    assert parse_qs(url.query) == {
        "from": ["2026-11-01"],
        "to": ["2026-11-04"],
        "by": ["astrologer"],
        "format": ["csv"],
    }
    r = admin_client.get(href.group(1).replace("&amp;", "&"))  # the admin's cookie suffices
    assert r.status_code == 200 and r.mimetype == "text/csv"
    lines = {row["key"]: row for row in csv.DictReader(io.StringIO(r.get_data(as_text=True)))}
    assert (lines["Guru Dev"]["grossPaise"], lines["Guru Dev"]["refundedPaise"]) == (
        "15000",
        "4000",
    )
    assert lines["Tara Moon"]["commissionPaise"] == "600"


def test_without_a_range_the_page_shows_the_last_30_days(admin_client):
    from consult.clock import utcnow

    today = utcnow().date()
    html, page = page_of(admin_client, "")
    assert f'name="to" value="{today.isoformat()}"' in html
    assert f'name="from" value="{(today - timedelta(days=29)).isoformat()}"' in html
    assert len(page.rows("table-volume")) == 30 + 2  # the head, 30 days, the total
    assert re.search(r'value="day" checked', html)
    assert re.search(r'<a href="[^"]+" aria-current="page">Last 30 days</a>', html)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("from=2026-11-04&to=2026-11-01", "from must not be after to"),
        ("from=2026-13-01&to=2026-11-04", "must be dates like"),
        ("from=yesterday", "must be dates like"),
        ("from=2025-01-01&to=2026-11-04", "at most 366 days"),
        (f"{RANGE}&by=week", "by must be day or astrologer"),
    ],
)
def test_a_bad_range_says_why_and_draws_nothing(admin_client, query, words):
    html, page = page_of(admin_client, query, status=400)
    assert re.search(
        rf'<p class="error" id="range-error" role="alert">[^<]*{re.escape(words)}', html
    )
    assert "<canvas" not in html and "analytics-data" not in html and "chart.umd" not in html
    assert page.tables == {} and "Download CSV" not in html
    assert 'aria-invalid="true"' in html  # the form is still there to correct
    assert '<form method="get" action="/admin/analytics"' in html


def test_a_range_with_no_astrologer_sessions_says_so(admin_client):
    html, page = page_of(admin_client, "from=2026-10-01&to=2026-10-05&by=astrologer")
    assert "No session ended in this range." in html
    assert "<canvas" not in html and page.tables == {}


def test_users_and_astrologers_get_404_and_strangers_the_sign_in(app, open_browser, world):
    for person in (world["asha"], world["guru"]):
        client, _ = open_browser(person)
        assert client.get(f"/admin/analytics?{RANGE}").status_code == 404
    r = isolated_client(app).get(f"/admin/analytics?{RANGE}")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_a_range_across_new_year_names_each_days_year(admin_client):
    _, page = page_of(admin_client, "from=2025-12-31&to=2026-01-01")
    assert list(page.rows("table-volume")) == ["Day", "31 Dec 2025", "1 Jan 2026", "Total"]


def test_every_end_reason_has_words_for_the_charts():
    from consult import consultations
    from consult.web.admin import REASON_WORDS

    assert set(REASON_WORDS) == set(consultations.END_REASONS)
