"""Times on the pages are the viewer's (issue 13 part 8): India's by default, the browser's
zone once its `tz` cookie says it, India's again for a zone that does not exist; the API
stays UTC."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from consult.clock import utcnow
from helpers.inprocess import end_as, live_session, login, make_astrologer, make_user, text_of


@pytest.mark.parametrize(
    "zone, shown",
    [
        (None, "%H:%M:%S IST"),
        ("Asia/Kolkata", "%H:%M:%S IST"),
        ("Europe/London", "%H:%M:%S GMT"),
        ("America/New_York", "%H:%M:%S EST"),
        ("Mars/Olympus_Mons", "%H:%M:%S IST"),
        ("../../etc/passwd", "%H:%M:%S IST"),
    ],
)
def test_the_receipt_shows_the_viewers_time_and_names_the_zone(app, client, zone, shown):
    asha = make_user("asha", balance=100_000)
    started = utcnow().replace(month=1, day=15, microsecond=0)  # winter: GMT and EST
    session_id = live_session(asha, make_astrologer("guru"), started_at=started)
    end_as(asha, session_id, started + timedelta(seconds=90))
    if zone:
        client.set_cookie("tz", zone)
    login(client, asha)
    page = text_of(client.get(f"/sessions/{session_id}/summary"))
    expected_zone = zone if zone in ("Europe/London", "America/New_York") else "Asia/Kolkata"
    assert started.astimezone(ZoneInfo(expected_zone)).strftime(shown) in page
    # The machine-readable time stays UTC, as the API's.
    assert f'datetime="{started.isoformat()}"' in page
    api = client.get(f"/api/sessions/{session_id}").get_json()
    assert api["startedAt"].endswith("Z")
