"""Headers and cookies: a strict Content-Security-Policy on every kind of answer (and pages
that need nothing it refuses), and a session cookie that is HttpOnly, SameSite=Lax, and
Secure when configured."""

import json
import re

from helpers.inprocess import (
    isolated_client,
    login,
    make_user,
)

# ---------------------------------------------------------------- headers and cookies


def csp_directives(response) -> dict[str, list[str]]:
    policy = response.headers.get("Content-Security-Policy")
    assert policy, f"no Content-Security-Policy on {response.request.path}"
    directives = {}
    for part in policy.split(";"):
        if part.strip():
            name, *values = part.split()
            directives[name] = values
    return directives


def test_every_kind_of_answer_carries_a_strict_content_security_policy(app, client):
    user = make_user("csp", balance=10_000)
    answers = [
        client.get("/login"),
        client.get("/api/astrologers"),
        client.get("/no/such/page"),
        client.get("/api/no/such"),
        client.post("/login", data={}),  # a CSRF refusal
        client.get("/static/app.js"),
    ]
    login(client, user)
    answers += [client.get("/"), client.get("/wallet"), client.get("/sessions")]
    for response in answers:
        csp = csp_directives(response)
        scripts = csp.get("script-src", csp.get("default-src"))
        assert scripts, response.request.path
        assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
        assert not any(v.startswith(("http:", "https:", "*", "data:")) for v in scripts)
        assert "'unsafe-eval'" not in " ".join(sum(csp.values(), []))
        assert csp.get("object-src") == ["'none'"]
        assert csp.get("frame-ancestors") == ["'none'"]
        assert response.headers.get("X-Content-Type-Options") == "nosniff"


def test_htmx_is_told_to_add_no_inline_style_and_app_css_styles_its_indicator(app, client):
    html = client.get("/login").get_data(as_text=True)
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", html)
    assert meta, "no htmx-config"
    assert json.loads(meta.group(1))["includeIndicatorStyles"] is False  # style-src 'self'
    css = client.get("/static/app.css").get_data(as_text=True)
    assert ".htmx-request .htmx-indicator" in css
    assert 'style="' not in html and "<style" not in html


def test_money_pages_and_api_answers_are_never_stored_but_static_files_may_be(app, client):
    user = make_user("nostore", balance=10_000)
    login(client, user)
    for path in ("/wallet", "/sessions", "/", "/api/wallet", "/api/me", "/login"):
        assert client.get(path).headers.get("Cache-Control") == "no-store", path
    assert "no-store" not in client.get("/static/app.js").headers.get("Cache-Control", "")


def session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, "the sign-in set no session cookie"
    return cookies[-1]


def cookie_flags(cookie: str) -> set[str]:
    return {part.strip().lower() for part in cookie.split(";")[1:]}


def test_the_session_cookie_is_httponly_and_samesite_lax(app, client):
    user = make_user("cookie", balance=0)
    response, _ = login(client, user)
    flags = cookie_flags(session_cookie(response))
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "secure" not in flags  # plain HTTP by default: a Secure cookie would never return


def test_the_session_cookie_is_secure_when_configured(app, monkeypatch):
    from consult import create_app

    # A deployment reads its settings from the environment (a test app would ignore them).
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "true")
    monkeypatch.setenv("DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.setenv("SECRET_KEY", "test")
    secure_app = create_app()
    secure_app.config["TESTING"] = True
    assert secure_app.config["SESSION_COOKIE_SECURE"] is True
    user = make_user("securecookie", balance=0)
    browser = isolated_client(secure_app)
    response, _ = login(browser, user)
    flags = cookie_flags(session_cookie(response))
    assert {"secure", "httponly", "samesite=lax"} <= flags
