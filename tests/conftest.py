"""Fixtures: an in-process app for domain and HTTP tests, real servers for socket tests.

Every test that takes a database runs twice, on SQLite and on PostgreSQL (browser tests
on SQLite only: they test pages, not storage). PostgreSQL gives each test, or each module's
server, a schema of its own on the local server.
"""

import os
import shutil
import uuid
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from helpers_inprocess import TEMPLATE_CACHE
from support import Server

IN_CI = os.environ.get("CI") == "true"
BACKENDS = ("sqlite", "postgresql")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        browser = metafunc.definition.get_closest_marker("browser") is not None
        metafunc.parametrize("backend", ["sqlite"] if browser else BACKENDS, scope="module")


def require(available: bool, reason: str) -> None:
    """Skip when a real dependency is missing, except in CI, where a skip is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must run)")
    pytest.skip(reason)


# The make-good refunds a silent astrologer's session and an early walk-out; the tests of
# the settlement's own arithmetic turn it off, and the make-good's tests turn it on.
NO_MAKE_GOOD = {"MAKE_GOOD_SECONDS": 0, "MAKE_GOOD_SILENT_ASTROLOGER": "false"}


def _in_process_app(database_url):
    from consult import create_app

    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test",
            "MIN_SESSION_SECONDS": 60,
            **NO_MAKE_GOOD,
        }
    )


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory):
    """A SQLite file built by the migrations once; each test gets a copy of it."""
    from consult import create_schema

    path = tmp_path_factory.mktemp("template") / "consult.db"
    app = _in_process_app(f"sqlite:///{path}")
    create_schema(app)
    with app.app_context():
        from consult.db import db

        db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres():
    """The local PostgreSQL's URL; skip without it (fail in CI)."""
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        require(False, f"PostgreSQL is not reachable at {POSTGRES_URL}: {error}")
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_url():
    """The local Redis's URL; skip without it (fail in CI)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        require(False, f"Redis is not reachable at {REDIS_URL}: {error}")
    return REDIS_URL


@contextmanager
def postgres_schema(admin_url: str):
    """A fresh schema, dropped afterwards; the URL makes it the connection's search path."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{admin_url}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def database(backend: str, folder, request):
    """A migrated-or-empty database of the backend: a SQLite file or a PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'consult.db'}"
    else:
        with postgres_schema(request.getfixturevalue("postgres")) as url:
            yield url


@pytest.fixture(scope="session")
def migrated_postgres(request):
    """One migrated schema for the in-process tests; each test starts from empty tables."""
    with postgres_schema(request.getfixturevalue("postgres")) as url:
        from consult import create_schema

        create_schema(_in_process_app(url))
        yield url


def _empty_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    from consult.db import db

    tables = ", ".join(t.name for t in db.metadata.sorted_tables)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def app(backend, tmp_path, request):
    """An in-process app on a migrated, empty database of the backend, context pushed."""
    if backend == "sqlite":  # copying a migrated file is faster than migrating
        shutil.copy(request.getfixturevalue("migrated_sqlite"), tmp_path / "consult.db")
        url = f"sqlite:///{tmp_path / 'consult.db'}"
    else:
        url = request.getfixturevalue("migrated_postgres")
        _empty_postgres(url)
    app = _in_process_app(url)
    app.jinja_env.bytecode_cache = TEMPLATE_CACHE
    with app.app_context():
        if backend != "sqlite":  # the truncation took the platform's own accounts too
            from consult import ledger
            from consult.db import db

            for kind in (ledger.PLATFORM_REVENUE, ledger.EXTERNAL_PAYMENTS):
                ledger.open_account(kind)
            db.session.commit()
        yield app
        from consult.db import db

        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


# Fast clocks so every end reason can be reached in seconds.
FAST = {
    **NO_MAKE_GOOD,
    "DISCONNECT_GRACE_SECONDS": 2,
    "REQUEST_TIMEOUT_SECONDS": 3,
    "LOW_BALANCE_WARNING_SECONDS": 2,
    "MIN_SESSION_SECONDS": 1,
    "SCHEDULER_INTERVAL_SECONDS": 0.1,
}


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory, request):
    """One real server per test module (and backend); tests use fresh users."""
    with database(backend, tmp_path_factory.mktemp("server"), request) as url:
        srv = Server(url, dict(FAST)).start()
        yield srv
        srv.stop()


@pytest.fixture
def fresh_server(backend, tmp_path, request):
    """A server of one's own on a fresh database, for tests that kill or restart it.

    Calling it again starts another instance on the same database."""
    servers = []
    with database(backend, tmp_path, request) as url:

        def start(**settings):
            srv = Server(url, {**FAST, **settings}).start()
            servers.append(srv)
            return srv

        yield start
        for srv in servers:
            srv.stop(kill=True)


@pytest.fixture(scope="session")
def chromium_path():
    path = shutil.which("chromium") or "/usr/bin/chromium"
    require(os.path.exists(path), "Chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(chromium_path):
    """pytest-playwright launches Debian's Chromium: Playwright's own download fails here."""
    return {
        "executable_path": chromium_path,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """In-process tests hash passwords in the production format at a trivial cost."""
    from werkzeug.security import generate_password_hash

    from consult import accounts

    monkeypatch.setattr(
        accounts,
        "generate_password_hash",
        lambda password: generate_password_hash(password, method="pbkdf2:sha256:1"),
    )
