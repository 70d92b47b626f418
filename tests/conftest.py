"""Fixtures: an in-process app for domain and HTTP tests, real servers for socket tests."""

import os
import shutil

import pytest
from support import Server

IN_CI = os.environ.get("CI") == "true"


def require(available: bool, reason: str) -> None:
    """Skip when a real dependency is missing, except in CI, where a skip is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must run)")
    pytest.skip(reason)


def _in_process_app(database_url):
    from consult import create_app

    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test",
            "MIN_SESSION_SECONDS": 60,
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


@pytest.fixture
def app(tmp_path, migrated_sqlite):
    path = tmp_path / "consult.db"
    shutil.copy(migrated_sqlite, path)
    app = _in_process_app(f"sqlite:///{path}")
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


# Fast clocks so every end reason can be reached in seconds.
FAST = {
    "DISCONNECT_GRACE_SECONDS": 2,
    "REQUEST_TIMEOUT_SECONDS": 3,
    "LOW_BALANCE_WARNING_SECONDS": 2,
    "MIN_SESSION_SECONDS": 1,
    "SCHEDULER_INTERVAL_SECONDS": 0.1,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("server") / "consult.db"
    srv = Server(f"sqlite:///{path}", dict(FAST)).start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path):
    """A server of one's own, for tests that kill or restart it."""
    servers = []

    def start(**settings):
        srv = Server(f"sqlite:///{tmp_path / 'consult.db'}", {**FAST, **settings}).start()
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
