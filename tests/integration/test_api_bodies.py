"""The JSON API's request bodies: not a JSON object answers 400, over 64 KiB answers 413
in JSON wherever it is sent, exactly 64 KiB is read."""

from helpers.inprocess import balance_of, request_session, session_row, started_ago

BODY_ROUTES = [
    ("/api/auth/token", None),
    ("/api/auth/register", None),
    ("/api/wallet/recharge", "alice"),
    ("/api/sessions", "alice"),
    ("/api/sessions/{id}/messages", "alice"),
    ("/api/sessions/end", "alice"),
    ("/api/sessions/{id}/end", "guru"),
]


def test_a_body_that_is_not_a_json_object_answers_400(client, alice, guru):
    session_id = started_ago(alice, guru, 5)
    wrong = []
    for path, who in BODY_ROUTES:
        headers = {"alice": alice.auth, "guru": guru.auth}.get(who, {})
        for raw in ("[]", '"text"', "42", "null", "{not json", "true", "[{}]"):
            response = client.post(
                path.format(id=session_id),
                data=raw,
                content_type="application/json",
                headers=headers,
            )
            body = response.get_json(silent=True)
            if response.status_code != 400 or not isinstance(body, dict) or "error" not in body:
                wrong.append((path, raw, response.status_code, response.data))
    assert wrong == []
    assert session_row(session_id).status == "active"
    assert balance_of(alice) == 100_000


def test_a_body_over_64_kib_answers_413_in_json(client, alice, guru):
    session_id = started_ago(alice, guru, 5)
    body = {"text": "x" * (64 * 1024), "amountPaise": 100, "username": "alice"}
    wrong = []
    for path, who in BODY_ROUTES:
        headers = {"alice": alice.auth, "guru": guru.auth}.get(who, {})
        response = client.post(path.format(id=session_id), json=body, headers=headers)
        if response.status_code != 413 or not response.is_json or "error" not in response.json:
            wrong.append((path, response.status_code, response.data[:200]))
    assert wrong == []
    assert session_row(session_id).status == "active"
    assert balance_of(alice) == 100_000


def test_a_body_over_64_kib_answers_413_where_the_body_is_not_used(client, alice, guru):
    wrong = []
    for action, caller in (("accept", guru), ("decline", guru), ("cancel", alice)):
        session_id = request_session(alice, guru)
        response = client.post(
            f"/api/sessions/{session_id}/{action}",
            data="x" * (65 * 1024),
            content_type="application/json",
            headers=caller.auth,
        )
        if response.status_code != 413:
            wrong.append((action, response.status_code))
        if session_row(session_id).status == "requested":
            client.post(f"/api/sessions/{session_id}/cancel", headers=alice.auth)
        elif session_row(session_id).status == "active":
            client.post(f"/api/sessions/{session_id}/end", headers=alice.auth)
    assert wrong == []


def test_a_body_of_exactly_64_kib_is_accepted(client, alice, guru):
    session_id = started_ago(alice, guru, 5)
    padding = 64 * 1024 - len('{"text": "hi", "pad": ""}')
    raw = '{"text": "hi", "pad": "' + "x" * padding + '"}'
    assert len(raw) == 64 * 1024
    response = client.post(
        f"/api/sessions/{session_id}/messages",
        data=raw,
        content_type="application/json",
        headers=alice.auth,
    )
    assert response.status_code == 201
