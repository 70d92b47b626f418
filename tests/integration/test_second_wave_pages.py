"""The second wave's pages through the Flask client: limits, the receipt, rating, reporting.

Forms work without JavaScript (a plain POST and a redirect) and as htmx fragments; bad
input is refused with a readable error and changes nothing.
"""

from datetime import timedelta

import pytest

from consult import chat, consultations, feedback
from consult.clock import utcnow
from helpers.inprocess import (
    HX,
    accept_session,
    end_as,
    ended_session,
    live_session,
    request_session,
    services,
    session_row,
    text_of,
    user_obj,
)

# ---------------------------------------------------------------- limits


def test_the_card_form_requests_with_limits_typed_in_rupees_and_minutes(open_browser, asha, guru):
    client, token = open_browser(asha)
    home = text_of(client.get("/"))
    assert 'name="max_minutes"' in home and 'name="max_spend_rupees"' in home
    r = client.post(
        "/sessions",
        data={
            "csrf_token": token,
            "astrologer_id": guru.id,
            "max_minutes": "10",
            "max_spend_rupees": "99.50",
        },
    )
    assert r.status_code == 302
    (c,) = consultations.list_for(user_obj(asha))
    assert (c.max_minutes, c.max_spend_paise) == (10, 9_950)


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"max_spend_rupees": "12.345"}, "at most two decimals"),
        ({"max_spend_rupees": "lots"}, "amount in rupees"),
        ({"max_minutes": "1.5"}, "whole number"),
        ({"max_minutes": "0"}, "maxMinutes must be a whole number from 1"),
        ({"max_spend_rupees": "0"}, "maxSpendPaise must be a whole number from 1"),
    ],
)
def test_a_bad_limit_on_the_card_is_refused_and_nothing_is_requested(
    open_browser, asha, guru, fields, error
):
    client, token = open_browser(asha)
    r = client.post(
        "/sessions", data={"csrf_token": token, "astrologer_id": guru.id, **fields}, headers=HX
    )
    assert r.status_code == 400 and error in text_of(r)
    assert consultations.list_for(user_obj(asha)) == []


def test_the_live_bill_changes_and_clears_the_limits_and_says_what_ends_it(
    open_browser, asha, guru
):
    session_id = live_session(asha, guru)
    client, token = open_browser(asha)
    page = text_of(client.get(f"/sessions/{session_id}"))
    assert "when your balance runs out" in page and "Set a limit" in page
    r = client.post(
        f"/sessions/{session_id}/limits",
        data={"csrf_token": token, "max_minutes": "3", "max_spend_rupees": ""},
        headers=HX,
    )
    assert r.status_code == 200
    assert "at your time limit" in text_of(r) and 'value="3"' in text_of(r)
    assert (session_row(session_id).max_minutes, session_row(session_id).max_spend_paise) == (
        3,
        None,
    )
    cleared = client.post(
        f"/sessions/{session_id}/limits", data={"csrf_token": token, "clear": "1"}
    )
    assert cleared.status_code == 302
    assert session_row(session_id).max_minutes is None


def test_the_astrologer_sees_the_limit_but_never_the_users_wallet(open_browser, asha, guru):
    session_id = request_session(asha, guru)
    consultations.set_limits(
        user_obj(asha),
        session_id,
        {"max_spend_paise": 30_000},
        at=utcnow(),
        hub=services().hub,
    )
    accept_session(guru, session_id)
    client, _ = open_browser(guru)
    page = text_of(client.get(f"/sessions/{session_id}"))
    assert "The user set a limit" in page and "₹300.00" in page
    assert "at the user&#39;s spend cap" in page or "at the user's spend cap" in page
    assert "data-wallet" not in page and "₹1,000.00" not in page
    assert 'name="max_minutes"' not in page  # only the user sets limits
    # Nor does the end dialog (or its page without JavaScript) tell them.
    for headers in ({}, HX):
        confirm = text_of(client.get(f"/sessions/{session_id}/end/confirm", headers=headers))
        assert "End this session?" in confirm and "data-wallet" not in confirm


def test_the_astrologer_without_a_limit_sees_no_countdown(open_browser, asha, guru):
    session_id = live_session(asha, guru)
    client, _ = open_browser(guru)
    page = text_of(client.get(f"/sessions/{session_id}/billing"))
    assert "Time left" not in page and "data-stop" not in page and "data-wallet" not in page


# ---------------------------------------------------------------- the receipt


def test_the_receipt_asks_for_a_rating_and_keeps_it(open_browser, asha, guru):
    session_id = ended_session(asha, guru, seconds=120)
    client, token = open_browser(asha)
    summary = text_of(client.get(f"/sessions/{session_id}/summary"))
    assert "How was your session with Guru Dev?" in summary
    assert "Report a problem with this session" in summary
    r = client.post(
        f"/sessions/{session_id}/rating",
        data={"csrf_token": token, "stars": "4", "comment": "Kind <b>and</b> clear"},
        headers=HX,
    )
    assert r.status_code == 200 and "your rating is saved" in text_of(r)
    assert "Kind &lt;b&gt;and&lt;/b&gt; clear" in text_of(r)
    rating = feedback.rating_of(user_obj(asha), session_id)
    assert (rating.stars, rating.comment) == (4, "Kind <b>and</b> clear")
    bad = client.post(
        f"/sessions/{session_id}/rating", data={"csrf_token": token, "stars": "9"}, headers=HX
    )
    assert bad.status_code == 400
    assert feedback.rating_of(user_obj(asha), session_id).stars == 4


def test_a_report_from_the_receipt_and_its_outcome_on_both_sides(open_browser, asha, guru, boss):
    session_id = ended_session(asha, guru, seconds=50)  # ₹50
    client, token = open_browser(asha)
    form = text_of(client.get(f"/sessions/{session_id}/report"))
    assert f"Session #{session_id} with Guru Dev" in form and "₹50.00" in form
    r = client.post(
        f"/sessions/{session_id}/report",
        data={"csrf_token": token, "category": "quality", "text": "Generic answers"},
    )
    assert r.status_code == 302
    assert "Open: our team is looking into it." in text_of(
        client.get(f"/sessions/{session_id}/summary")
    )
    (report,) = feedback.reports("open")
    feedback.resolve(
        user_obj(boss), report.id, 2_000, "Partly generic", at=utcnow(), hub=services().hub
    )
    for person in (asha, guru):
        page = text_of(open_browser(person)[0].get(f"/sessions/{session_id}/summary"))
        assert "Resolved: ₹20.00 refunded to the wallet." in page
        assert "Partly generic" in page
    wallet = text_of(client.get("/wallet"))
    assert f"Refund for consultation #{session_id}" in wallet


def test_only_the_user_reports_and_a_bad_report_changes_nothing(open_browser, asha, guru):
    session_id = ended_session(asha, guru, seconds=120)
    astrologer_client, _ = open_browser(guru)
    assert astrologer_client.get(f"/sessions/{session_id}/report").status_code == 403
    client, token = open_browser(asha)
    r = client.post(
        f"/sessions/{session_id}/report",
        data={"csrf_token": token, "category": "rude", "text": "x"},
        headers=HX,
    )
    assert r.status_code == 400 and "category must be one of" in text_of(r)
    assert feedback.reports() == []


def test_the_receipt_of_a_make_good_says_why_nothing_was_charged(
    open_browser, asha, guru, monkeypatch
):
    from dataclasses import replace

    s = services()
    monkeypatch.setattr(s, "settings", replace(s.settings, make_good_seconds=60))
    started = utcnow() - timedelta(seconds=30)
    session_id = live_session(asha, guru, started_at=started)
    chat.post_message(user_obj(guru), session_id, "Namaste", at=started, hub=s.hub)
    end_as(guru, session_id, started + timedelta(seconds=30))
    summary = text_of(open_browser(asha)[0].get(f"/sessions/{session_id}/summary"))
    assert "Nothing charged: ₹30.00 refunded." in summary
    assert "The astrologer left within the first minute, so this session is free." in summary


def test_the_receipt_digests_the_chat(open_browser, asha, guru):
    started = utcnow() - timedelta(minutes=2)
    session_id = live_session(asha, guru, started_at=started)
    hub = services().hub
    chat.post_message(user_obj(asha), session_id, "Is marriage likely soon?", at=started, hub=hub)
    chat.post_message(
        user_obj(guru),
        session_id,
        "Venus favours marriage after June; marriage talks may begin in spring.",
        at=started,
        hub=hub,
    )
    end_as(asha, session_id, started + timedelta(minutes=1))
    summary = text_of(open_browser(asha)[0].get(f"/sessions/{session_id}/summary"))
    assert "Summary of the chat" in summary
    assert '<dd data-field="first-question">Is marriage likely soon?</dd>' in summary
    assert '<span class="tag">marriage</span>' in summary


def test_a_busy_astrologers_card_is_greyed_and_cannot_be_requested(open_browser, asha, guru):
    from consult import availability

    availability.set_availability(
        user_obj(guru), "busy", None, change_cap=False, hub=services().hub
    )
    client, token = open_browser(asha)
    home = text_of(client.get("/"))
    card = home[home.index(f'id="astrologer-{guru.id}"') :]
    card = card[: card.index("</li>")]
    assert "is-unavailable" in home and "Busy" in card and "disabled" in card
    r = client.post("/sessions", data={"csrf_token": token, "astrologer_id": guru.id}, headers=HX)
    assert r.status_code == 409 and "Astrologer is not available" in text_of(r)


@pytest.mark.parametrize(
    "reason, user_words, astrologer_words",
    [
        ("spend_cap", "Your spend cap was reached", "the user's spend cap was reached"),
        ("scheduled_end", "Your time limit was reached", "at the user's time limit"),
        ("admin_ended", "ended by the platform", "ended by the platform"),
    ],
)
def test_each_new_end_reason_has_its_own_words_for_both_parties(
    open_browser, asha, guru, reason, user_words, astrologer_words
):
    started = utcnow() - timedelta(seconds=30)
    session_id = live_session(asha, guru, started_at=started)
    s = services()
    consultations.end_session(
        session_id, reason=reason, at=started + timedelta(seconds=30), hub=s.hub, policy=s.policy
    )
    for person, words in ((asha, user_words), (guru, astrologer_words)):
        page = text_of(open_browser(person)[0].get(f"/sessions/{session_id}"))
        banner = page[page.index("data-ended-banner") :]
        assert words in banner.replace("&#39;", "'")
