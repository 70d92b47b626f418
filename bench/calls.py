"""Count the Python and C calls of one end and one chat message, in process (no sockets).

    .venv/bin/python bench/calls.py [--sessions N]

A count that does not drift with the machine's speed: on a noisy VM a 5 % change in CPU
time is lost in the noise, a change in calls is not. N live sessions are made through the
domain on a fresh SQLite database (migrated by `flask init-db`, one cheap password hash
for all), each gets one chat message and then is ended by its user, with a profile hook
(`sys.setprofile`) counting every call and C call; the first few of each warm the caches
(compiled statements, account ids) and are not counted. Prints the calls per operation.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from gevent import monkey  # noqa: E402

monkey.patch_all()

WARM = 5


class Counter:
    """A profile hook that counts calls (Python and C) while it is set."""

    def __init__(self):
        self.calls = 0

    def __call__(self, _frame, event, _arg) -> None:
        if event in ("call", "c_call"):
            self.calls += 1

    def count(self, operation, items) -> float:
        """Run `operation` on each item under the hook; the mean calls per item."""
        self.calls = 0
        sys.setprofile(self)
        try:
            for item in items:
                operation(*item)
        finally:
            sys.setprofile(None)
        return self.calls / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100, help="counted (default 100)")
    sessions = parser.parse_args().sessions

    import werkzeug.security

    from consult import accounts

    def cheap_hash(password):  # seeding, not what is counted
        return werkzeug.security.generate_password_hash(password, method="pbkdf2:sha256:1")

    accounts.generate_password_hash = cheap_hash

    from consult import chat, consultations
    from consult.accounts import Caller
    from consult.clock import utcnow
    from consult.db import db
    from helpers import inprocess
    from helpers.databases import in_process_app

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/consult.db"
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "init-db"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            env={**os.environ, "DATABASE_URL": url},
        )
        app = in_process_app(url)
        with app.app_context():
            services = inprocess.services()
            astrologer = inprocess.make_astrologer("astrologer", token=False)
            live = []
            for n in range(WARM + sessions):
                user = inprocess.make_user(f"user{n}", balance=100_000, token=False)
                live.append((Caller(user.id, "user"), inprocess.live_session(user, astrologer)))
            db.session.remove()

            def message(caller, session_id):
                chat.post_message(caller, session_id, "Namaste", at=utcnow(), hub=services.hub)
                db.session.remove()

            def end(caller, session_id):
                consultations.end_for_caller(
                    caller, session_id, at=utcnow(), hub=services.hub, policy=services.policy
                )
                db.session.remove()

            counter = Counter()
            counter.count(message, live[:WARM])
            per_message = counter.count(message, live[WARM:])
            counter.count(end, live[:WARM])
            per_end = counter.count(end, live[WARM:])
    print(f"calls per chat message {per_message:.0f}, per end {per_end:.0f} ({sessions} each)")


if __name__ == "__main__":
    main()
