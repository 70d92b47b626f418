"""English and Hindi pages (issue 13, part 8): every page a user, an astrologer or a visitor
reads, in every state a session has, rendered in Hindi with no English word left, and in
English with no Hindi; the language chosen by the header's switch or the browser.

The admin console (/admin, its people and audit search) stays English: it is not walked.
"""

from datetime import timedelta

import pytest
from flask import request

from consult import chat, consultations, feedback
from consult.clock import utcnow
from consult.realtime import Event
from consult.web import render
from consult.web.errors import respond
from helpers.inprocess import (
    HX,
    csrf_of,
    end_as,
    fresh,
    isolated_client,
    live_session,
    login,
    make_user,
    request_session,
    services,
    text_of,
    user_obj,
)
from helpers.language import english_left, hindi_left, visible_text

# Routes no person reads: programs, operators, files, the socket.
NOT_PAGES = ("/api", "/admin", "/static", "/metrics", "/healthz", "/favicon.ico", "/ws")
HINDI_CHAT = ("नमस्ते, मेरी कुंडली के बारे में बताइए", "आपका समय अच्छा चल रहा है")
WRITTEN = (*HINDI_CHAT, "बहुत अच्छा", "पैसे ज़्यादा कटे")  # by the people, in any language


@pytest.fixture
def scene(app, asha, guru):
    """Sessions in every state a page shows: ended (chat, rating, report), live (with
    limits), and another user's request waiting on the astrologer."""
    s = services()
    started = utcnow() - timedelta(seconds=300)
    ended = live_session(asha, guru, started_at=started)
    for person, text in zip((asha, guru), HINDI_CHAT, strict=True):
        chat.post_message(
            user_obj(person), ended, text, at=started + timedelta(seconds=10), hub=s.hub
        )
    end_as(asha, ended, started + timedelta(seconds=100))
    feedback.rate(user_obj(asha), ended, 4, WRITTEN[2], at=utcnow())
    feedback.report(user_obj(asha), ended, "billing", WRITTEN[3], at=utcnow())
    live = live_session(asha, guru)
    limits = consultations.limits.parse({"maxMinutes": 30, "maxSpendPaise": 50_000}, clearing=True)
    consultations.set_limits(user_obj(asha), live, limits, at=utcnow(), hub=s.hub)
    ravi = make_user("ravi", balance=100_000)
    waiting = request_session(ravi, guru)
    fresh()
    names = {"asha", "guru", "ravi", "Guru", "Dev", "G", "a", "r"}  # and avatars
    return {"ended": ended, "live": live, "waiting": waiting, "ravi": ravi, "names": names}


def browser(app, person=None, lang="hi"):
    client = isolated_client(app)
    client.set_cookie("lang", lang)
    if person is not None:
        login(client, person)
    return client


def page_urls(app, session_ids) -> list[str]:
    """Every page's URL (each session page for each session): the walk of the url map."""
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.rule.startswith(NOT_PAGES):
            continue
        if "<int:session_id>" in rule.rule:
            urls += [rule.rule.replace("<int:session_id>", str(i)) for i in session_ids]
        else:
            assert "<" not in rule.rule, f"fill in the values of {rule.rule}"
            urls.append(rule.rule)
    return sorted(urls)


def read_everything(client, urls) -> dict[str, str]:
    """Each URL as a page and as htmx's fragment, following redirects (a visitor is sent
    to sign in, with a message)."""
    seen = {}
    for url in urls:
        for headers in ({}, HX):
            response = client.get(url, headers=headers, follow_redirects=True)
            assert response.status_code < 500, url
            seen[f"{url} {'(htmx)' if headers else ''}"] = text_of(response)
    return seen


def assert_all_hindi(pages: dict[str, str], names: set[str]) -> None:
    left = {url: english_left(html, names) for url, html in pages.items()}
    assert not {url: parts for url, parts in left.items() if parts}


def test_every_page_reads_in_hindi(app, scene, asha, guru):
    ids = (scene["ended"], scene["live"], scene["waiting"], 999_999)
    urls = page_urls(app, ids)
    assert {
        "/",
        "/wallet",
        "/dashboard",
        "/login",
        f"/sessions/{scene['live']}/end/confirm",
    } <= set(urls)
    pages = {}
    for person in (asha, guru, scene["ravi"], None):
        client = browser(app, person)
        pages |= {
            f"{person and person.username} {k}": v for k, v in read_everything(client, urls).items()
        }
    every = "\n".join(pages.values())
    # The states the walk had to reach: chat, bill, end dialog, banners, receipt, dashboard.
    for shown in (
        "सेशन ख़त्म करें?",  # the end dialog
        "लाइव बिल",  # the bill
        "सेशन ख़त्म।",  # the ended banner
        "के स्वीकार करने का इंतज़ार है",  # the waiting banner
        "रसीद",  # the receipt
        "आए हुए अनुरोध",  # the dashboard
        "यूज़र ने सीमा तय की है",  # the user's limits, as the astrologer sees them
        HINDI_CHAT[0],
        "आगे बढ़ने के लिए कृपया साइन इन करें।",  # a visitor sent to sign in
        "यह हमें नहीं मिला",  # 404
    ):
        assert shown in every, shown
    assert_all_hindi(pages, scene["names"])


def test_what_forms_answer_reads_in_hindi(app, scene, asha, guru):
    """Flashes, saved states, refusals as toasts and as pages, in Hindi too."""
    client, answers = browser(app, asha), {}
    token = csrf_of(client)
    answers["rating"] = client.post(
        f"/sessions/{scene['ended']}/rating", data={"stars": "5", "csrf_token": token}, headers=HX
    )
    answers["refused toast"] = client.post(
        f"/sessions/{scene['ended']}/messages", data={"text": "x", "csrf_token": token}, headers=HX
    )
    answers["refused page"] = client.post("/wallet/recharge", data={"amount_rupees": "100"})
    answers["limit refused"] = client.post(
        f"/sessions/{scene['live']}/limits", data={"max_minutes": "abc", "csrf_token": token}
    )
    poor = browser(app, make_user("meena", balance=100))
    answers["payment required"] = poor.post(
        "/sessions", data={"astrologer_id": str(guru.id), "csrf_token": csrf_of(poor)}
    )
    astrologer = browser(app, guru)
    answers["flash"] = astrologer.post(
        "/dashboard/availability",
        data={"status": "busy", "csrf_token": csrf_of(astrologer)},
        follow_redirects=True,
    )
    visitor = browser(app)
    answers["bad password"] = visitor.post(
        "/login", data={"username": "asha", "password": "nope-nope", "csrf_token": csrf_of(visitor)}
    )
    answers["new account"] = visitor.post(
        "/register",
        data={"username": "x", "password": "short", "csrf_token": csrf_of(visitor)},
    )
    assert [r.status_code for r in answers.values()] == [200, 409, 400, 400, 402, 200, 401, 400]
    assert "धन्यवाद" in text_of(answers["rating"])
    assert "सेव हो गया: आप व्यस्त हैं।" in text_of(answers["flash"])
    assert "सीमाएँ पूरे मिनटों में" in text_of(answers["limit refused"])
    assert "कम से कम 60 सेकंड" in text_of(answers["payment required"])
    pages = {name: text_of(r) for name, r in answers.items()}
    assert_all_hindi(pages, scene["names"] | {"meena"})


def test_throttled_and_broken_pages_read_in_hindi(app, scene):
    visitor = browser(app)
    token = csrf_of(visitor)
    form = {"username": "asha", "password": "wrong-guess", "csrf_token": token}
    statuses = [visitor.post("/login", data=form).status_code for _ in range(11)]
    assert statuses[-1] == 429
    throttled = text_of(visitor.post("/login", data=form))
    assert "थोड़ा धीरे" in throttled
    with app.test_request_context("/sessions/1", headers={"Accept-Language": "hi"}):
        broken = respond("The server encountered an internal error", 500).get_data(as_text=True)
    assert "हमारी तरफ़ कुछ गड़बड़ हो गई" in broken
    assert_all_hindi({"429": throttled, "500": broken}, scene["names"])


def test_every_page_reads_in_english_by_default(app, scene, asha, guru):
    ids = (scene["ended"], scene["live"], scene["waiting"], 999_999)
    urls = page_urls(app, ids)
    pages = {}
    for person in (asha, guru, None):
        client = isolated_client(app)  # no cookie, no Accept-Language: English
        if person is not None:
            login(client, person)
        pages |= {
            f"{person and person.username} {k}": v for k, v in read_everything(client, urls).items()
        }
    every = "\n".join(pages.values())
    for shown in (
        "End this session?",
        "Live bill",
        "Receipt",
        "Incoming requests",
        "Session ended.",
    ):
        assert shown in every, shown
    # Only the chat the fixtures wrote in Hindi, and the switch's own "हिन्दी".
    left = {url: hindi_left(html, " ".join(WRITTEN)) for url, html in pages.items()}
    assert not {url: parts for url, parts in left.items() if parts}


def test_the_browser_language_chooses_hindi(app):
    client = isolated_client(app)
    hindi = text_of(client.get("/login", headers={"Accept-Language": "hi-IN,hi;q=0.9,en;q=0.8"}))
    assert '<html lang="hi">' in hindi and "अपना खाता बनाएँ" not in hindi and "साइन इन करें" in hindi
    english = text_of(client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}))
    assert '<html lang="en">' in english and "Sign in" in english
    other = text_of(client.get("/login", headers={"Accept-Language": "fr-FR"}))
    assert '<html lang="en">' in other


def test_the_cookie_beats_the_browser_language(app):
    client = isolated_client(app)
    client.set_cookie("lang", "en")
    page = text_of(client.get("/login", headers={"Accept-Language": "hi-IN"}))
    assert '<html lang="en">' in page
    client.set_cookie("lang", "hi")
    page = text_of(client.get("/login", headers={"Accept-Language": "en-US"}))
    assert '<html lang="hi">' in page


def test_the_switch_sets_the_cookie_and_goes_back(app, asha):
    client = browser(app, asha, lang="en")
    token = csrf_of(client)
    response = client.post(
        "/language", data={"lang": "hi", "next": "/wallet?x=1", "csrf_token": token}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/wallet?x=1"
    assert "lang=hi" in response.headers["Set-Cookie"]
    assert '<html lang="hi">' in text_of(client.get("/wallet"))


def test_the_switch_needs_the_csrf_token(app):
    client = isolated_client(app)
    response = client.post("/language", data={"lang": "hi", "next": "/"})
    assert response.status_code == 400
    assert "Set-Cookie" not in response.headers or "lang=" not in response.headers["Set-Cookie"]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\t/evil.example"])
def test_the_switch_refuses_to_leave_the_site(app, target):
    client = isolated_client(app)
    client.get("/login")
    response = client.post(
        "/language", data={"lang": "hi", "next": target, "csrf_token": csrf_of(client)}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_the_page_offers_the_switch_in_each_language(app):
    page = text_of(isolated_client(app).get("/login"))
    assert 'name="lang" value="hi" lang="hi" aria-pressed="false">हिन्दी' in page
    assert 'name="lang" value="en" lang="en" aria-pressed="true">English' in page


def test_a_pushed_fragment_renders_in_each_viewers_language(app, scene, asha, guru):
    """The page socket renders per viewer, in the language of that viewer's handshake."""
    event = Event("session:ended-by-user", {"sessionId": scene["live"]})
    seen = {}
    for lang in ("hi", "en"):
        environ = {"HTTP_COOKIE": f"lang={lang}"}
        with app.test_request_context("/ws", environ_base=environ):
            assert request.cookies["lang"] == lang
            from flask_babel import force_locale

            with force_locale(lang):
                seen[lang] = render.fragments(guru.id, event)
    assert "asha ने सेशन ख़त्म किया।" in seen["hi"]
    assert "asha ended the session." in seen["en"]


def test_the_api_stays_english(app, asha, guru):
    """The JSON API's error texts are a contract: a Hindi browser gets them in English."""
    client = browser(app, asha)
    answer = client.get("/api/sessions/999999", headers={"Accept-Language": "hi", **asha.auth})
    assert answer.get_json() == {"error": consultations.SESSION_NOT_FOUND}
    assert not any("\u0900" <= ch <= "\u097f" for ch in " ".join(visible_text(text_of(answer))))
