"""In-process tests: people and sessions made through the domain, a Flask client that
serves each request in an app context of its own, and signing in through the login form."""

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask.testing import FlaskClient
from jinja2 import BytecodeCache
from sqlalchemy import func, select

from consult import accounts, consultations, ledger, wallet
from consult.accounts import User
from consult.clock import utcnow
from consult.db import db
from consult.realtime import Event
from helpers import PASSWORD
from helpers.contract import conforming

# The in-process fixtures' astrologer's rate (conftest's `guru`): ₹60 a minute, a rupee a second.
RATE = 6000


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in an app context of its own, as in production.

    The `app` fixture keeps one app context pushed for the whole test, and Flask reuses a
    pushed context for every request: `g` (where Flask-Login caches the signed-in user) and
    the database session would then leak from one request into the next.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


class SharedBytecodeCache(BytecodeCache):
    """Compiled templates kept across the test's apps (keyed by name and source checksum)."""

    def __init__(self):
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self._code:
            bucket.bytecode_from_string(self._code[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CACHE = SharedBytecodeCache()


def isolated_client(app) -> IsolatedClient:
    """An isolated client for `app`, which compiles each template once per test run."""
    app.test_client_class = IsolatedClient
    app.jinja_env.bytecode_cache = TEMPLATE_CACHE
    return app.test_client()


@dataclass
class Person:
    id: int
    username: str
    name: str
    role: str
    token: str | None = None

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


def fresh() -> None:
    """End the test's own read transaction, so it sees what requests have committed since."""
    db.session.rollback()


def _person(user: User, token: bool) -> Person:
    person = Person(user.id, user.username, user.display_name, user.role)
    if token:
        person.token = accounts.issue_token(user, now=utcnow(), ttl_seconds=3600)
    return person


def make_user(username: str, balance: int = 0, token: bool = True) -> Person:
    fresh()
    user = accounts.create_user(username, PASSWORD, role="user", now=utcnow())
    person = _person(user, token)
    if balance:
        add_money(person.id, balance)
    return person


def make_astrologer(
    username: str, rate: int = 6000, name: str | None = None, token: bool = True
) -> Person:
    fresh()
    user = accounts.create_user(
        username,
        PASSWORD,
        role="astrologer",
        now=utcnow(),
        display_name=name,
        rate_paise_per_minute=rate,
    )
    return _person(user, token)


def make_admin(username: str, token: bool = True) -> Person:
    fresh()
    return _person(accounts.create_user(username, PASSWORD, role="admin", now=utcnow()), token)


def services():
    from flask import current_app

    return current_app.extensions["consult"]


def add_money(user_id: int, amount: int, at: datetime | None = None) -> None:
    fresh()
    s = services()
    wallet.recharge(user_id, amount, at=at or utcnow(), provider=s.payments, hub=s.hub)


def user_obj(person: Person) -> User:
    fresh()
    return db.session.get(User, person.id)


def balance_of(person: Person) -> int:
    fresh()
    return consultations.wallet_balance(person.id)


def request_session(user: Person, astrologer: Person, at: datetime | None = None) -> int:
    """A requested consultation, made through the domain; returns its id."""
    s = services()
    c = consultations.request_consultation(
        user_obj(user), astrologer.id, at=at or utcnow(), hub=s.hub, policy=s.policy
    )
    return c.id


def be_present(*user_ids: int, hub=None) -> None:
    """Give each person without one a live connection (on `hub`, default the app's), as
    their open page would: billing runs only while both parties are connected
    (docs/websocket.md, "Presence and billing")."""
    hub = hub or services().hub
    for user_id in user_ids:
        if not hub.online(user_id):
            hub.attach(Listener(user_id))


def accept_session(
    astrologer: Person, session_id: int, at: datetime | None = None, present: bool = True
) -> None:
    """The astrologer accepts; with `present`, both parties are connected first."""
    if present:
        fresh()
        user_id = db.session.get(consultations.Consultation, session_id).user_id
        be_present(astrologer.id, user_id)
    consultations.accept(user_obj(astrologer), session_id, at=at or utcnow(), hub=services().hub)


def live_session(
    user: Person, astrologer: Person, started_at: datetime | None = None, present: bool = True
) -> int:
    """An active consultation whose billing started at `started_at` (default: now), with
    both parties connected (unless not `present`)."""
    at = started_at or utcnow()
    session_id = request_session(user, astrologer, at=at)
    accept_session(astrologer, session_id, at=at, present=present)
    return session_id


def started_ago(user: Person, astrologer: Person, seconds: int) -> int:
    """A live session whose billing started `seconds` ago."""
    return live_session(user, astrologer, started_at=utcnow() - timedelta(seconds=seconds))


def end_as(person: Person, session_id: int, at: datetime) -> None:
    s = services()
    consultations.end_by_party(user_obj(person), session_id, at=at, hub=s.hub, policy=s.policy)


def ended_session(
    user: Person, astrologer: Person, seconds: int = 100, at: datetime | None = None
) -> int:
    """A session that billed `seconds` (a rupee a second at ₹60 a minute), ended by its user
    5 seconds before `at` (default: now)."""
    started = (at or utcnow()) - timedelta(seconds=seconds + 5)
    session_id = live_session(user, astrologer, started_at=started)
    end_as(user, session_id, started + timedelta(seconds=seconds))
    return session_id


def pair_with_session(state: str) -> tuple[Person, Person, int]:
    """A user (with ₹1,000) and an astrologer of their own, and a session between them
    that is "requested", "active" or "ended"."""
    n = uuid.uuid4().hex[:10]
    user, astrologer = make_user(f"u{n}", balance=100_000), make_astrologer(f"a{n}")
    if state == "requested":
        return user, astrologer, request_session(user, astrologer)
    session_id = live_session(user, astrologer)
    if state == "ended":
        end_as(user, session_id, utcnow())
    return user, astrologer, session_id


def session_row(session_id: int):
    fresh()
    return db.session.get(consultations.Consultation, session_id)


def settlement_count() -> int:
    fresh()
    return db.session.scalar(
        select(func.count())
        .select_from(ledger.Transfer)
        .where(ledger.Transfer.kind == "settlement")
    )


@dataclass(eq=False)
class Listener:
    """A fake hub connection: records every event delivered to one user."""

    user_id: int
    events: list[Event] = field(default_factory=list)
    topics: frozenset = frozenset({"presence"})

    def deliver(self, event: Event) -> None:
        self.events.append(event)

    def named(self, name: str) -> list[dict]:
        return [e.data for e in self.events if e.name == name]


def listen(person: Person) -> Listener:
    listener = Listener(person.id)
    services().hub.attach(listener)
    return listener


HX = {"HX-Request": "true"}  # the header htmx sends: the request wants a fragment


def text_of(response) -> str:
    return response.get_data(as_text=True)


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(client: FlaskClient) -> str:
    """The CSRF token of the client's browser session, as its pages carry it: the sign-in
    form, or (signed in) the sign-out form on the page /login sends it to."""
    page = client.get("/login", follow_redirects=True).get_data(as_text=True)
    match = CSRF_INPUT.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client: FlaskClient, person: Person):
    """Sign in through the login form; return the response and the session's CSRF token
    (a new one: signing in replaces it, so the home page it lands on is read first)."""
    client.get("/login")
    response = client.post(
        "/login",
        data={"username": person.username, "password": PASSWORD, "csrf_token": csrf_of(client)},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    client.get(response.headers["Location"])
    return response, csrf_of(client)


def whoami(client: FlaskClient) -> tuple:
    """Who the client is signed in as: the status and body of GET /api/me."""
    r = client.get("/api/me")
    return r.status_code, r.get_json()


def field_text(html: str, name: str) -> str:
    """The text of the element marked data-field="name" (the first one)."""
    match = re.search(rf'data-field="{name}">([^<]*)<', html)
    assert match, f"no data-field={name} in the page"
    return match.group(1)


def error_of(response) -> str:
    """The text of a JSON error answer ({"error": "..."}), which must be there."""
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str), response.data
    if response.request.path.startswith("/api/"):
        conforming(response)  # a status the document declares, in its error shape
    return body["error"]
