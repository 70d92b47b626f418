"""Benchmark End Session against a real server: how fast an end reaches both parties.

    .venv/bin/python scripts/bench.py [--sessions 200] [--concurrent-enders 20] [--database-url URL]

Starts `python app.py` on a free port (SQLite in a temporary folder unless --database-url),
seeds accounts directly in the database, then for each of N live sessions with both
parties' sockets open: POST /api/sessions/<id>/end and time until the answer, and until
both sockets hold `consult:ended`. Then N parallel sessions ended at once, and one
session ended by many concurrent requests. Prints the numbers the README quotes.
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import PASSWORD  # noqa: E402  the tests' harness
from helpers.databases import ROOMY_LIMITS  # noqa: E402
from helpers.server import Api, Server  # noqa: E402


def seed(database_url: str, pairs: int, rate: int) -> list[tuple[str, str]]:
    """Create `pairs` users (funded) and astrologers in the database; return their usernames."""
    from werkzeug.security import generate_password_hash

    from consult import accounts, create_app, create_schema, wallet
    from consult.clock import utcnow

    accounts.generate_password_hash = lambda p: generate_password_hash(p, "pbkdf2:sha256:1")
    app = create_app({"DATABASE_URL": database_url})
    create_schema(app)
    services, names = app.extensions["consult"], []
    with app.app_context():
        for i in range(pairs):
            user = accounts.create_user(f"bu{i}", PASSWORD, role="user", now=utcnow())
            accounts.create_user(
                f"ba{i}", PASSWORD, role="astrologer", now=utcnow(), rate_paise_per_minute=rate
            )
            wallet.recharge(
                user.id, 1_000_000, at=utcnow(), provider=services.payments, hub=services.hub
            )
            names.append((f"bu{i}", f"ba{i}"))
    return names


def login(server: Server, username: str) -> Api:
    r = Api(server).post("/api/auth/token", {"username": username, "password": PASSWORD})
    return Api(server, r.json()["token"], r.json()["user"])


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def report(label: str, millis: list[float]) -> None:
    print(
        f"{label:<44} n={len(millis):<4} p50={pct(millis, 50):7.1f} ms  "
        f"p95={pct(millis, 95):7.1f} ms  max={max(millis):7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=200, help="sessions to end (default 200)")
    parser.add_argument("--concurrent-enders", type=int, default=20, help="default 20")
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="consult-bench-")
    url = args.database_url or f"sqlite:///{folder}/bench.db"
    started = time.perf_counter()
    names = seed(url, args.sessions, rate=2000)
    print(f"seeded {args.sessions} user/astrologer pairs in {time.perf_counter() - started:.1f} s")
    settings = {**ROOMY_LIMITS, "SCHEDULER_INTERVAL_SECONDS": 0.5, "MIN_SESSION_SECONDS": 1}
    server = Server(url, settings).start()
    try:
        pairs = [(login(server, u), login(server, a)) for u, a in names]
        sockets = [(u.socket(), a.socket()) for u, a in pairs]
        for user_ws, astro_ws in sockets:
            user_ws.wait_for("session:state")
            astro_ws.wait_for("session:state")

        def live(user: Api, astrologer: Api) -> int:
            session = user.post("/api/sessions", {"astrologerId": astrologer.id}).json()
            astrologer.post(f"/api/sessions/{session['id']}/accept")
            return session["id"]

        answer_ms, both_ms = [], []
        for (user, astrologer), (user_ws, astro_ws) in zip(pairs, sockets, strict=True):
            session_id = live(user, astrologer)
            t0 = time.perf_counter()
            assert user.post(f"/api/sessions/{session_id}/end").status_code == 200
            answer_ms.append((time.perf_counter() - t0) * 1000)
            for ws in (user_ws, astro_ws):
                ws.wait_for(
                    "consult:ended", timeout=60, where=lambda d, s=session_id: d["sessionId"] == s
                )
            both_ms.append((time.perf_counter() - t0) * 1000)
        report("end one session: HTTP answer", answer_ms)
        report("end one session: both sockets notified", both_ms)

        # Every session live at once, all ended together from parallel threads.
        ids = [live(u, a) for u, a in pairs]
        arrived: list[float] = []
        t0 = time.perf_counter()
        threads = [
            threading.Thread(target=u.post, args=(f"/api/sessions/{i}/end",))
            for (u, _), i in zip(pairs, ids, strict=True)
        ]
        for t in threads:
            t.start()
        for (user_ws, astro_ws), session_id in zip(sockets, ids, strict=True):
            for ws in (user_ws, astro_ws):
                ws.wait_for(
                    "consult:ended", timeout=60, where=lambda d, s=session_id: d["sessionId"] == s
                )
            arrived.append((time.perf_counter() - t0) * 1000)
        for t in threads:
            t.join()
        report(f"{len(ids)} sessions ended at once: notified", arrived)

        # One session, many concurrent enders: one settlement, identical answers.
        (user, astrologer), (user_ws, astro_ws) = pairs[0], sockets[0]
        session_id = live(user, astrologer)
        answers, lock = [], threading.Lock()

        def end(api: Api) -> None:
            body = api.post(f"/api/sessions/{session_id}/end").json()
            with lock:
                answers.append(body)

        t0 = time.perf_counter()
        enders = [
            threading.Thread(target=end, args=((user, astrologer)[i % 2],))
            for i in range(args.concurrent_enders)
        ]
        for t in enders:
            t.start()
        for t in enders:
            t.join()
        elapsed = (time.perf_counter() - t0) * 1000
        winners = sum(1 for a in answers if a["alreadyEnded"] is False)
        costs = {a["totalCostPaise"] for a in answers}
        print(
            f"{args.concurrent_enders} concurrent ends of one session: {elapsed:.0f} ms, "
            f"{winners} settlement, {len(costs)} distinct cost, "
            f"{user_ws.count('consult:ended')} + {astro_ws.count('consult:ended')} notifications"
        )
    except AssertionError:
        print(server.log()[-3000:])
        raise
    finally:
        server.stop()


if __name__ == "__main__":
    main()
