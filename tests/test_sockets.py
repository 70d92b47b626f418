"""The JSON WebSocket with real clients against a real server: every end reaches both parties."""

import pytest

from support import create_astrologer, register_user, start_session, wait_until

pytestmark = pytest.mark.server


def test_user_end_reaches_both_parties_once(server):
    user, astrologer = register_user(server, 10_000), create_astrologer(server, rate=6000)
    user_ws, astro_ws = user.socket(), astrologer.socket()
    assert user_ws.wait_for("session:state")["data"] is None
    astro_ws.wait_for("session:state")
    session = start_session(user, astrologer)

    user_ws.send("endSession", {}, requestId="r-1")
    result = user_ws.wait_for("endSession:result")
    assert result["requestId"] == "r-1"
    assert result["data"]["sessionId"] == session["id"]
    assert result["data"]["reason"] == "user_requested"
    assert result["data"]["alreadyEnded"] is False
    for ws in (user_ws, astro_ws):
        ended = ws.wait_for("consult:ended", where=lambda d: d["sessionId"] == session["id"])
        assert ended["data"]["reason"] == "user_requested"
        assert ended["data"]["totalCostPaise"] == result["data"]["totalCostPaise"]
    by_user = astro_ws.wait_for("session:ended-by-user")
    assert by_user["data"] == {"sessionId": session["id"], "userId": user.id, "reason": "user_requested"}
    assert user_ws.count("consult:ended") == 0 and astro_ws.count("consult:ended") == 0
