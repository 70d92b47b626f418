"""The JSON API's astrologer list and wallet: rates, presence, the balance, recharges and
their idempotency keys."""

from helpers.contract import conforming
from helpers.inprocess import (
    RATE,
    add_money,
    balance_of,
    error_of,
    listen,
    make_astrologer,
    make_user,
    services,
)


def test_astrologers_are_listed_to_anyone_with_their_rates(client, alice, guru, boss):
    other = make_astrologer("moon", rate=3550, name="Moon Reader")
    response = client.get("/api/astrologers")
    assert response.status_code == 200
    listed = conforming(response)
    assert [a["id"] for a in listed] == [guru.id, other.id]
    for entry, who, rate in ((listed[0], guru, RATE), (listed[1], other, 3550)):
        assert {"id", "username", "name", "ratePaisePerMinute", "online"} <= entry.keys()
        assert entry["username"] == who.username
        assert entry["name"] == who.name
        assert entry["ratePaisePerMinute"] == rate
        assert entry["online"] is False  # nobody has a socket open
    signed_in = client.get("/api/astrologers", headers=alice.auth)
    assert signed_in.get_json() == listed


def test_online_follows_the_astrologer_s_connections(client, guru):
    listener = listen(guru)
    assert client.get("/api/astrologers").get_json()[0]["online"] is True
    services().hub.detach(listener)
    assert client.get("/api/astrologers").get_json()[0]["online"] is False


def test_wallet_shows_the_balance(client, alice):
    response = client.get("/api/wallet", headers=alice.auth)
    assert response.status_code == 200
    assert response.get_json() == {"balancePaise": 100_000}


def test_only_users_have_a_wallet(client, guru):
    assert client.get("/api/wallet", headers=guru.auth).status_code == 403
    response = client.post("/api/wallet/recharge", json={"amountPaise": 100}, headers=guru.auth)
    assert response.status_code == 403


def test_recharge_adds_to_the_balance(client, alice):
    response = client.post("/api/wallet/recharge", json={"amountPaise": 2_550}, headers=alice.auth)
    assert response.status_code == 200
    assert conforming(response) == {"balancePaise": 102_550}
    assert client.get("/api/wallet", headers=alice.auth).get_json() == {"balancePaise": 102_550}


def test_recharge_refuses_an_amount_that_is_not_a_positive_whole_number(client, alice):
    for body in [{"amountPaise": a} for a in (0, -100, 1.5, 100.0, "100", True, None, [100])] + [
        {}
    ]:
        response = client.post("/api/wallet/recharge", json=body, headers=alice.auth)
        assert response.status_code == 400, body
        error_of(response)
    assert balance_of(alice) == 100_000


def test_recharge_retried_with_the_same_idempotency_header_credits_once(client, alice):
    headers = {**alice.auth, "Idempotency-Key": "pay-1"}
    first = client.post("/api/wallet/recharge", json={"amountPaise": 1_000}, headers=headers)
    add_money(alice.id, 5)  # the balance moves meanwhile; the replay still answers the first
    second = client.post("/api/wallet/recharge", json={"amountPaise": 1_000}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json() == {"balancePaise": 101_000}
    assert balance_of(alice) == 101_005


def test_recharge_retried_with_the_same_idempotency_field_credits_once(client, alice):
    body = {"amountPaise": 1_000, "idempotencyKey": "pay-2"}
    first = client.post("/api/wallet/recharge", json=body, headers=alice.auth)
    second = client.post("/api/wallet/recharge", json=body, headers=alice.auth)
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json() == {"balancePaise": 101_000}
    assert balance_of(alice) == 101_000


def test_recharge_key_reused_for_another_amount_answers_422(client, alice):
    headers = {**alice.auth, "Idempotency-Key": "pay-3"}
    client.post("/api/wallet/recharge", json={"amountPaise": 1_000}, headers=headers)
    response = client.post("/api/wallet/recharge", json={"amountPaise": 2_000}, headers=headers)
    assert response.status_code == 422
    error_of(response)
    assert balance_of(alice) == 101_000


def test_recharge_keys_belong_to_their_user(client, alice):
    bob = make_user("bob")
    headers = {"Idempotency-Key": "shared-key"}
    client.post(
        "/api/wallet/recharge", json={"amountPaise": 1_000}, headers={**alice.auth, **headers}
    )
    response = client.post(
        "/api/wallet/recharge", json={"amountPaise": 700}, headers={**bob.auth, **headers}
    )
    assert response.status_code == 200
    assert response.get_json() == {"balancePaise": 700}
