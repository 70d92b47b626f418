"""The second wave over a real server's `/api/ws`: what the socket says of limits and refunds."""

import pytest

from helpers.server import (
    create_astrologer,
    make_account,
    register_user,
    start_session,
    wait_until,
)
from helpers.sockets import Socket, delivered

pytestmark = pytest.mark.server

RATE = 6000  # a rupee a second


def test_a_make_good_reaches_the_users_socket_as_a_refund_and_a_whole_wallet(fresh_server):
    server = fresh_server(MAKE_GOOD_SECONDS=60, MAKE_GOOD_SILENT_ASTROLOGER="false")
    user, astrologer = register_user(server, 50_000), create_astrologer(server, rate=RATE)
    user_socket, astro_socket = user.socket(), astrologer.socket()
    for socket in (user_socket, astro_socket):
        socket.wait_for("session:state")
    session = start_session(user, astrologer)
    wait_until(lambda: user.get("/api/billing/status").json()["elapsedSeconds"] >= 2)
    astro_socket.send("endSession", {"sessionId": session["id"]})
    ended = user_socket.wait_for("consult:ended")["data"]
    refunded = user_socket.wait_for("session:refunded")["data"]
    assert refunded == {
        "sessionId": session["id"],
        "refundedPaise": ended["totalCostPaise"],
        "reason": "early_end",
    }
    assert ended["totalCostPaise"] >= 200
    assert user_socket.wait_for("wallet:updated", where=lambda d: d["balancePaise"] == 50_000)
    assert user.get("/api/wallet").json()["balancePaise"] == 50_000


def test_a_change_of_limits_reaches_both_sockets_and_the_bill_says_what_ends_it(server):
    user, astrologer = register_user(server, 50_000), create_astrologer(server, rate=RATE)
    user_socket, astro_socket = user.socket(), astrologer.socket()
    for socket in (user_socket, astro_socket):
        socket.wait_for("session:state")
    session = start_session(user, astrologer)
    changed = user.put(f"/api/sessions/{session['id']}/limits", {"maxSpendPaise": 30_000})
    assert changed.status_code == 200, changed.text
    for socket in (user_socket, astro_socket):
        socket.wait_for("billing:updated", where=lambda d: d["sessionId"] == session["id"])
    user_socket.send("billing:status", {"sessionId": session["id"]})
    bill = user_socket.wait_for("billing:status")["data"]
    assert bill["endsBy"] == "spend_cap" and 0 < bill["secondsLeft"] <= 300
    astro_socket.send("billing:status", {"sessionId": session["id"]})
    seen = astro_socket.wait_for("billing:status")["data"]
    assert seen["endsBy"] == "spend_cap" and seen["balancePaise"] is None
    assert user.post("/api/sessions/end").status_code == 200


def test_an_admins_socket_watching_live_hears_each_start_and_end_and_nobody_else_does(server):
    admin, nosy = make_account(server, "admin"), register_user(server)
    console = Socket(f"{server.ws_url}/api/ws?token={admin.token}&watch=live")
    bystander = Socket(f"{server.ws_url}/api/ws?token={nosy.token}&watch=live")
    for ws in (console, bystander):
        ws.wait_for("session:state")
        ws.round_trip()  # attached: it hears what follows
    user, astrologer = register_user(server, 50_000), create_astrologer(server)
    session_id = start_session(user, astrologer)["id"]
    console.wait_for("live:changed", where=lambda d: d == {"sessionIds": [session_id]})
    assert user.post("/api/sessions/end").status_code == 200
    console.wait_for("live:changed", where=lambda d: d == {"sessionIds": [session_id]})
    delivered(server, bystander)
    assert bystander.count("live:changed") == 0  # a user may not watch the console
    for ws in (console, bystander):
        ws.close()
