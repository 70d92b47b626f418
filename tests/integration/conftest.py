"""In-process tests: an app on a migrated, empty database of the backend, its context
pushed, and a client that serves each request in an app context of its own."""

import shutil

import pytest

from helpers.databases import empty_postgres, in_process_app
from helpers.inprocess import (
    RATE,
    TEMPLATE_CACHE,
    csrf_of,
    isolated_client,
    login,
    make_admin,
    make_astrologer,
    make_user,
)


@pytest.fixture
def app(backend, tmp_path, request):
    """An in-process app on a migrated, empty database of the backend, context pushed."""
    if backend == "sqlite":  # copying a migrated file is faster than migrating
        shutil.copy(request.getfixturevalue("migrated_sqlite"), tmp_path / "consult.db")
        url = f"sqlite:///{tmp_path / 'consult.db'}"
    else:
        url = request.getfixturevalue("migrated_postgres")
        empty_postgres(url)
    app = in_process_app(url)
    app.jinja_env.bytecode_cache = TEMPLATE_CACHE
    with app.app_context():
        from consult.db import db

        if backend != "sqlite":  # the truncation took the platform's own accounts too
            from consult import ledger

            for kind in (ledger.PLATFORM_REVENUE, ledger.EXTERNAL_PAYMENTS):
                ledger.open_account(kind)
            db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    """A test client whose every request runs in an app context of its own."""
    return isolated_client(app)


@pytest.fixture
def open_browser(app):
    """Open a fresh browser: `open_browser(person)` signs in through the login form,
    `open_browser()` only opens /login; either returns (client, CSRF token)."""

    def open_as(person=None):
        client = isolated_client(app)
        if person is None:
            client.get("/login")
            return client, csrf_of(client)
        _, token = login(client, person)
        return client, token

    return open_as


@pytest.fixture
def alice(app):
    """A user with ₹1,000."""
    return make_user("alice", balance=100_000)


@pytest.fixture
def asha(app):
    """Another user with ₹1,000."""
    return make_user("asha", balance=100_000)


@pytest.fixture
def guru(app):
    """An astrologer at ₹60 a minute (6000 paise: a rupee a second)."""
    return make_astrologer("guru", rate=RATE, name="Guru Dev")


@pytest.fixture
def boss(app):
    """An admin (with an API token: `boss.auth`)."""
    return make_admin("boss")


@pytest.fixture
def admin(open_browser, boss):
    """The boss's browser, signed in through the login form: (client, CSRF token)."""
    return open_browser(boss)
