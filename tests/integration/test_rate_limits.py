"""Rate limits (issue 13 part 3) in process: sign-up and recharge per address, session
requests, messages and reports per account, each a 429 with Retry-After that changes
nothing, and none of them ever standing between a party and the end of their session.
(Sign-in: test_auth_edges.py; sockets and two instances sharing Redis: e2e.)"""

from sqlalchemy import func, select

from consult import accounts, chat
from consult.clock import utcnow
from consult.db import db
from helpers.inprocess import balance_of, end_as, live_session, make_user


def refused(response, message: str) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.get_json() == {"error": message}
    assert int(response.headers["Retry-After"]) >= 1


# The test client's default address is 127.0.0.1: a process on this machine, which the
# per-address limits let through (the next test); the internet comes from elsewhere.
ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}


def sign_ups_until_refused(client, prefix: str, allowed: int, **kwargs) -> None:
    """`allowed` sign-ups pass, and the next one is refused."""
    for n in range(allowed + 1):
        r = client.post(
            "/api/auth/register",
            json={"username": f"{prefix}{n}", "password": "Tulsi@7x"},
            **kwargs,
        )
        if n < allowed:
            assert r.status_code == 201, r.get_data(as_text=True)
    refused(r, "Too many sign-ups from here; try again later")


def users() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(accounts.User))


def test_sign_ups_from_one_address_are_limited(app, client):
    app.config["SIGNUP_LIMIT"] = "3 per hour"
    sign_ups_until_refused(client, "new", 3, environ_base=ELSEWHERE)
    assert users() == 3


def test_this_machine_signs_up_freely_unless_a_proxy_relayed_it(app, client):
    """The benchmark's load client registers thousands from loopback; a proxy on this
    machine says it relayed a request, and those still count."""
    app.config["SIGNUP_LIMIT"] = "2 per hour"
    for n in range(5):
        r = client.post(
            "/api/auth/register", json={"username": f"local{n}", "password": "Tulsi@7x"}
        )
        assert r.status_code == 201
    sign_ups_until_refused(client, "proxied", 2, headers={"X-Forwarded-For": "198.51.100.7"})
    assert users() == 7


def test_recharges_from_one_address_are_limited_and_the_wallet_stays(app, client, alice):
    app.config["RECHARGE_LIMIT"] = "2 per hour"
    for _ in range(2):
        assert (
            client.post(
                "/api/wallet/recharge",
                json={"amountPaise": 100},
                headers=alice.auth,
                environ_base=ELSEWHERE,
            ).status_code
            == 200
        )
    r = client.post(
        "/api/wallet/recharge",
        json={"amountPaise": 100},
        headers=alice.auth,
        environ_base=ELSEWHERE,
    )
    refused(r, "Too many recharges; try again later")
    assert balance_of(alice) == 100_000 + 200


def test_session_requests_are_limited_per_account(app, client, alice, guru):
    app.config["SESSION_REQUEST_LIMIT"] = "2 per minute"
    for _ in range(2):
        r = client.post("/api/sessions", json={"astrologerId": guru.id}, headers=alice.auth)
        assert r.status_code == 201
        assert client.post(f"/api/sessions/{r.get_json()['id']}/cancel", headers=alice.auth)
    r = client.post("/api/sessions", json={"astrologerId": guru.id}, headers=alice.auth)
    refused(r, "Too many session requests; try again later")
    # Another account has its own count.
    ravi = make_user("ravi", balance=100_000)
    r = client.post("/api/sessions", json={"astrologerId": guru.id}, headers=ravi.auth)
    assert r.status_code == 201


def test_messages_are_limited_per_account_and_ending_never_is(app, client, alice, guru):
    app.config["MESSAGE_LIMIT"] = "3 per minute"
    session_id = live_session(alice, guru)
    path = f"/api/sessions/{session_id}/messages"
    for n in range(3):
        assert client.post(path, json={"text": f"m{n}"}, headers=alice.auth).status_code == 201
    refused(
        client.post(path, json={"text": "one too many"}, headers=alice.auth),
        "Too many messages; slow down a little",
    )
    assert client.post(path, json={"text": "the astrologer's own"}, headers=guru.auth)
    db.session.rollback()
    texts = [m.text for m in chat.history(session_id)]
    assert "one too many" not in texts and "the astrologer's own" in texts
    r = client.post("/api/sessions/end", headers=alice.auth, json={})
    assert r.status_code == 200 and r.get_json()["reason"] == "user_requested"


def test_reports_are_limited_per_account(app, client, alice, guru):
    app.config["REPORT_LIMIT"] = "1 per hour"
    session_id = live_session(alice, guru)
    end_as(alice, session_id, utcnow())
    second = live_session(alice, guru)
    end_as(alice, second, utcnow())
    body = {"category": "quality", "text": "The answers were vague."}
    r = client.post(f"/api/sessions/{session_id}/report", json=body, headers=alice.auth)
    assert r.status_code == 201
    r = client.post(f"/api/sessions/{second}/report", json=body, headers=alice.auth)
    refused(r, "Too many reports; try again later")
