"""What the tests share, by what it helps with (every level imports `from helpers.X import ...`):

- `server`: a real app server subprocess and a program's view of it (Api, accounts,
  a batch of astrologers, a browser's cookie jar);
- `sockets`: socket clients, and `delivered`, which waits until a socket holds every frame
  the server owes it (before counting frames "exactly once");
- `books`: the one books check, `assert_books_balance` (the project's own ledger audit),
  in process or against a server's database, and counts read from that database;
- `inprocess`: people, sessions and a per-request Flask client for in-process tests;
- `hub`: `FakeHub`, the one fake of `consult.realtime.Hub`;
- `databases`: SQLite and PostgreSQL databases for a test, and the test app's config;
- `browser`: Playwright helpers (contexts signed in, money read off the page, axe-core,
  the console watch every browser test ends with);
- `contract`: the field sets the contract names, and answers checked against
  consult/openapi.json; `hostile`: chat texts that try to become markup;
- `analytics`: the world of ended sessions the analytics tests count, by the API and on the page.
"""

import os

# The one password of every account a test makes, in process or through a server.
PASSWORD = "test-password"
IN_CI = os.environ.get("CI") == "true"


def require(available: bool, reason: str) -> None:
    """Skip when a real dependency is missing, except in CI, where a skip is a failure."""
    import pytest

    if available:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must run)")
    pytest.skip(reason)
