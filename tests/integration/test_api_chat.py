"""The JSON API's chat: both parties post and hear, 1 to 2000 characters, only while the
session is active, only its parties."""

from helpers.contract import NOT_FOUND, conforming, instant
from helpers.inprocess import (
    error_of,
    listen,
    live_session,
    make_user,
    request_session,
    session_row,
)


def test_both_parties_post_messages_and_both_hear_them(client, alice, guru):
    session_id = live_session(alice, guru)
    alice_hears, guru_hears = listen(alice), listen(guru)
    first = client.post(
        f"/api/sessions/{session_id}/messages", json={"text": "Namaste"}, headers=alice.auth
    )
    second = client.post(
        f"/api/sessions/{session_id}/messages", json={"text": "Hello"}, headers=guru.auth
    )
    assert first.status_code == second.status_code == 201
    message = conforming(first)
    assert {"id", "senderId", "text", "sentAt"} <= message.keys()
    assert message["senderId"] == alice.id
    assert message["text"] == "Namaste"
    instant(message["sentAt"])
    assert second.get_json()["senderId"] == guru.id
    history = client.get(f"/api/sessions/{session_id}/messages", headers=alice.auth).get_json()
    assert [(m["senderId"], m["text"]) for m in history] == [
        (alice.id, "Namaste"),
        (guru.id, "Hello"),
    ]
    for hears in (alice_hears, guru_hears):
        assert [m["text"] for m in hears.named("chat:message")] == ["Namaste", "Hello"]
        assert hears.named("chat:message")[0]["sessionId"] == session_id


def test_a_message_of_exactly_2000_characters_is_accepted(client, alice, guru):
    session_id = live_session(alice, guru)
    response = client.post(
        f"/api/sessions/{session_id}/messages", json={"text": "a" * 2000}, headers=alice.auth
    )
    assert response.status_code == 201
    assert len(response.get_json()["text"]) == 2000


def test_a_message_that_is_not_1_to_2000_characters_answers_400(client, alice, guru):
    session_id = live_session(alice, guru)
    bodies = [{"text": t} for t in ("", "a" * 2001, 5, None, ["hi"], {"text": "hi"}, True)]
    for body in bodies + [{}]:
        for caller in (alice, guru):
            response = client.post(
                f"/api/sessions/{session_id}/messages", json=body, headers=caller.auth
            )
            assert response.status_code == 400, body
            error_of(response)
    assert client.get(f"/api/sessions/{session_id}/messages", headers=alice.auth).get_json() == []


def test_messages_wait_until_the_session_is_accepted(client, alice, guru):
    session_id = request_session(alice, guru)
    for caller in (alice, guru):
        response = client.post(
            f"/api/sessions/{session_id}/messages", json={"text": "hi"}, headers=caller.auth
        )
        assert response.status_code == 409
        assert response.get_json() == {"error": "Session is not active"}


def test_messages_are_refused_once_the_session_is_over(client, alice, guru):
    ended = live_session(alice, guru)
    assert client.post(f"/api/sessions/{ended}/end", headers=alice.auth).status_code == 200
    declined = request_session(alice, guru)
    assert client.post(f"/api/sessions/{declined}/decline", headers=guru.auth).status_code == 200
    cancelled = request_session(alice, guru)
    assert client.post(f"/api/sessions/{cancelled}/cancel", headers=alice.auth).status_code == 200
    for session_id in (ended, declined, cancelled):
        for caller in (alice, guru):
            response = client.post(
                f"/api/sessions/{session_id}/messages",
                json={"text": "still there?"},
                headers=caller.auth,
            )
            assert response.status_code == 409, session_row(session_id).status
            assert response.get_json() == {"error": "Session has ended"}


def test_strangers_and_admins_cannot_post_messages(client, alice, guru, boss):
    session_id = live_session(alice, guru)
    bob = make_user("bob")
    response = client.post(
        f"/api/sessions/{session_id}/messages", json={"text": "hi"}, headers=bob.auth
    )
    assert response.status_code == 404
    assert response.get_json() == NOT_FOUND
    response = client.post(
        f"/api/sessions/{session_id}/messages", json={"text": "hi"}, headers=boss.auth
    )
    assert response.status_code in (403, 404)
    assert client.get(f"/api/sessions/{session_id}/messages", headers=alice.auth).get_json() == []
