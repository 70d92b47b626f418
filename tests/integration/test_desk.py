"""The astrologer's desk on the dashboard: availability set by a form, ratings shown."""

import html
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from consult import availability, feedback
from consult.clock import utcnow
from helpers.inprocess import (
    HX,
    csrf_of,
    end_as,
    isolated_client,
    listen,
    live_session,
    request_session,
    user_obj,
)

SAVE = "/dashboard/availability"


def setting(person) -> tuple[str, int | None]:
    astrologer = user_obj(person)
    return astrologer.availability, astrologer.max_sessions


def settings_announced(listener) -> list[dict]:
    """The `presence:changed` events about a setting (attaching the listener announces one
    about the socket alone)."""
    return [e for e in listener.named("presence:changed") if "status" in e]


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def rated_session(user, astrologer, stars: int, comment: str | None, minutes_ago: int) -> None:
    """An ended session with billed time, rated by its user."""
    started = utcnow() - timedelta(minutes=minutes_ago)
    session_id = live_session(user, astrologer, started_at=started)
    end_as(user, session_id, at=started + timedelta(minutes=1))
    feedback.rate(user_obj(user), session_id, stars, comment, at=started + timedelta(minutes=2))


# ---------------------------------------------------------------- the availability form


def test_the_dashboard_offers_online_busy_offline_and_a_chat_limit(open_browser, guru):
    client, _ = open_browser(guru)
    page = text_of(client.get("/dashboard"))
    assert re.search(r"<fieldset[^>]*>\s*<legend>Your status</legend>", page)
    for status in availability.STATUSES:
        assert f'type="radio" id="availability-{status}" name="status" value="{status}"' in page
    assert re.search(r'id="availability-online"[^>]*\bchecked\b', page)  # the default
    assert 'name="max_sessions" type="number"' in page
    assert 'data-availability="online"' in page and "with no limit" in page


def test_an_htmx_save_sets_the_status_and_cap_and_answers_the_saved_state(open_browser, guru):
    client, token = open_browser(guru)
    listener = listen(guru)
    response = client.post(
        SAVE,
        data={"status": "busy", "max_sessions": "3"},
        headers={**HX, "X-CSRF-Token": token},
    )
    assert response.status_code == 200
    assert 'data-availability="busy"' in text_of(response)
    assert "cannot request a chat" in text_of(response)
    assert setting(guru) == ("busy", 3)
    [event] = settings_announced(listener)
    assert event["userId"] == guru.id and event["status"] == "busy" and event["maxSessions"] == 3


def test_an_empty_limit_means_no_limit(open_browser, guru):
    client, token = open_browser(guru)
    headers = {**HX, "X-CSRF-Token": token}
    client.post(SAVE, data={"status": "online", "max_sessions": "2"}, headers=headers)
    assert setting(guru) == ("online", 2)
    response = client.post(SAVE, data={"status": "online", "max_sessions": " "}, headers=headers)
    assert response.status_code == 200
    assert "with no limit" in text_of(response)
    assert setting(guru) == ("online", None)


def test_a_status_sent_without_the_limit_field_keeps_the_limit(open_browser, guru):
    client, token = open_browser(guru)
    headers = {**HX, "X-CSRF-Token": token}
    client.post(SAVE, data={"status": "online", "max_sessions": "4"}, headers=headers)
    client.post(SAVE, data={"status": "offline"}, headers=headers)
    assert setting(guru) == ("offline", 4)


def test_without_javascript_the_form_saves_and_redirects_to_the_dashboard(open_browser, guru):
    client, token = open_browser(guru)
    response = client.post(
        SAVE, data={"status": "offline", "max_sessions": "", "csrf_token": token}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    assert setting(guru) == ("offline", None)
    page = text_of(client.get("/dashboard"))
    assert "Saved: you are Offline" in page  # the flash
    assert re.search(r'id="availability-offline"[^>]*\bchecked\b', page)
    assert 'data-availability="offline"' in page


@pytest.mark.parametrize("cap", ["0", "-1", "21", "2.5", "three", "1e3", "99999999999999999999"])
def test_a_bad_limit_is_refused_as_a_toast_and_changes_nothing(open_browser, guru, cap):
    client, token = open_browser(guru)
    listener = listen(guru)
    response = client.post(
        SAVE, data={"status": "busy", "max_sessions": cap}, headers={**HX, "X-CSRF-Token": token}
    )
    assert response.status_code == 400
    assert response.headers["HX-Retarget"] == "#toasts"
    assert "maxSessions must be a whole number from 1 to 20" in text_of(response)
    assert setting(guru) == ("online", None)
    assert settings_announced(listener) == []


def test_a_bad_status_is_refused_with_the_error_page_without_javascript(open_browser, guru):
    client, token = open_browser(guru)
    response = client.post(SAVE, data={"status": "asleep", "csrf_token": token})
    assert response.status_code == 400
    assert "status must be one of online, busy, offline" in text_of(response)
    assert setting(guru) == ("online", None)


def test_saving_without_the_csrf_token_is_refused(open_browser, guru):
    client, _ = open_browser(guru)
    response = client.post(SAVE, data={"status": "busy"}, headers=HX)
    assert response.status_code == 400
    assert setting(guru) == ("online", None)


def test_users_and_admins_cannot_set_an_availability(open_browser, guru, alice, boss):
    for person in (alice, boss):
        client, token = open_browser(person)
        response = client.post(SAVE, data={"status": "busy", "csrf_token": token})
        assert response.status_code == 403, person.role
    assert setting(guru) == ("online", None)


def test_a_visitor_who_is_not_signed_in_is_sent_to_the_login_page(app, guru):
    client = isolated_client(app)
    client.get("/login")
    response = client.post(SAVE, data={"status": "busy", "csrf_token": csrf_of(client)})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert setting(guru) == ("online", None)


def test_a_busy_astrologer_cannot_be_requested(open_browser, guru, alice):
    client, token = open_browser(guru)
    client.post(SAVE, data={"status": "busy", "csrf_token": token})
    response = isolated_client(client.application).post(
        "/api/sessions", json={"astrologerId": guru.id}, headers=alice.auth
    )
    assert response.status_code == 409
    assert response.get_json() == {"error": "Astrologer is not available"}


# ---------------------------------------------------------------- ratings on the dashboard


def test_an_unrated_astrologer_reads_no_ratings_yet(open_browser, guru):
    client, _ = open_browser(guru)
    page = text_of(client.get("/dashboard"))
    assert "Your rating" in page and "No ratings yet" in page


def test_the_dashboard_shows_the_average_the_count_and_the_recent_comments(
    open_browser, guru, alice
):
    rated_session(alice, guru, 5, "Spot on about the move <3", minutes_ago=30)
    rated_session(alice, guru, 4, None, minutes_ago=20)
    rated_session(alice, guru, 4, "Kind and clear.", minutes_ago=10)
    client, _ = open_browser(guru)
    page = text_of(client.get("/dashboard"))
    assert re.search(r'class="big">4\.3</span>', page)  # (5 + 4 + 4) / 3, one decimal
    assert "from 3 ratings" in page
    assert "No ratings yet" not in page
    reviews = page[page.index('<ul class="reviews">') :]
    assert reviews.index("Kind and clear.") < reviews.index(
        "Spot on about the move <3"
    )  # newest first
    assert 'aria-label="5 out of 5 stars"' in reviews and 'aria-label="4 out of 5 stars"' in reviews
    assert "No comment." in reviews
    assert utcnow().astimezone(ZoneInfo("Asia/Kolkata")).strftime("%d %b %Y") in reviews
    assert "&lt;3" in client.get("/dashboard").get_data(as_text=True)  # escaped, not markup


def test_the_tab_counts_requests_from_the_markup_the_socket_pushes(open_browser, guru, alice):
    """dashboard.js reads one [data-request] per waiting request from the pushed list."""
    session_id = request_session(alice, guru)
    client, _ = open_browser(guru)
    fragment = text_of(client.get("/dashboard", headers=HX))
    assert f'data-request="{session_id}" data-from="alice"' in fragment
    page = text_of(client.get("/dashboard"))
    assert 'src="/static/dashboard.js"' in page and 'href="/static/dashboard.css"' in page
    assert "Enable notifications" in page
