"""The one books check, the project's own reconciliation (`consult.ledger_audit.check()`),
in process or against a server's database; and counts read straight from that database."""

import threading

_apps: dict[str, object] = {}
_apps_lock = threading.Lock()


def books_app(database_url: str):
    """An in-process app on the same database as a server subprocess: only for reading it.

    Nothing here serves requests or starts a scheduler; it exists to run `ledger_audit.check`
    against the very database the server writes (SQLite WAL lets both read and write at once).
    """
    with _apps_lock:
        if database_url not in _apps:
            from consult import create_app

            _apps[database_url] = create_app(
                {"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "books"}
            )
        return _apps[database_url]


def _url(target) -> str:
    """A server's database URL, or the URL itself."""
    return getattr(target, "database_url", target)


def assert_books_balance(target=None):
    """Reconcile the books and fail naming every broken invariant; return the report.

    `target` is a server (or a database URL) whose database to check while it runs; without
    one, the in-process test app's (inside its app context). The reconciliation reads in
    one snapshot, after ending the caller's open read transaction.
    """
    from consult import ledger_audit

    if target is None:
        report = ledger_audit.check()
    else:
        with books_app(_url(target)).app_context():
            report = ledger_audit.check()
    assert report.ok, "the reconciliation found problems:\n" + "\n".join(
        str(p) for p in report.problems
    )
    return report


def query(target, sql: str, **params) -> list:
    """Read rows straight from a server's database (for counts the API does not expose)."""
    from sqlalchemy import text

    from consult.db import db

    with books_app(_url(target)).app_context():
        try:
            return [tuple(row) for row in db.session.execute(text(sql), params)]
        finally:
            db.session.rollback()


def settlements_of(target, session_id: int) -> int:
    [(count,)] = query(
        target, "SELECT count(*) FROM transfers WHERE consultation_id = :id", id=session_id
    )
    return count


def ended_events_of(target, session_id: int) -> int:
    [(count,)] = query(
        target,
        "SELECT count(*) FROM session_events WHERE consultation_id = :id AND kind = 'ended'",
        id=session_id,
    )
    return count
