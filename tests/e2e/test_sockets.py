"""The JSON WebSocket with real clients against a real server: every end reaches both parties.

One module-scoped server serves every test but the crash test; each test signs up its own
user and takes its own astrologer, so no test sees another's sessions or frames.
"""

import base64
import os
import queue
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
import websocket

from helpers.books import ended_events_of, settlements_of
from helpers.contract import (
    BILLING_FIELDS,
    END_FIELDS,
    ENDED_FIELDS,
    MESSAGE_FIELDS,
    SESSION_FIELDS,
    instant,
    whole_seconds,
)
from helpers.server import (
    Api,
    Astrologers,
    Server,
    create_astrologer,
    register_user,
    run_together,
    start_session,
    wait_until,
)
from helpers.sockets import Socket, delivered, ticked_past

pytestmark = pytest.mark.server

RATE = 6100  # paise per minute; not a multiple of 60, so the rounding down shows in every cost
ASTROLOGERS_NEEDED = 19  # how many tests below take an astrologer from the batch
KIB_64 = 64 * 1024


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module", autouse=True)
def astrologer_batch(server):
    """Astrologers are made in the background from the module's first test on."""
    batch = Astrologers(server, ASTROLOGERS_NEEDED, rate=RATE)
    yield batch
    batch.close()


@pytest.fixture
def new_astrologer(astrologer_batch):
    """A fresh astrologer at RATE, signed in."""
    return astrologer_batch.take


@pytest.fixture
def connect():
    """Open an /api/ws socket for an Api; every socket is closed when the test ends."""
    opened = []

    def open_socket(api: Api, **kw) -> Socket:
        ws = api.socket(**kw)
        opened.append(ws)
        return ws

    yield open_socket
    for ws in opened:
        ws.close()


@pytest.fixture
def in_session(server, connect, new_astrologer):
    """`in_session(balance)`: a new user with `balance` paise and a fresh astrologer, both
    connected (past the connect-time session:state), in a session just started; returns
    (user, astrologer, user_ws, astro_ws, session)."""

    def start(balance: int = 10_000):
        user, astrologer = register_user(server, balance), new_astrologer()
        user_ws, astro_ws = connected(connect(user)), connected(connect(astrologer))
        return user, astrologer, user_ws, astro_ws, start_session(user, astrologer)

    return start


def grace_of(server: Server) -> float:
    return float(server.settings["DISCONNECT_GRACE_SECONDS"])


def wallet(user: Api) -> int:
    r = user.get("/api/wallet")
    assert r.status_code == 200, r.text
    return r.json()["balancePaise"]


def session_of(api: Api, session_id: int) -> dict:
    r = api.get(f"/api/sessions/{session_id}")
    assert r.status_code == 200, r.text
    return r.json()


def billing(api: Api, session_id: int) -> dict:
    r = api.get("/api/billing/status", params={"sessionId": session_id})
    assert r.status_code == 200, r.text
    return r.json()


def assert_priced(figures: dict, rate: int = RATE) -> None:
    """cost = billable seconds * rate // 60, where billable seconds = durationSeconds."""
    assert figures["totalCostPaise"] == figures["durationSeconds"] * rate // 60, figures


def first_frame(ws: Socket, timeout: float = 10.0) -> dict:
    """The very first frame the socket received (nothing may have been read from it yet)."""
    assert not ws.seen, "first_frame must be called before anything else reads the socket"
    try:
        return ws.frames.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no frame at all within {timeout}s") from None


def state_on_connect(ws: Socket):
    """The data of the socket's first frame, which must be session:state."""
    frame = first_frame(ws)
    assert frame["event"] == "session:state", frame
    return frame["data"]


def connected(ws: Socket) -> Socket:
    """Wait for the connect-time session:state, so later waits see only what follows, and
    for an answer (the server attaches the socket, which makes its owner present, between
    the two)."""
    ws.wait_for("session:state")
    ws.round_trip()
    return ws


def ended_once(
    server: Server, ws: Socket, session_id: int, reason: str, timeout: float = 10.0
) -> dict:
    """Wait for this session's consult:ended, check its form, and that it came only once:
    counted once the socket holds everything the server owes it (`delivered`)."""
    data = ws.wait_for(
        "consult:ended", timeout=timeout, where=lambda d: d["sessionId"] == session_id
    )["data"]
    assert set(data) >= ENDED_FIELDS, data
    assert data["reason"] == reason, data
    instant(data["timestamp"])
    assert_priced(data)
    delivered(server, ws)
    assert ws.count("consult:ended") == 0, "consult:ended arrived more than once"
    assert settlements_of(server, session_id) == ended_events_of(server, session_id) == 1
    return data


def not_ended_by_the_grace(server: Server, ws: Socket) -> None:
    """Once a grace from now has run out (and the half second the server may take to see a
    drop) by the server's own clock, its scheduler has ticked past it, and the socket holds
    all it is owed, it has heard no consult:ended."""
    passed = datetime.now(UTC) + timedelta(seconds=grace_of(server) + 0.5)
    ticked_past(server, passed, timeout=grace_of(server) + 10)
    delivered(server, ws)
    assert ws.count("consult:ended") == 0, "the session ended although the party was back"


REPLIES = {"endSession": "endSession:result", "billing:status": "billing:status"}


def answer(ws: Socket, event: str, data: dict | None = None, **top) -> dict:
    """Send a frame and return the server's direct answer to it: its reply or an error."""
    ws.send(event, data, **top)
    return ws.wait_for_any(REPLIES.get(event, "error"), "error")


def error_for(ws: Socket, raw: str) -> dict:
    """Send raw text and return the data of the error frame it earns."""
    ws.send_raw(raw)
    return ws.wait_for("error")["data"]


# ---------------------------------------------------------------- handshake (no astrologer needed)


def test_handshake_without_a_token_is_refused_with_401(server):
    for url in (f"{server.ws_url}/api/ws", f"{server.ws_url}/api/ws?token=not-a-token"):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            Socket(url)
        assert refused.value.status_code == 401, url


def test_handshake_from_a_foreign_origin_is_refused_with_403(server):
    user = register_user(server)
    for origin in ("http://evil.example", f"http://127.0.0.1:{server.port}.evil.example", "null"):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            user.socket(origin=origin)
        assert refused.value.status_code == 403, origin


def test_handshake_from_the_apps_own_origin_or_a_bearer_header_is_accepted(server, connect):
    user = register_user(server)
    same_origin = connect(user, origin=server.url)
    assert state_on_connect(same_origin) is None
    by_header = Socket(f"{server.ws_url}/api/ws", headers=[f"Authorization: Bearer {user.token}"])
    try:
        assert state_on_connect(by_header) is None
    finally:
        by_header.close()


def test_permessage_deflate_is_declined_and_frames_go_uncompressed(server):
    """Browsers offer compression on every socket; accepting it kept a compressor per socket."""
    user = register_user(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(
            (
                f"GET /api/ws?token={user.token} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{server.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
            ).encode()
        )
        received = b""
        while b"\r\n\r\n" not in received:
            received += raw.recv(4096)
        head, _, rest = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"sec-websocket-extensions" not in head.lower(), head
        while len(rest) < 2:  # the first frame, session:state, follows the handshake
            rest += raw.recv(4096)
        first_byte = rest[0]
        assert first_byte & 0x0F == 0x1, rest[:8]  # a text frame
        assert not first_byte & 0x40, "RSV1 set: the frame was compressed"


# ---------------------------------------------------------------- bad frames


def test_bad_frames_answer_an_error_and_keep_the_socket_open(server, connect):
    user = register_user(server, 10_000)
    ws = connected(connect(user))

    assert "JSON" in error_for(ws, "this is not json {")["message"]
    for not_an_object in ("[1, 2, 3]", '"endSession"', "42", "null"):
        message = error_for(ws, not_an_object)["message"]
        assert isinstance(message, str) and message, not_an_object
    unknown = answer(ws, "horoscope:predict", {}, requestId="u-1")
    assert unknown["event"] == "error" and unknown["data"]["message"]

    nothing = answer(ws, "endSession", {})
    assert nothing["event"] == "error" and "requestId" not in nothing
    assert nothing["data"]["message"] == "No active session found to end"
    status = answer(ws, "billing:status", {})
    assert status["event"] == "error" and status["data"]["message"]

    assert not ws.closed.is_set()
    assert answer(ws, "endSession", {})["data"]["message"] == "No active session found to end"


def test_frame_over_64_kib_closes_the_socket_with_1009(server, connect):
    user = register_user(server)
    ws = connected(connect(user))
    ws.send_raw("x" * (KIB_64 + 1))
    assert ws.closed.wait(10), "the socket stayed open after a frame over 64 KiB"
    assert ws.close_code == 1009


def test_frame_of_exactly_64_kib_is_still_read(server, connect):
    user = register_user(server)
    ws = connected(connect(user))
    template = '{"event": "endSession", "data": {}, "requestId": "big", "pad": "%s"}'
    frame = template % ("p" * (KIB_64 - len(template % "")))
    assert len(frame.encode()) == KIB_64
    ws.send_raw(frame)
    error = ws.wait_for("error")
    assert error["requestId"] == "big"
    assert error["data"]["message"] == "No active session found to end"
    assert not ws.closed.is_set()


# ---------------------------------------------------------------- a crash (its own server;
# early in the module, so the astrologer batch is made meanwhile)


def test_a_crash_settles_the_live_session_with_system_error_up_to_the_last_sign_of_life(
    fresh_server, connect
):
    srv = fresh_server()
    user, astrologer = register_user(srv, 20_000), create_astrologer(srv, rate=RATE)
    for api in (user, astrologer):
        connected(connect(api))
    session = start_session(user, astrologer)
    wait_until(
        lambda: billing(user, session["id"])["elapsedSeconds"] >= 2,
        timeout=6,
        message="two seconds to be billed",
    )

    srv.stop(kill=True)  # SIGKILL: no shutdown code runs, as in a crash
    killed_at = datetime.now(UTC)  # the process is gone by now
    restarted = Server(srv.database_url, srv.settings)
    try:
        restarted.start()
        user = Api(restarted, user.token, user.user)  # tokens survive a restart
        astrologer = Api(restarted, astrologer.token, astrologer.user)

        def ended():
            found = session_of(user, session["id"])
            return found if found["status"] == "ended" else None

        settled = wait_until(ended, timeout=6, message="the crashed session to be settled")
        assert settled["endReason"] == "system_error"
        assert instant(settled["startedAt"]) <= instant(settled["endedAt"]) <= killed_at
        assert settled["durationSeconds"] == whole_seconds(settled["startedAt"], settled["endedAt"])
        assert_priced(settled)
        assert wallet(user) == 20_000 - settled["totalCostPaise"]
        for api in (user, astrologer):
            assert state_on_connect(connect(api)) is None
    finally:
        restarted.stop(kill=True)


# ---------------------------------------------------------------- every end reason, both parties


def test_user_end_reaches_both_parties_once(server, connect, new_astrologer):
    user, astrologer = register_user(server, 10_000), new_astrologer()
    user_ws, astro_ws = connect(user), connect(astrologer)
    assert user_ws.wait_for("session:state")["data"] is None
    astro_ws.wait_for("session:state")
    session = start_session(user, astrologer)

    user_ws.send("endSession", {}, requestId="r-1")
    result = user_ws.wait_for("endSession:result")
    assert result["requestId"] == "r-1"
    assert set(result["data"]) >= END_FIELDS
    assert result["data"]["sessionId"] == session["id"]
    assert result["data"]["reason"] == "user_requested"
    assert result["data"]["alreadyEnded"] is False
    assert_priced(result["data"])
    assert (
        result["data"]["balancePaise"] == wallet(user) == 10_000 - result["data"]["totalCostPaise"]
    )
    for ws in (user_ws, astro_ws):
        ended = ended_once(server, ws, session["id"], "user_requested")
        assert ended["totalCostPaise"] == result["data"]["totalCostPaise"]
        assert ended["durationSeconds"] == result["data"]["durationSeconds"]
        assert ended["timestamp"] == result["data"]["endedAt"]
    by_user = astro_ws.wait_for("session:ended-by-user")
    assert by_user["data"] == {
        "sessionId": session["id"],
        "userId": user.id,
        "reason": "user_requested",
    }
    assert astro_ws.count("session:ended-by-user") == 0
    assert user_ws.count("session:ended-by-user") == 0


def test_astrologer_end_reaches_both_parties_once_without_ended_by_user(server, in_session):
    user, astrologer, user_ws, astro_ws, session = in_session()

    result = answer(astro_ws, "endSession", {}, requestId="a-1")
    assert result["event"] == "endSession:result" and result["requestId"] == "a-1"
    data = result["data"]
    assert set(data) >= END_FIELDS
    assert data["sessionId"] == session["id"]
    assert data["reason"] == "astrologer_ended"
    assert data["alreadyEnded"] is False
    assert data["balancePaise"] is None
    assert_priced(data)
    for ws in (user_ws, astro_ws):
        ended = ended_once(server, ws, session["id"], "astrologer_ended")
        assert (ended["timestamp"], ended["durationSeconds"], ended["totalCostPaise"]) == (
            data["endedAt"],
            data["durationSeconds"],
            data["totalCostPaise"],
        )
    assert astro_ws.count("session:ended-by-user") == 0
    assert user_ws.count("endSession:result") == 0
    assert wallet(user) == 10_000 - data["totalCostPaise"]
    settled = session_of(user, session["id"])
    assert (settled["status"], settled["endReason"], settled["endedAt"]) == (
        "ended",
        "astrologer_ended",
        data["endedAt"],
    )


def test_balance_running_out_ends_both_sockets_with_insufficient_balance(server, in_session):
    balance = 250  # at RATE this funds 2 whole seconds, which cost 203 paise
    funded = balance * 60 // RATE
    user, astrologer, user_ws, astro_ws, session = in_session(balance)

    for ws in (user_ws, astro_ws):
        ended = ended_once(server, ws, session["id"], "insufficient_balance", timeout=funded + 5)
        assert ended["durationSeconds"] == funded
        assert ended["totalCostPaise"] == funded * RATE // 60 <= balance
    settled = session_of(user, session["id"])
    assert settled["endReason"] == "insufficient_balance"
    assert instant(settled["endedAt"]) - instant(settled["startedAt"]) == timedelta(seconds=funded)
    left = wallet(user)
    assert left == balance - settled["totalCostPaise"]
    assert left >= 0


def test_an_astrologer_who_never_connected_is_not_billed_for_until_they_connect(
    server, connect, new_astrologer
):
    # Finding F1: an astrologer made by the operator and never connected accepts over REST
    # with a bearer token. No socket at the accept means paused from the accept.
    user, astrologer = register_user(server, 10_000), new_astrologer()
    user_ws = connected(connect(user))
    session = start_session(user, astrologer, present=False)
    status = billing(user, session["id"])
    assert (status["paused"], status["elapsedSeconds"], status["costPaise"]) == (True, 0, 0)

    arriving = time.monotonic()  # billing cannot start before the astrologer connects
    connected(connect(astrologer))
    user_ws.wait_for("billing:updated", where=lambda d: d["sessionId"] == session["id"])
    assert billing(user, session["id"])["paused"] is False
    wait_until(
        lambda: billing(user, session["id"])["elapsedSeconds"] >= 1, message="a billed second"
    )
    r = user.post("/api/sessions/end")
    assert r.status_code == 200, r.text
    assert 1 <= r.json()["durationSeconds"] <= time.monotonic() - arriving


def test_a_session_nobody_is_connected_to_ends_after_the_grace_unbilled(server, new_astrologer):
    # Both parties on REST alone: billing never runs, and the grace ends it as a disconnect.
    grace = grace_of(server)
    user, astrologer = register_user(server, 10_000), new_astrologer()
    session = start_session(user, astrologer, present=False)
    ended = wait_until(
        lambda: (s := session_of(user, session["id"]))["status"] == "ended" and s,
        timeout=grace + 5,
        message="the grace to end the session",
    )
    assert ended["endReason"] in ("user_disconnected", "astrologer_disconnected")
    assert (ended["durationSeconds"], ended["totalCostPaise"]) == (0, 0)
    assert user.get("/api/wallet").json()["balancePaise"] == 10_000


@pytest.mark.parametrize(
    "who, reason", [("user", "user_disconnected"), ("astrologer", "astrologer_disconnected")]
)
def test_a_vanished_party_ends_the_session_after_the_grace_billed_up_to_the_drop(
    server, connect, new_astrologer, who, reason
):
    grace = grace_of(server)
    user, astrologer = register_user(server, 10_000), new_astrologer()
    sockets = {"user": connected(connect(user)), "astrologer": connected(connect(astrologer))}
    session = start_session(user, astrologer)
    wait_until(
        lambda: billing(user, session["id"])["elapsedSeconds"] >= 1,
        timeout=5,
        message="a second to be billed",
    )

    dropped_at, dropped = datetime.now(UTC), time.monotonic()
    sockets[who].drop()
    witness = sockets["astrologer" if who == "user" else "user"]
    ended = ended_once(server, witness, session["id"], reason, timeout=grace + 5)

    assert time.monotonic() - dropped >= grace - 0.1, "ended before the grace period was over"
    # Billing stopped at the drop (give the server 0.5 s to see it), not at the end of the
    # grace, and the bill is the whole seconds from the start to there: so durationSeconds is
    # at most the seconds until the drop.
    stopped = instant(ended["timestamp"])
    assert dropped_at <= stopped <= dropped_at + timedelta(seconds=0.5), (
        "billing must stop at the disconnect, not at the end of the grace period"
    )
    assert ended["durationSeconds"] == whole_seconds(session["startedAt"], ended["timestamp"])
    assert ended["durationSeconds"] >= 1
    assert wallet(user) == 10_000 - ended["totalCostPaise"]
    settled = session_of(user, session["id"])
    assert (settled["status"], settled["endReason"]) == ("ended", reason)
    back = connect(user if who == "user" else astrologer)
    assert state_on_connect(back) is None


def test_user_reconnecting_within_the_grace_keeps_the_session_and_resumes_billing(
    server, connect, in_session
):
    grace = grace_of(server)
    user, astrologer, user_ws, astro_ws, session = in_session()

    user_ws.drop()
    wait_until(
        lambda: billing(astrologer, session["id"]).get("paused") is True,
        timeout=grace,
        message="billing to pause while the user is away",
    )
    again = connect(user)
    state = state_on_connect(again)
    assert state["id"] == session["id"] and state["status"] == "active"

    not_ended_by_the_grace(server, astro_ws)
    active = user.get("/api/sessions/active")
    assert active.status_code == 200 and active.json()["id"] == session["id"]
    status = answer(again, "billing:status", {}, requestId="after-reconnect")
    assert status["event"] == "billing:status"
    assert status["data"]["sessionId"] == session["id"]
    assert status["data"]["paused"] is False

    r = user.post("/api/sessions/end")
    assert r.status_code == 200, r.text
    for ws in (again, astro_ws):
        ended_once(server, ws, session["id"], "user_requested")
    assert wallet(user) == 10_000 - r.json()["totalCostPaise"]


# ---------------------------------------------------------------- session:state


def test_session_state_is_the_first_frame_after_every_connect(server, connect, new_astrologer):
    user, astrologer = register_user(server, 10_000), new_astrologer()
    for api in (user, astrologer):
        assert state_on_connect(connect(api)) is None

    session = start_session(user, astrologer)
    expected = session_of(user, session["id"])
    assert set(expected) >= SESSION_FIELDS and expected["status"] == "active"
    for api in (user, astrologer, user):  # the user twice: a reconnect, or a second tab
        assert state_on_connect(connect(api)) == expected

    assert user.post("/api/sessions/end").status_code == 200
    for api in (user, astrologer):
        assert state_on_connect(connect(api)) is None


# ---------------------------------------------------------------- requestId


def test_direct_replies_echo_the_request_id_and_carry_none_when_none_was_sent(
    server, connect, new_astrologer
):
    user, astrologer = register_user(server, 10_000), new_astrologer()
    ws = connected(connect(user))
    session = start_session(user, astrologer)

    status = answer(ws, "billing:status", {}, requestId="bill-ü-7")
    assert status["event"] == "billing:status" and status["requestId"] == "bill-ü-7"
    status = answer(ws, "billing:status", {})
    assert status["event"] == "billing:status" and "requestId" not in status

    error = answer(ws, "no-such-event", {}, requestId="err-3")
    assert error["event"] == "error" and error["requestId"] == "err-3"
    error = answer(ws, "no-such-event", {})
    assert error["event"] == "error" and "requestId" not in error

    result = answer(ws, "endSession", {}, requestId="end-1")
    assert result["event"] == "endSession:result" and result["requestId"] == "end-1"
    assert result["data"]["alreadyEnded"] is False
    again = answer(ws, "endSession", {"sessionId": session["id"]})
    assert again["event"] == "endSession:result" and "requestId" not in again
    assert again["data"]["alreadyEnded"] is True

    error = answer(ws, "endSession", {}, requestId="end-2")
    assert error["event"] == "error" and error["requestId"] == "end-2"
    assert error["data"]["message"] == "No active session found to end"


# ---------------------------------------------------------------- billing:status


def test_billing_status_over_the_socket_has_the_api_fields(in_session):
    balance = 10_000
    user, astrologer, user_ws, astro_ws, session = in_session(balance)
    wait_until(
        lambda: billing(user, session["id"])["elapsedSeconds"] >= 1,
        timeout=5,
        message="a second to be billed",
    )

    for ws, is_user in ((user_ws, True), (astro_ws, False)):
        frame = answer(ws, "billing:status", {})
        assert frame["event"] == "billing:status"
        data = frame["data"]
        assert set(data) >= BILLING_FIELDS
        assert data["sessionId"] == session["id"]
        assert data["elapsedSeconds"] >= 1
        assert data["costPaise"] == data["elapsedSeconds"] * RATE // 60 > 0
        assert data["fundedSecondsLeft"] == balance * 60 // RATE - data["elapsedSeconds"]
        if is_user:
            assert data["balancePaise"] == balance - data["costPaise"]
        else:
            assert data["balancePaise"] is None
    assert wallet(user) == balance  # nothing is charged before the end
    assert user.post("/api/sessions/end").status_code == 200


# ---------------------------------------------------------------- other people's sessions


def test_ending_or_chatting_in_someone_elses_session_answers_session_not_found(
    server, connect, new_astrologer
):
    owner, astrologer = register_user(server, 10_000), new_astrologer()
    session = start_session(owner, astrologer)
    stranger, other_astrologer = register_user(server, 10_000), new_astrologer()

    for api in (stranger, other_astrologer):
        ws = connected(connect(api))
        for session_id in (session["id"], 10**9, "abc"):
            error = answer(ws, "endSession", {"sessionId": session_id})
            assert error["event"] == "error", (api.user, session_id)
            assert error["data"]["message"] == "Session not found"
        error = answer(ws, "chat:send", {"sessionId": session["id"], "text": "hello"})
        assert error["event"] == "error" and error["data"]["message"] == "Session not found"
    assert session_of(owner, session["id"])["status"] == "active"
    assert owner.get(f"/api/sessions/{session['id']}/messages").json() == []

    # A session still waiting for an answer cannot be ended, only cancelled.
    requested = stranger.post("/api/sessions", {"astrologerId": other_astrologer.id}).json()
    ws = connected(connect(stranger))
    error = answer(ws, "endSession", {"sessionId": requested["id"]})
    assert error["data"]["message"] == "Session is not active"
    assert answer(ws, "endSession", {})["data"]["message"] == "No active session found to end"

    assert owner.post("/api/sessions/end").status_code == 200
    assert stranger.post(f"/api/sessions/{requested['id']}/cancel").status_code == 200


# ---------------------------------------------------------------- chat


def test_chat_send_reaches_both_parties_as_chat_message(in_session):
    user, astrologer, user_ws, astro_ws, session = in_session()

    sent = []
    for sender, ws, text in (
        (user, user_ws, "<b>Namaste</b> & what do the stars say? 🙏"),
        (astrologer, astro_ws, "Jupiter smiles on you."),
        (user, user_ws, "y" * 2000),
    ):
        ws.send("chat:send", {"sessionId": session["id"], "text": text})
        copies = [
            other.wait_for("chat:message", where=lambda d, t=text: d["text"] == t)["data"]
            for other in (user_ws, astro_ws)
        ]
        assert copies[0] == copies[1]
        message = copies[0]
        assert set(message) >= MESSAGE_FIELDS
        assert message["sessionId"] == session["id"]
        assert message["senderId"] == sender.id
        assert isinstance(message["id"], int)
        instant(message["sentAt"])
        sent.append(message)

    stored = user.get(f"/api/sessions/{session['id']}/messages").json()
    fields = MESSAGE_FIELDS - {"sessionId"}
    assert [{k: m[k] for k in fields} for m in stored] == [{k: m[k] for k in fields} for m in sent]
    assert user.post("/api/sessions/end").status_code == 200


def test_chat_send_refuses_over_2000_characters_and_after_the_end(server, in_session):
    user, astrologer, user_ws, astro_ws, session = in_session()
    messages = f"/api/sessions/{session['id']}/messages"

    for text in ("z" * 2001, "", "   "):
        error = answer(user_ws, "chat:send", {"sessionId": session["id"], "text": text})
        assert error["event"] == "error" and error["data"]["message"], repr(text[:5])
    assert user.get(messages).json() == []
    delivered(server, user_ws, astro_ws)
    assert user_ws.count("chat:message") == 0
    assert astro_ws.count("chat:message") == 0

    r = astrologer.post(f"/api/sessions/{session['id']}/end")
    assert r.status_code == 200, r.text
    for ws in (user_ws, astro_ws):
        ended_once(server, ws, session["id"], "astrologer_ended")
        error = answer(ws, "chat:send", {"sessionId": session["id"], "text": "one more thing"})
        assert error["event"] == "error"
        assert error["data"]["message"] == "Session has ended"
    late = user.post(messages, {"text": "and another"})
    assert late.status_code == 409 and late.json() == {"error": "Session has ended"}
    assert user.get(messages).json() == []
    delivered(server, user_ws)
    assert user_ws.count("chat:message") == 0


# ---------------------------------------------------------------- concurrency and tabs


def test_twenty_concurrent_ends_settle_once_and_notify_each_party_once(server, in_session):
    user, astrologer, user_ws, astro_ws, session = in_session()
    sid = session["id"]
    before = wallet(user)

    calls = (
        [("user", lambda: user.post("/api/sessions/end", {"sessionId": sid}))] * 6
        + [("user", lambda: user.post(f"/api/sessions/{sid}/end"))] * 6
        + [("astrologer", lambda: astrologer.post(f"/api/sessions/{sid}/end", {}))] * 6
        + [("user", lambda: user_ws.send("endSession", {"sessionId": sid}, requestId="race"))]
        + [("astrologer", lambda: astro_ws.send("endSession", {"sessionId": sid}))]
    )
    assert len(calls) == 20
    results = run_together([call for _, call in calls])

    answers = []
    for (who, _), result in zip(calls, results):
        if result is None:  # a socket frame: its answer comes back on that socket
            ws = user_ws if who == "user" else astro_ws
            frame = ws.wait_for_any("endSession:result", "error")
            assert frame["event"] == "endSession:result", frame
            answers.append((who, frame["data"]))
        else:
            assert result.status_code == 200, result.text
            answers.append((who, result.json()))

    winners = [a for _, a in answers if a["alreadyEnded"] is False]
    assert len(winners) == 1, [a["alreadyEnded"] for _, a in answers]
    won = winners[0]
    assert won["reason"] in ("user_requested", "astrologer_ended")
    assert_priced(won)
    after = wallet(user)
    assert after == before - won["totalCostPaise"]
    for who, a in answers:
        assert a["sessionId"] == sid
        assert (a["reason"], a["endedAt"], a["durationSeconds"], a["totalCostPaise"]) == (
            won["reason"],
            won["endedAt"],
            won["durationSeconds"],
            won["totalCostPaise"],
        )
        assert a["balancePaise"] == (after if who == "user" else None)

    for ws in (user_ws, astro_ws):
        ended = ended_once(server, ws, sid, won["reason"])
        assert ended["timestamp"] == won["endedAt"]
    by_user = 1 if won["reason"] == "user_requested" else 0
    assert astro_ws.count("session:ended-by-user") == by_user


def test_every_tab_of_both_parties_receives_consult_ended(server, connect, new_astrologer):
    user, astrologer = register_user(server, 10_000), new_astrologer()
    tabs = [connected(connect(api)) for api in (user, user, astrologer, astrologer)]
    session = start_session(user, astrologer)

    r = astrologer.post(f"/api/sessions/{session['id']}/end")
    assert r.status_code == 200, r.text
    for ws in tabs:
        ended = ended_once(server, ws, session["id"], "astrologer_ended")
        assert ended["totalCostPaise"] == r.json()["totalCostPaise"]


def test_closing_one_of_two_tabs_does_not_disconnect_the_user(server, connect, new_astrologer):
    user, astrologer = register_user(server, 10_000), new_astrologer()
    tab_a, tab_b = connected(connect(user)), connected(connect(user))
    astro_ws = connected(connect(astrologer))
    session = start_session(user, astrologer)

    tab_a.drop()
    not_ended_by_the_grace(server, astro_ws)
    status = answer(tab_b, "billing:status", {})
    assert status["event"] == "billing:status" and status["data"]["paused"] is False
    assert user.get("/api/sessions/active").json()["id"] == session["id"]

    assert user.post("/api/sessions/end").status_code == 200
    for ws in (tab_b, astro_ws):
        ended_once(server, ws, session["id"], "user_requested")
