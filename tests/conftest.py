"""What every level shares: the backends, the databases, and cheap password hashing.

Tests come in three levels, each in its folder with its own conftest: `unit` (pure rules,
no database), `integration` (the domain, the API and the pages in process, on a real
database) and `e2e` (a real server subprocess, sockets, Chromium). Their helpers are in
`helpers/`.

Every test that takes a database runs twice, on SQLite and on PostgreSQL (browser tests
on SQLite only: they test pages, not storage). PostgreSQL gives each test, or each module's
server, a schema of its own on the local server. A test that needs PostgreSQL, Redis or
Chromium skips without it, and fails instead when CI=true (`helpers.require`).
"""

import pytest

from helpers import require
from helpers.databases import (
    POSTGRES_URL,
    REDIS_URL,
    in_process_app,
    postgres_schema,
)

BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        marks = metafunc.definition.get_closest_marker
        only_sqlite = marks("browser") is not None or marks("sqlite_only") is not None
        metafunc.parametrize("backend", ["sqlite"] if only_sqlite else BACKENDS, scope="module")


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


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory):
    """A SQLite file built by the migrations once; each test gets a copy of it."""
    from consult import create_schema

    path = tmp_path_factory.mktemp("template") / "consult.db"
    app = in_process_app(f"sqlite:///{path}")
    create_schema(app)
    with app.app_context():
        from consult.db import db

        db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def migrated_postgres(request):
    """One migrated schema for the in-process tests; each test starts from empty tables."""
    with postgres_schema(request.getfixturevalue("postgres")) as url:
        from consult import create_schema

        create_schema(in_process_app(url))
        yield url


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Accounts made in process (tests, and e2e tests seeding a server's database) hash
    passwords in the production format at a trivial cost."""
    from werkzeug.security import generate_password_hash

    from consult import accounts

    monkeypatch.setattr(
        accounts,
        "generate_password_hash",
        lambda password: generate_password_hash(password, method="pbkdf2:sha256:1"),
    )
