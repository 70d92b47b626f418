"""Sign-in edges from the black-box probe (issue 13): F2 the throttle's key, F3 timing,
F4 sign-out on the server, F5 next."""

import pytest

from consult import accounts
from helpers import PASSWORD
from helpers.inprocess import csrf_of, isolated_client, login, make_user


def sign_in(client, username, password):
    client.get("/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(client)},
    )


def test_whitespace_and_case_do_not_buy_more_guesses_or_sign_in_during_a_lockout(app):
    make_user("victim2", token=False)
    client = isolated_client(app)
    limit = app.config["LOGIN_ATTEMPTS_PER_WINDOW"]
    for _ in range(limit):
        assert sign_in(client, "victim2", "wrong-guess").status_code == 401
    for variant in (" victim2", "victim2 ", "\tvictim2", "VICTIM2", " Victim2\n"):
        r = sign_in(client, variant, "wrong-guess")
        assert r.status_code == 429, variant
    # Even the right password, dressed up, waits out the lockout.
    assert sign_in(client, " victim2 ", PASSWORD).status_code == 429
    token = client.post("/api/auth/token", json={"username": "Victim2 ", "password": PASSWORD})
    assert token.status_code == 429 and token.headers["Retry-After"]


def test_one_address_cannot_spray_many_usernames(app):
    client = isolated_client(app)
    limit = app.config["LOGIN_ATTEMPTS_PER_WINDOW"]
    statuses = [
        sign_in(client, f"nobody{n}", "wrong-guess").status_code for n in range(limit * 5 + 1)
    ]
    assert statuses[:-1] == [401] * (limit * 5) and statuses[-1] == 429


def test_an_unknown_username_costs_a_password_check_too(app, monkeypatch):
    make_user("known", token=False)
    checks = []
    real = accounts.check_password_hash
    monkeypatch.setattr(
        accounts, "check_password_hash", lambda h, p: checks.append(h) or real(h, p)
    )
    assert accounts.authenticate("nobody-at-all", "whatever1") is None
    assert accounts.authenticate("known", "whatever1") is None
    assert len(checks) == 2
    method = lambda h: h.split("$", 1)[0]  # noqa: E731
    assert method(checks[0]) == method(checks[1])  # the same algorithm and cost


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\t/evil.example",
        "/%09/evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "/ok\nSet-Cookie: x=1",
        "javascript:alert(1)",
    ],
)
def test_after_sign_in_only_a_local_path_is_followed(app, target):
    make_user("wanderer", token=False)
    client = isolated_client(app)
    client.get("/login")
    r = client.post(
        "/login",
        query_string={"next": target},
        data={"username": "wanderer", "password": PASSWORD, "csrf_token": csrf_of(client)},
    )
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location == "/", location  # the user's home, not the offered target


def test_a_local_next_is_followed(app):
    make_user("homebody", token=False)
    client = isolated_client(app)
    client.get("/login")
    r = client.post(
        "/login",
        query_string={"next": "/wallet"},
        data={"username": "homebody", "password": PASSWORD, "csrf_token": csrf_of(client)},
    )
    assert r.headers["Location"].endswith("/wallet")


def test_sign_ins_that_succeed_do_not_count_against_a_shared_address(app):
    """Many people may sign in from one address (an office, a NAT): only failures add up."""
    people = [make_user(f"office{n}", token=False) for n in range(3)]
    limit = app.config["LOGIN_ATTEMPTS_PER_WINDOW"]
    for n in range(limit * 5 + 5):
        client = isolated_client(app)
        r = sign_in(client, people[n % 3].username, PASSWORD)
        assert r.status_code == 302, n


# ---------------------------------------------------------------- F4: sign-out


def copy_of(client, app):
    """Another client holding exactly the cookies `client` holds now (a stolen copy)."""
    thief = isolated_client(app)
    for cookie in client._cookies.values():
        thief.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    return thief


def test_signing_out_closes_the_sign_in_for_every_copy_of_the_cookie(app):
    asha = make_user("asha", token=False)
    browser = isolated_client(app)
    _, token = login(browser, asha)
    thief = copy_of(browser, app)
    assert thief.get("/api/me").status_code == 200  # the copy works while signed in
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302

    assert thief.get("/api/me").status_code == 401
    assert thief.get("/wallet").status_code == 302  # to the sign-in page
    assert browser.get("/api/me").status_code == 401
    # Signing in again opens a new sign-in; the old copy stays closed.
    login(browser, asha)
    assert browser.get("/api/me").status_code == 200
    assert thief.get("/api/me").status_code == 401


def test_signing_out_one_browser_leaves_the_others_signed_in(app):
    asha = make_user("asha", token=False)
    laptop, phone = isolated_client(app), isolated_client(app)
    _, token = login(laptop, asha)
    login(phone, asha)
    laptop.post("/logout", data={"csrf_token": token})
    assert (laptop.get("/api/me").status_code, phone.get("/api/me").status_code) == (401, 200)


def test_signing_in_replaces_the_csrf_token(app):
    asha = make_user("asha", token=False)
    browser = isolated_client(app)
    browser.get("/login")
    before = csrf_of(browser)
    _, after = login(browser, asha)
    assert after != before
    # A token seen before the sign-in (say, planted on a shared machine) no longer works.
    stale = browser.post("/wallet/recharge", data={"amount": "100", "csrf_token": before})
    assert stale.status_code == 400 and "CSRF token" in stale.get_data(as_text=True)
    assert browser.get("/api/wallet").get_json()["balancePaise"] == 0
