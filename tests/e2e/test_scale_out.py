"""Two app instances on one PostgreSQL and one Redis: one consistent product, same code.

The user's socket lands on one instance and the astrologer's on the other, as a load
balancer would place them; every end must reach both, exactly once.
"""

import json
import uuid

import pytest
import redis
import requests

from helpers.books import ended_events_of, settlements_of
from helpers.databases import postgres_schema
from helpers.server import (
    FAST,
    Api,
    Server,
    create_astrologer,
    register_user,
    start_session,
    wait_until,
)
from helpers.sockets import scheduler_ticked

pytestmark = pytest.mark.server
RATE = 6000  # 100 paise a second


@pytest.fixture
def cluster(postgres, redis_url):
    """Two instances sharing a fresh PostgreSQL schema and a Redis namespace."""
    with postgres_schema(postgres) as url:
        settings = {**FAST, "REDIS_URL": redis_url, "REDIS_PREFIX": f"test-{uuid.uuid4().hex[:8]}"}
        servers = [Server(url, settings).start(), Server(url, settings).start()]
        yield servers
        for srv in servers:
            srv.stop(kill=True)


def delivered(cluster, redis_url: str, sockets: dict) -> None:
    """`helpers.sockets.delivered` for a cluster (`sockets`: user id -> socket). Once the
    scheduler has ticked past now, a marker published on the hubs' Redis channel reaches
    each socket after every event published before it: Redis delivers a channel's messages
    in order, and an instance queues a socket's frames in order. A round trip on the socket
    alone is not enough here: an event from the other instance may still be in Redis."""
    scheduler_ticked(cluster[0])
    marker = f"sync-{uuid.uuid4().hex[:8]}"
    channel = f"{cluster[0].settings['REDIS_PREFIX']}:events"
    body = {"to": sorted(sockets), "name": "test:delivered", "data": {"marker": marker}}
    redis.Redis.from_url(redis_url).publish(channel, json.dumps(body))
    for ws in sockets.values():
        ws.wait_for("test:delivered", where=lambda d: d["marker"] == marker)


def test_an_end_on_either_instance_reaches_both_parties_once(cluster, redis_url):
    a, b = cluster
    user, astrologer = register_user(a, 50_000), create_astrologer(a, rate=RATE).on(b)
    user_ws, astro_ws = user.socket(), astrologer.socket()
    for ws in (user_ws, astro_ws):
        ws.wait_for("session:state")

    first = start_session(user, astrologer)
    answer = user.on(b).post("/api/sessions/end")  # the user's REST call lands on B
    assert answer.status_code == 200 and answer.json()["alreadyEnded"] is False
    for ws in (user_ws, astro_ws):
        ws.wait_for("consult:ended", where=lambda d: d["sessionId"] == first["id"])
    astro_ws.wait_for("session:ended-by-user", where=lambda d: d["sessionId"] == first["id"])

    second = start_session(user, astrologer)
    astro_ws.send("endSession", {"sessionId": second["id"]})  # over B's socket
    assert astro_ws.wait_for("endSession:result")["data"]["reason"] == "astrologer_ended"
    for ws in (user_ws, astro_ws):
        frame = ws.wait_for("consult:ended", where=lambda d: d["sessionId"] == second["id"])
        assert frame["data"]["reason"] == "astrologer_ended"

    delivered(cluster, redis_url, {user.id: user_ws, astrologer.id: astro_ws})
    assert user_ws.count("consult:ended") == 0 and astro_ws.count("consult:ended") == 0
    assert astro_ws.count("session:ended-by-user") == 0
    for session in (first, second):
        assert settlements_of(a, session["id"]) == ended_events_of(a, session["id"]) == 1


def test_presence_is_shared_across_instances(cluster):
    a, b = cluster
    astrologer = create_astrologer(a, rate=RATE)

    def online_on(server):
        listed = Api(server).get("/api/astrologers").json()
        return next(x["online"] for x in listed if x["id"] == astrologer.id)

    assert not online_on(a) and not online_on(b)
    ws = astrologer.on(b).socket()
    ws.wait_for("session:state")
    assert online_on(a) and online_on(b)
    ws.close()
    wait_until(lambda: not online_on(a), timeout=5, message="A to see the astrologer leave")


def test_a_disconnect_seen_by_one_instance_ends_the_session_for_the_other(cluster):
    a, b = cluster
    user, astrologer = register_user(a, 50_000), create_astrologer(a, rate=RATE).on(b)
    user_ws, astro_ws = user.socket(), astrologer.socket()
    session = start_session(user, astrologer)
    user_ws.drop()  # A sees the user go; B's scheduler (or A's) ends it after the grace
    frame = astro_ws.wait_for(
        "consult:ended", timeout=10, where=lambda d: d["sessionId"] == session["id"]
    )
    assert frame["data"]["reason"] == "user_disconnected"


def test_a_funded_end_fires_exactly_once_with_two_schedulers(cluster, redis_url):
    a, b = cluster
    user, astrologer = register_user(a, 300), create_astrologer(a, rate=RATE).on(b)  # 3 s of funds
    user_ws, astro_ws = user.socket(), astrologer.socket()
    session = start_session(user, astrologer)
    for ws in (user_ws, astro_ws):
        frame = ws.wait_for(
            "consult:ended", timeout=10, where=lambda d: d["sessionId"] == session["id"]
        )
        assert frame["data"]["reason"] == "insufficient_balance"
        assert frame["data"]["durationSeconds"] == 3 and frame["data"]["totalCostPaise"] == 300
    delivered(cluster, redis_url, {user.id: user_ws, astrologer.id: astro_ws})
    assert user_ws.count("consult:ended") == 0 and astro_ws.count("consult:ended") == 0
    assert settlements_of(a, session["id"]) == ended_events_of(a, session["id"]) == 1
    assert user.get("/api/wallet").json()["balancePaise"] == 0


def test_killing_the_lease_holder_does_not_lose_a_pending_auto_end(cluster):
    a, b = cluster
    leader = wait_until(
        lambda: next((s for s in cluster if s and Api(s).get("/healthz").json()["leader"]), None),
        timeout=5,
        message="an instance to hold the scheduler lease",
    )
    survivor = b if leader is a else a
    user = register_user(survivor, 600)  # 6 s of funds
    astrologer = create_astrologer(survivor, rate=RATE)
    user_ws, astro_ws = user.socket(), astrologer.socket()
    session = start_session(user, astrologer)

    leader.stop(kill=True)
    for ws in (user_ws, astro_ws):
        frame = ws.wait_for(
            "consult:ended", timeout=15, where=lambda d: d["sessionId"] == session["id"]
        )
        assert frame["data"]["reason"] == "insufficient_balance"
        assert frame["data"]["durationSeconds"] == 6 and frame["data"]["totalCostPaise"] == 600
    assert Api(survivor).get("/healthz").json()["leader"] is True
    ended = user.get(f"/api/sessions/{session['id']}").json()
    assert ended["status"] == "ended" and ended["endReason"] == "insufficient_balance"
    assert settlements_of(survivor, session["id"]) == ended_events_of(survivor, session["id"]) == 1


def test_two_instances_on_one_redis_share_the_sign_in_limit(cluster):
    """Failed sign-ins count in Redis: ten wrong passwords spread over two instances use up
    the account's allowance on both (each alone would have allowed ten)."""
    a, b = cluster
    user = register_user(a)
    wrong = {"username": user.user["username"], "password": "not-the-password"}
    for n in range(10):
        r = requests.post((a if n % 2 else b).url + "/api/auth/token", json=wrong, timeout=10)
        assert r.status_code == 401, (n, r.text)
    for srv in (a, b):
        r = requests.post(srv.url + "/api/auth/token", json=wrong, timeout=10)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
