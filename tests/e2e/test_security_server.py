"""Nobody gets in, against a real server: no rate limit on End under a burst, chunked bodies
over 64 KiB, socket handshakes (credentials, Origin), sign-out closing that browser's
sockets, bad frames, and who may act over the socket. (In process: integration/test_csrf.py,
test_access.py, test_hostile_text.py, test_security_headers.py.)
"""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import websocket

from helpers.books import assert_books_balance
from helpers.server import (
    PlainBrowser,
    make_account,
    register_user,
    start_session,
    wait_until,
)
from helpers.sockets import Socket

KIB_64 = 64 * 1024


# ================================================================ against a real server


@pytest.fixture
def admin_api(server):
    return make_account(server, "admin")


def test_ending_is_never_rate_limited_under_a_burst_on_the_real_server(server):
    user = register_user(server, 10_000)
    astrologer = make_account(server, "astrologer")
    session = start_session(user, astrologer)
    paths = [f"/api/sessions/{session['id']}/end", "/api/sessions/end"]

    def end(i):
        return user.post(paths[i % 2], {"sessionId": session["id"]} if i % 2 else None)

    with ThreadPoolExecutor(max_workers=25) as pool:
        answers = list(pool.map(end, range(100)))
    assert sorted(r.status_code for r in answers) == [200] * 100, {r.status_code for r in answers}
    assert sorted(r.json()["alreadyEnded"] for r in answers) == [False] + [True] * 99
    assert_books_balance(server)


def _chunked(body: bytes):
    """A generator body: requests sends it chunked, with no Content-Length."""
    for start in range(0, len(body), 4096):
        yield body[start : start + 4096]


def test_a_chunked_body_over_64_kib_answers_413_on_the_real_server(server):
    # Only a real server decodes chunked bodies; Werkzeug alone cuts them off at the limit.
    user = register_user(server)

    def recharge(size):
        body = b'{"amountPaise": 100, "pad": "'
        body += b"x" * (size - len(body) - 2) + b'"}'
        assert len(body) == size
        return user.post(
            "/api/wallet/recharge",
            data=_chunked(body),
            headers={"Content-Type": "application/json"},
        )

    over = recharge(64 * 1024 + 1)
    assert (over.status_code, over.json()) == (
        413,
        {"error": "Request body too large (64 KiB at most)"},
    )
    assert user.get("/api/wallet").json()["balancePaise"] == 0
    exactly = recharge(64 * 1024)
    assert (exactly.status_code, exactly.json()) == (200, {"balancePaise": 100})


# ---------------------------------------------------------------- handshakes


def test_socket_handshakes_without_credentials_or_from_foreign_origins_are_refused(server):
    user = make_account(server, "user")
    browser = PlainBrowser(server).sign_in(user.user["username"])
    cookie = f"Cookie: {browser.cookie_header()}"
    for path in ("/ws", "/api/ws"):
        url = server.ws_url + path
        for headers, origin, status in (
            ([], None, 401),
            ([], server.url, 401),
            (["Cookie: session=forged.value.here"], server.url, 401),
            (["Authorization: Bearer not-a-token"], None, 401),
            # The cross-site socket hijack: a real cookie, sent by a foreign page.
            ([cookie], "http://evil.example", 403),
            ([cookie], f"http://127.0.0.1:{server.port}.evil.example", 403),
            ([cookie], "null", 403),
            ([f"Authorization: Bearer {user.token}"], "https://evil.example", 403),
        ):
            with pytest.raises(websocket.WebSocketBadStatusException) as refused:
                websocket.create_connection(
                    url, timeout=5, header=headers, origin=origin, suppress_origin=origin is None
                )
            assert refused.value.status_code == status, (path, headers, origin)
        ok = browser.socket(path)  # the control: the same cookie from the app's own origin
        assert not ok.closed.wait(0.3)
        ok.close()


def test_a_socket_origin_must_match_exactly_the_apps_own_or_a_configured_one(fresh_server):
    srv = fresh_server(ALLOWED_ORIGINS="https://partner.example, https://b.example:8443")
    user = make_account(srv, "user")
    header = [f"Authorization: Bearer {user.token}"]
    for origin, allowed in (
        (srv.url, True),
        ("https://partner.example", True),
        ("https://b.example:8443", True),
        ("https://partner.example.evil", False),
        ("https://evil.partner.example", False),
        ("http://partner.example", False),  # another scheme
        ("https://b.example", False),  # another port
        ("https://partner.example/", False),
        (srv.url.replace("http://", "https://"), False),
        (f"{srv.url}.evil.example", False),
    ):
        if allowed:
            ws = websocket.create_connection(
                srv.ws_url + "/api/ws", timeout=5, header=header, origin=origin
            )
            ws.close()
            continue
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(
                srv.ws_url + "/api/ws", timeout=5, header=header, origin=origin
            )
        assert refused.value.status_code == 403, origin


# ---------------------------------------------------------------- sign-out closes sockets


def test_signing_out_closes_that_browsers_sockets_and_no_others(server):
    user = make_account(server, "user", balance=10_000)
    astrologer = make_account(server, "astrologer")
    here = PlainBrowser(server).sign_in(user.user["username"])
    # the same user, in another browser
    elsewhere = PlainBrowser(server).sign_in(user.user["username"])
    page, api_by_cookie = here.socket("/ws"), here.socket("/api/ws")
    other_page = elsewhere.socket("/ws")
    program = Socket(f"{server.ws_url}/api/ws?token={user.token}")
    program.wait_for("session:state")

    copied = here.cookie_header()  # a copy of the cookie, taken before the sign-out
    r = here.post("/logout")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    for ws in (page, api_by_cookie):
        assert ws.closed.wait(5), "a socket of the signed-out browser stayed open"
        assert ws.close_code == 1000 and ws.close_reason == "Signed out"
    assert here.get("/api/me").status_code == 401
    # The copy is signed out too (issue 13 F4): no answer, no socket.
    stolen = {"Cookie": copied}
    assert requests.get(server.url + "/api/me", headers=stolen, timeout=10).status_code == 401
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(
            server.ws_url + "/api/ws", timeout=5, header=[f"Cookie: {copied}"], origin=server.url
        )
    assert refused.value.status_code == 401

    # The bearer-token socket and the other browser's socket live on and still hear events.
    session = start_session(user, astrologer)
    assert program.wait_for("session:accepted")["data"]["id"] == session["id"]
    other_page.wait_for_text(f'id="session-{session["id"]}"')
    assert not program.closed.is_set() and not other_page.closed.is_set()
    assert user.post("/api/sessions/end").status_code == 200
    program.wait_for("consult:ended")
    for ws in (program, other_page):
        ws.close()


# ---------------------------------------------------------------- bad frames


def test_bad_frames_are_refused_without_harm(server):
    user = make_account(server, "user", balance=10_000)
    astrologer = make_account(server, "astrologer")
    session = start_session(user, astrologer)
    sid = session["id"]
    watcher = astrologer.socket()
    watcher.wait_for("session:state")
    ws = user.socket()
    ws.wait_for("session:state")

    malformed = [
        "[" * 30_000 + "]" * 30_000,  # nesting deep enough to exhaust the parser's recursion
        '{"event": "endSession", "data": {"sessionId": ' + "9" * 5000 + "}}",
        '{"event": "endSession", "data": {"sessionId": 1e999}}',
        '{"event": "endSession", "data": {"sessionId": NaN}}',
        '{"event": {"$ne": null}, "data": {}}',
        f'{{"event": "chat:send", "data": {{"sessionId": {sid}, "text": {{"a": 1}}}}}}',
        f'{{"event": "chat:send", "data": {{"sessionId": [{sid}], "text": "x"}}}}',
        '{"event": "endSession", "data": {"sessionId": true}}',
        f'{{"event": "endSession", "data": {{"sessionId": "{sid}"}}}}',
        '{"event": "endSession", "data": []}',
        '{"event": "endSession", "requestId": {"x": 1}}',
        "\ud800",  # a lone surrogate cannot even be encoded: sent as raw bytes below
        "",
    ]
    for raw in malformed:
        if raw == "\ud800":
            ws.ws.send_binary(b"\xff\xfe{\x00")  # not UTF-8 at all
        else:
            ws.send_raw(raw)
        error = ws.wait_for("error", timeout=5)
        assert error["data"]["message"], raw[:40]
        assert not ws.closed.is_set(), f"the socket died on {raw[:40]!r}"
    # A binary frame is refused even when it holds a valid command: the protocol is text.
    ws.ws.send_binary(json.dumps({"event": "endSession", "data": {"sessionId": sid}}).encode())
    assert ws.wait_for("error", timeout=5)["data"]["message"] == (
        "Frames must be JSON text, not binary"
    )
    # Unharmed: the session still runs, both sockets still work, nothing was charged.
    state = user.get(f"/api/sessions/{sid}").json()
    assert state["status"] == "active"
    assert user.get("/api/wallet").json()["balancePaise"] == 10_000
    ws.send("billing:status", {})
    assert ws.wait_for("billing:status")["data"]["sessionId"] == sid

    # Over 64 KiB closes with 1009, and only that socket; at any size (an 8 MiB frame is
    # still being sent when the server gives up on it: without lingering, a reset), the
    # close frame arrives.
    program, big = user.socket(), user.socket()
    program.send_raw("x" * (KIB_64 + 1))
    big.send_raw("x" * (8 * 1024 * 1024))
    page = PlainBrowser(server).sign_in(user.user["username"]).socket("/ws")
    page.send("x" * (KIB_64 + 1))
    for victim in (program, big, page):
        assert victim.closed.wait(10)
        assert victim.close_code == 1009
    ws.send("billing:status", {})
    assert ws.wait_for("billing:status")["data"]["sessionId"] == sid
    assert user.post("/api/sessions/end").status_code == 200
    watcher.wait_for("consult:ended", where=lambda d: d["sessionId"] == sid)
    ws.close()
    watcher.close()
    assert_books_balance(server)


# ---------------------------------------------------------------- who may act over the socket


def socket_answer(ws: Socket, event: str, data: dict) -> dict:
    replies = {"endSession": "endSession:result", "billing:status": "billing:status"}
    ws.send(event, data, requestId="m")
    if event == "chat:send":  # success has no direct reply: its chat:message comes instead
        while True:
            frame = ws.wait_for_any("chat:message", "error")
            if frame["event"] == "error" or frame["data"]["text"] == data["text"]:
                return frame
    return ws.wait_for_any(replies[event], "error")


def test_socket_events_answer_only_the_sessions_own_parties(server, admin_api):
    user = make_account(server, "user", balance=50_000)
    astrologer = make_account(server, "astrologer")
    other_user = make_account(server, "user", balance=50_000)
    other_astrologer = make_account(server, "astrologer")
    session = start_session(user, astrologer)
    sid = session["id"]
    sockets = {}
    for name, api in (
        ("user", user),
        ("astrologer", astrologer),
        ("other_user", other_user),
        ("other_astrologer", other_astrologer),
        ("admin", admin_api),
    ):
        sockets[name] = api.socket()
        sockets[name].wait_for("session:state")
    text = "only the parties may say this"
    for actor in ("other_user", "other_astrologer", "admin"):
        for event, data in (
            ("billing:status", {"sessionId": sid}),
            ("chat:send", {"sessionId": sid, "text": text}),
            ("endSession", {"sessionId": sid, "reason": "system_error"}),
        ):
            frame = socket_answer(sockets[actor], event, data)
            assert frame["event"] == "error", (actor, event, frame)
    assert user.get(f"/api/sessions/{sid}/messages").json() == []
    assert user.get(f"/api/sessions/{sid}").json()["status"] == "active"
    for actor in ("user", "astrologer"):
        assert socket_answer(sockets[actor], "billing:status", {"sessionId": sid})["event"] == (
            "billing:status"
        )
        frame = socket_answer(sockets[actor], "chat:send", {"sessionId": sid, "text": actor})
        assert frame["event"] == "chat:message" and frame["data"]["text"] == actor
    result = socket_answer(
        sockets["user"], "endSession", {"sessionId": sid, "reason": "system_error"}
    )
    assert result["event"] == "endSession:result"
    assert result["data"]["reason"] == "user_requested"  # not the reason it asked for
    for ws in sockets.values():
        ws.close()
    assert_books_balance(server)


def test_an_htmx_socket_end_cannot_choose_a_reserved_reason(server):
    user = make_account(server, "user", balance=10_000)
    astrologer = make_account(server, "astrologer")
    session = start_session(user, astrologer)
    browser = PlainBrowser(server).sign_in(user.user["username"])
    page = browser.socket("/ws")
    page.send(
        json.dumps(
            {
                "event": "endSession",
                "sessionId": str(session["id"]),
                "reason": "system_error",
                "HEADERS": {"HX-Request": "true"},
            }
        )
    )
    ended = wait_until(
        lambda: (s := user.get(f"/api/sessions/{session['id']}").json())["status"] == "ended" and s,
        timeout=10,
        message="the page's End to settle",
    )
    assert ended["endReason"] == "user_requested"
    page.close()


# ---------------------------------------------------------------- socket limits (issue 13 F10)


def test_a_socket_past_its_frame_budget_is_answered_then_closed_and_can_still_end(fresh_server):
    server = fresh_server(
        SOCKET_FRAMES_PER_SECOND=5, SOCKETS_PER_USER=2, MESSAGE_LIMIT="4 per minute"
    )
    user = make_account(server, "user", balance=10_000)
    astrologer = make_account(server, "astrologer")
    sid = start_session(user, astrologer)["id"]  # holds one socket for each
    # The cap on sockets: the user has one; a second is fine, a third is refused.
    ws = user.socket()
    ws.wait_for("session:state")
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        user.socket()
    assert refused.value.status_code == 429

    # Messages count per account, socket and REST together. (Five frames on this socket so
    # far at most, its budget for any second: none of them is refused for speed.)
    for n in range(3):
        ws.send("chat:send", {"sessionId": sid, "text": f"m{n}"})
        ws.wait_for("chat:message", where=lambda d, n=n: d["text"] == f"m{n}")
    r = user.post(f"/api/sessions/{sid}/messages", {"text": "m3"})
    assert r.status_code == 201
    ws.send("chat:send", {"sessionId": sid, "text": "m4"})
    assert ws.wait_for("error")["data"]["message"] == "Too many messages; slow down a little"

    # A burst past the budget: errors, but an end still goes through, then a close.
    for _ in range(5):
        ws.send("billing:status", {})
    ws.send("endSession", {"sessionId": sid})
    assert ws.wait_for("endSession:result")["data"]["reason"] == "user_requested"
    for _ in range(12):
        ws.send("billing:status", {})
    too_fast = "Too many frames: at most 5 a second"
    ws.wait_for("error", where=lambda d: d["message"] == too_fast)
    assert ws.closed.wait(5)
    assert (ws.close_code, ws.close_reason) == (1008, "Too many frames")
    assert user.get(f"/api/sessions/{sid}").json()["endReason"] == "user_requested"
