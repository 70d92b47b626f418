"""Seed a benchmark database quickly, through the app's own domain (for `bench/scale`).

    .venv/bin/python bench/seed.py people --users N --astrologers K --out DIR
    .venv/bin/python bench/seed.py sessions --people DIR --count N [--ending K --window S]

`people` (before the server starts): N users and K astrologers with one password hash
shared by all (signing up over HTTP costs scrypt per user, minutes for thousands), their
wallet or earnings accounts, and a bearer token each. Writes DIR/users.jsonl and
DIR/astrologers.jsonl ({"id", "username", "password", "token", "role"}: the shared
loadgen reads them as they are).

`sessions` (while the server runs, its sockets already open): for each user a real
recharge (`wallet.recharge`: a ledger transfer from external payments, so `audit-ledger`
reconciles), a request and an accept (`consultations.request_consultation` and `accept`),
spread round-robin over the astrologers. The accept runs in this process, whose hub
cannot see the server's sockets, so it is given a hub that reports every party present:
the parties *are* connected to the server (bench/scale opens their sockets first), and
without that the accept would pause them all and the disconnect grace would end them.
Funds: hours for most sessions; with `--ending K`, the last K users get just enough for
their funds to run out at staggered moments over `--window` seconds, starting once every
session is live (`--lead` seconds after the seeding of the ending group began).
Prints one JSON line: {"sessions", "seconds", "endsFrom", "endsTo"} (UNIX times).

SQLite commits of this process skip the fsync (`PRAGMA synchronous=OFF` on its own
connections): seeding is not what is measured, and the server keeps its own settings.
"""

import argparse
import json
import secrets
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from consult import consultations, create_app, ledger, wallet  # noqa: E402
from consult.accounts import ApiToken, User, _hash  # noqa: E402
from consult.clock import utcnow  # noqa: E402
from consult.db import db, write_transaction  # noqa: E402
from consult.services import services_of  # noqa: E402

PASSWORD = "bench-pass-1"
RATE = 6000  # paise per minute: one rupee a second, as the shared loadgen's astrologers
BATCH = 500  # rows per transaction when seeding people


class EveryoneHere:
    """A hub for a process that serves no sockets, whose parties are connected elsewhere."""

    def publish(self, user_ids, event) -> None:
        pass

    def broadcast(self, event, topic) -> None:
        pass

    def online(self, user_id) -> bool:
        return True

    def gone_since(self, user_id):
        return None

    def gone_among(self, user_ids) -> dict:
        return {}


def app_without_fsync():
    app = create_app()
    with app.app_context():
        if db.engine.dialect.name == "sqlite":

            @event.listens_for(db.engine, "connect")
            def _no_fsync(connection, _record):
                connection.execute("PRAGMA synchronous=OFF")

            db.engine.dispose()  # reconnect with the pragma
    return app


def make_people(role: str, count: int, prefix: str, password_hash: str) -> list[dict]:
    """Create `count` accounts of a role in batches; each gets its ledger account and a token."""
    kind = ledger.USER_WALLET if role == "user" else ledger.ASTROLOGER_EARNINGS
    now, made = utcnow(), []
    for start in range(0, count, BATCH):
        with write_transaction():
            people = [
                User(
                    username=f"{prefix}{i}",
                    display_name=f"{prefix}{i}",
                    password_hash=password_hash,
                    role=role,
                    rate_paise_per_minute=RATE if role == "astrologer" else None,
                    created_at=now,
                )
                for i in range(start, min(count, start + BATCH))
            ]
            db.session.add_all(people)
            db.session.flush()
            for person in people:
                db.session.add(ledger.Account(kind=kind, owner_id=person.id, balance_paise=0))
                token = secrets.token_urlsafe(32)
                db.session.add(
                    ApiToken(
                        token_hash=_hash(token),
                        user_id=person.id,
                        created_at=now,
                        expires_at=now + timedelta(days=30),
                    )
                )
                made.append(
                    {"id": person.id, "username": person.username, "password": PASSWORD}
                    | {"token": token, "role": role}
                )
    return made


def people(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = app_without_fsync()
    prefix = args.prefix or f"b{secrets.token_hex(2)}"
    with app.app_context():
        shared = generate_password_hash(PASSWORD)  # one scrypt for everybody
        for role, count, name in (
            ("astrologer", args.astrologers, "astrologers"),
            ("user", args.users, "users"),
        ):
            rows = make_people(role, count, f"{prefix}{role[0]}", shared)
            (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        # The accounts every recharge and settlement names, made once, before the server runs.
        with write_transaction():
            ledger.account_id(ledger.EXTERNAL_PAYMENTS)
            ledger.account_id(ledger.PLATFORM_REVENUE)
    print(json.dumps({"users": args.users, "astrologers": args.astrologers}))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def start_session(app, user_id: int, astrologer_id: int, funds: int) -> None:
    """A real recharge, request and accept: what the REST API would do for this pair."""
    services, hub = services_of(app), EveryoneHere()
    policy = services.settings
    wallet.recharge(user_id, funds, at=utcnow(), provider=services.payments, hub=hub)
    user = db.session.get(User, user_id)
    session = consultations.request_consultation(
        user, astrologer_id, at=utcnow(), hub=hub, policy=policy
    )
    astrologer = db.session.get(User, astrologer_id)
    consultations.accept(astrologer, session.id, at=utcnow(), hub=hub)
    db.session.remove()


def sessions(args) -> None:
    folder = Path(args.people)
    users = read_jsonl(folder / "users.jsonl")[: args.count]
    astrologers = read_jsonl(folder / "astrologers.jsonl")
    ending = min(args.ending, len(users))
    long_funds = RATE * 60 * 10  # ten hours at one rupee a second
    app = app_without_fsync()
    shortest = services_of(app).settings.min_session_seconds  # a request needs this much
    began, ends = time.time(), []
    with app.app_context():
        lasting = len(users) - ending
        for i, user in enumerate(users[:lasting]):
            start_session(app, user["id"], astrologers[i % len(astrologers)]["id"], long_funds)
        # The ending group: each one's funds run out at its own moment of the window.
        first_end = time.time() + args.lead
        for j, user in enumerate(users[lasting:]):
            due = first_end + j * args.window / max(1, ending)
            seconds = max(shortest, round(due - time.time()))
            astrologer = astrologers[(lasting + j) % len(astrologers)]["id"]
            start_session(app, user["id"], astrologer, seconds * RATE // 60)
            ends.append(time.time() + seconds)
    print(
        json.dumps(
            {
                "sessions": len(users),
                "seconds": round(time.time() - began, 1),
                "endsFrom": min(ends, default=None),
                "endsTo": max(ends, default=None),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("people", help="users and astrologers with tokens (server stopped)")
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--astrologers", type=int, default=50)
    p.add_argument("--prefix", help="username prefix (default: random)")
    p.add_argument("--out", required=True, help="folder for users.jsonl and astrologers.jsonl")
    s = sub.add_parser("sessions", help="funded, accepted sessions (server running)")
    s.add_argument("--people", required=True, help="the folder `people` wrote")
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--ending", type=int, default=0, help="sessions whose funds run out")
    s.add_argument("--window", type=float, default=60, help="seconds the ends spread over")
    s.add_argument("--lead", type=float, default=20, help="seconds to the first funded end")
    args = parser.parse_args()
    people(args) if args.command == "people" else sessions(args)


if __name__ == "__main__":
    main()
