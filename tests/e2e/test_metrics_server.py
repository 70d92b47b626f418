"""`/metrics` scraped from a real server: sockets counted while open, an end counted once,
live sessions from the database; alone, and in gunicorn's multiprocess mode (files)."""

import pytest
import requests

from helpers.metrics import value
from helpers.server import close_presence, make_account, start_session, wait_until

pytestmark = pytest.mark.server

TOKEN = "e2e-scrape-token"


@pytest.mark.parametrize("multiprocess", [False, True], ids=["process", "multiprocess"])
def test_a_scrape_sees_the_sockets_the_live_session_and_its_end(
    fresh_server, tmp_path, multiprocess
):
    settings = {"METRICS_TOKEN": TOKEN}
    if multiprocess:  # as gunicorn.conf.py runs it: every worker's values in files there
        settings["PROMETHEUS_MULTIPROC_DIR"] = tmp_path / "metrics"
        settings["PROMETHEUS_MULTIPROC_DIR"].mkdir()
    server = fresh_server(**settings)

    def scrape(headers=None) -> requests.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"} if headers is None else headers
        return requests.get(server.url + "/metrics", headers=headers, timeout=10)

    assert scrape(headers={}).status_code == 404
    assert scrape(headers={"Authorization": "Bearer nope"}).status_code == 404
    user = make_account(server, "user", balance=100_000)
    astrologer = make_account(server, "astrologer")
    start_session(user, astrologer)  # both parties hold a socket (present) first
    live = scrape()
    assert live.status_code == 200
    assert value(live.text, "consult_open_sockets") == 2
    assert value(live.text, "consult_live_sessions") == 1

    assert user.post("/api/sessions/end").status_code == 200
    ended = scrape().text
    assert value(ended, "consult_session_ends_total", reason="user_requested") == 1
    assert value(ended, "consult_settlement_seconds_count") == 1
    assert value(ended, "consult_live_sessions") == 0

    close_presence()
    wait_until(
        lambda: value(scrape().text, "consult_open_sockets") == 0,
        message="the closed sockets to leave the gauge",
    )
