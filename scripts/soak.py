#!/usr/bin/env python3
"""Seeded fault soak: random schedules of everything users, astrologers and faults do,
against a real server subprocess, with the books reconciled after every step.

Each schedule is driven by `random.Random(seed)`: two fresh users and the soak's
astrologers request, accept, decline, cancel, chat, recharge (retrying with the same
idempotency key, or misusing one), end from both sides over HTTP and the socket (alone and
in concurrent bursts), open and drop sockets without a close frame, let time pass so funded
ends, grace periods and request timeouts come due, and now and then kill the server with
SIGKILL and restart it. After every step, `consult.ledger_audit.check()` runs in process
against the same database; at the end of a schedule everything live is ended and each
user's wallet must equal what was credited minus what their settled sessions cost.

    python scripts/soak.py --seconds 600          # a long run (random first seed, printed)
    python scripts/soak.py --seed 1234            # replay one schedule that failed
    python scripts/soak.py --schedules 50 --from-seed 1

A failure prints its seed and how to replay it, and exits 1. Timing is real (threads, the
scheduler), so a replay repeats the same actions in the same order, not the same
interleaving to the microsecond.
"""

import argparse
import random
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import requests  # noqa: E402

from helpers import PASSWORD  # noqa: E402  the tests' harness
from helpers.databases import ROOMY_LIMITS  # noqa: E402
from helpers.server import Api, Server, unique  # noqa: E402
from helpers.sockets import Socket  # noqa: E402

# Fast clocks, as the tests use them, so every end reason happens within seconds.
SETTINGS = {
    **ROOMY_LIMITS,  # one address signs up, recharges and chats for a whole crowd
    "DISCONNECT_GRACE_SECONDS": 2,
    "REQUEST_TIMEOUT_SECONDS": 3,
    "LOW_BALANCE_WARNING_SECONDS": 2,
    "MIN_SESSION_SECONDS": 1,
    "SCHEDULER_INTERVAL_SECONDS": 0.1,
    "MAKE_GOOD_SECONDS": 3,  # an astrologer ending within 3 s costs the user nothing
    "MAKE_GOOD_SILENT_ASTROLOGER": "true",
}
RATES = (3000, 6100, 12_000)  # paise per minute; 6100 is not a multiple of 60
TERMINAL = ("ended", "declined", "cancelled", "expired")
# Known problems a soak can be told to count and pass (--tolerate): none at present.
# (Billing through a crash downtime was one; an end is now held to the last heartbeat
# until recovery decides, on a lone server and in a cluster alike.)
KNOWN: tuple[str, ...] = ()


def known_kind(problem) -> str | None:
    """Which known bug a reconciliation problem is the mark of, if any. None at present
    (the expiry/accept race the soak found on PostgreSQL is fixed); name one here while
    its fix is pending, as `Soak.known` does for the end-of-schedule checks."""
    return None


class SoakFailure(AssertionError):
    """An invariant broke: the message says which, and where."""


def expect(condition, message: str) -> None:
    if not condition:
        raise SoakFailure(message)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------- the soak: one server


class Soak:
    """The server under test, the books checked in process, and the shared astrologers."""

    def __init__(self, database_url: str, tolerate: set[str]):
        self.database_url = database_url
        self.tolerate = tolerate
        self.tolerated: list[str] = []
        self.server = Server(database_url, dict(SETTINGS)).start()
        self.apis: list[Api] = []  # every Api, re-pointed at each restart
        self.kills = 0
        from werkzeug.security import generate_password_hash

        from consult import accounts, create_app

        # The same hash format as production, at a cost that suits a soak.
        accounts.generate_password_hash = lambda p: generate_password_hash(
            p, method="pbkdf2:sha256:1"
        )
        self.app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "soak"})
        self.astrologers = [self.account("astrologer", rate) for rate in RATES]
        self.admin = self.account("admin")

    # -- accounts

    def account(self, role: str, rate: int | None = None) -> Api:
        from consult import accounts
        from consult.clock import utcnow

        username = unique(role[0])
        with self.app.app_context():
            accounts.create_user(
                username, PASSWORD, role=role, now=utcnow(), rate_paise_per_minute=rate
            )
        return self.sign_in(username)

    def sign_in(self, username: str) -> Api:
        r = requests.post(
            self.server.url + "/api/auth/token",
            json={"username": username, "password": PASSWORD},
            timeout=10,
        )
        expect(r.status_code == 200, f"sign-in of {username} answered {r.status_code}")
        api = Api(self.server, r.json()["token"], r.json()["user"])
        self.apis.append(api)
        return api

    # -- faults

    def kill_and_restart(self) -> datetime:
        self.server.stop(kill=True)
        killed_at = datetime.now(UTC)
        self.kills += 1
        self.server = Server(self.database_url, dict(SETTINGS)).start()
        for api in self.apis:
            api.server = self.server
        return killed_at

    def stop(self) -> None:
        self.server.stop(kill=True)

    # -- the books

    def books(self, where: str) -> None:
        from consult import ledger_audit

        with self.app.app_context():
            report = ledger_audit.check()
        problems = []
        for problem in report.problems:
            kind = known_kind(problem)
            if kind in self.tolerate:
                if str(problem) not in self.tolerated:
                    self.tolerated.append(str(problem))
            else:
                problems.append(problem)
        expect(
            not problems,
            f"the reconciliation failed {where}:\n  " + "\n  ".join(str(p) for p in problems),
        )

    def statuses(self, session_ids) -> dict[int, str]:
        from sqlalchemy import select

        from consult.consultations import Consultation
        from consult.db import db

        with self.app.app_context():
            rows = db.session.execute(
                select(Consultation.id, Consultation.status).where(
                    Consultation.id.in_(list(session_ids))
                )
            ).all()
            db.session.rollback()
        return dict(rows)

    def known(self, kind: str, message: str) -> None:
        """A violation of a reported, not yet fixed bug: fail, unless told to tolerate it."""
        if kind in self.tolerate:
            self.tolerated.append(message)
            return
        raise SoakFailure(f"{message} [{kind}: pass --tolerate {kind} to carry on]")


# ---------------------------------------------------------------- one schedule


@dataclass
class Consultation:
    id: int
    user: Api
    astrologer: Api
    rate: int


@dataclass
class Schedule:
    soak: Soak
    seed: int
    rng: random.Random = field(init=False)
    log: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.rng = random.Random(self.seed)
        self.users: list[Api] = []
        self.credited: dict[int, int] = {}
        self.sessions: dict[int, Consultation] = {}
        self.sockets: dict[int, list[Socket]] = {}
        self.keys: dict[str, tuple[Api, int, dict]] = {}  # key -> (user, amount, first answer)
        self.live_at_kill: dict[int, datetime] = {}
        self.killed = False

    # -- plumbing

    def people(self) -> list[Api]:
        return self.users + self.soak.astrologers

    def answer(self, response: requests.Response, allowed: tuple, what: str):
        expect(
            response.status_code < 500,
            f"{what} answered {response.status_code}: {response.text[:300]}",
        )
        expect(
            response.status_code in allowed,
            f"{what} answered {response.status_code} (expected one of {allowed}): "
            f"{response.text[:300]}",
        )
        return response.json() if response.content else None

    def pick_session(self, *statuses: str) -> Consultation | None:
        if not self.sessions:
            return None
        current = self.soak.statuses(self.sessions)
        candidates = [c for sid, c in self.sessions.items() if current.get(sid) in statuses]
        return self.rng.choice(candidates) if candidates else None

    def check_end_answer(self, body: dict, c: Consultation, as_user: bool, what: str) -> None:
        expect(body["sessionId"] == c.id, f"{what}: answer for session {body['sessionId']}")
        expect(
            body["totalCostPaise"] == body["durationSeconds"] * c.rate // 60,
            f"{what}: cost {body['totalCostPaise']} is not {body['durationSeconds']} s at "
            f"{c.rate}/min",
        )
        if as_user:
            expect(body["balancePaise"] >= 0, f"{what}: negative balance {body}")
        else:
            expect(body["balancePaise"] is None, f"{what}: the astrologer saw a balance")

    # -- set-up

    def begin(self) -> None:
        for _ in range(2):
            balance = self.rng.choice((0, 250, 400, 2_000, 9_000, 40_000, 40_000))
            user = self.soak.account("user")
            self.users.append(user)
            self.credited[user.id] = 0
            if balance:
                self.recharge(user, balance)
        for person in self.people():
            self.sockets[person.id] = []

    # -- actions

    def limits(self) -> dict:
        """Some requests carry the user's own limits: a time limit, a spend cap, or both."""
        chosen = {}
        if self.rng.random() < 0.25:
            chosen["maxMinutes"] = 1
        if self.rng.random() < 0.3:
            chosen["maxSpendPaise"] = self.rng.choice((100, 250, 700))
        return chosen

    def request(self):
        user = self.rng.choice(self.users)
        astrologer = self.rng.choice(self.soak.astrologers)
        body = self.answer(
            user.post("/api/sessions", {"astrologerId": astrologer.id, **self.limits()}),
            (201, 402, 409),
            "a request",
        )
        if "id" in body:
            self.sessions[body["id"]] = Consultation(
                body["id"], user, astrologer, body["ratePaisePerMinute"]
            )
            return f"request #{body['id']}"
        return f"request refused: {body['error']}"

    def answer_request(self):
        c = self.pick_session("requested")
        if c is None:
            return "answer: nothing waiting"
        verb = self.rng.choice(("accept", "accept", "accept", "decline"))
        self.answer(
            c.astrologer.post(f"/api/sessions/{c.id}/{verb}"), (200, 409), f"{verb} #{c.id}"
        )
        return f"{verb} #{c.id}"

    def cancel(self):
        c = self.pick_session("requested")
        if c is None:
            return "cancel: nothing waiting"
        self.answer(c.user.post(f"/api/sessions/{c.id}/cancel"), (200, 409), f"cancel #{c.id}")
        return f"cancel #{c.id}"

    def chat(self):
        c = self.pick_session("active", "ended", "requested")
        if c is None:
            return "chat: no session"
        sender = self.rng.choice((c.user, c.astrologer))
        text = self.rng.choice(("namaste", "<b>hi</b>", "{{7*7}}", "🙏" * 3, "x" * 2000))
        self.answer(
            sender.post(f"/api/sessions/{c.id}/messages", {"text": text}),
            (201, 409),
            f"chat in #{c.id}",
        )
        return f"chat in #{c.id}"

    def recharge(self, user: Api | None = None, amount: int | None = None):
        user = user or self.rng.choice(self.users)
        roll = self.rng.random()
        mine = [k for k, (u, _, _) in self.keys.items() if u is user]
        if mine and roll < 0.2:  # a retry: the first answer comes back, nothing is credited
            key = self.rng.choice(mine)
            _, amount, first = self.keys[key]
            body = self.answer(
                user.post("/api/wallet/recharge", {"amountPaise": amount, "idempotencyKey": key}),
                (200,),
                "a recharge retried with its key",
            )
            expect(body == first, f"a retried recharge answered {body}, first {first}")
            return f"recharge retry {key[:6]}"
        if mine and roll < 0.3:  # a key misused for another amount
            key = self.rng.choice(mine)
            _, amount, _ = self.keys[key]
            self.answer(
                user.post(
                    "/api/wallet/recharge", {"amountPaise": amount + 1, "idempotencyKey": key}
                ),
                (422,),
                "a recharge reusing a key for another amount",
            )
            return f"recharge key misuse {key[:6]}"
        amount = amount or self.rng.choice((60, 250, 1_000, 5_000))
        key = uuid.uuid4().hex
        body = self.answer(
            user.post("/api/wallet/recharge", {"amountPaise": amount, "idempotencyKey": key}),
            (200,),
            "a recharge",
        )
        self.credited[user.id] += amount
        self.keys[key] = (user, amount, body)
        expect(body["balancePaise"] >= amount, f"recharge of {amount} left {body}")
        return f"recharge {amount}"

    def change_limits(self):
        c = self.pick_session("active", "requested", "ended")
        if c is None:
            return "limits: no session"
        change = self.limits() or {"maxSpendPaise": None, "maxMinutes": None}
        body = self.answer(
            c.user.put(f"/api/sessions/{c.id}/limits", change), (200, 409), f"limits of #{c.id}"
        )
        if "id" in body:
            expect(all(body[k] == v for k, v in change.items()), f"limits {change} gave {body}")
        return f"limits of #{c.id} {change}"

    def rate(self):
        c = self.pick_session("ended")
        if c is None:
            return "rate: nothing ended"
        stars = self.rng.randint(1, 5)
        body = self.answer(
            c.user.put(f"/api/sessions/{c.id}/rating", {"stars": stars, "comment": "ok"}),
            (200, 409),
            f"rating #{c.id}",
        )
        if "stars" in body:
            expect(body["stars"] == stars, f"rated {stars}, got {body}")
        return f"rate #{c.id} {stars}"

    def refund(self):
        """An admin refunds part of a session, or its user reports it and the admin resolves."""
        c = self.pick_session("ended")
        if c is None:
            return "refund: nothing ended"
        amount = self.rng.choice((1, 50, 300, 10_000))
        if self.rng.random() < 0.5:
            self.answer(
                self.soak.admin.post(
                    f"/api/admin/sessions/{c.id}/refund",
                    {"amountPaise": amount, "note": "soak"},
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                ),
                (200, 409),
                f"refund of #{c.id}",
            )
            return f"admin refund #{c.id} {amount}"
        filed = self.answer(
            c.user.post(f"/api/sessions/{c.id}/report", {"category": "quality", "text": "soak"}),
            (201, 409),
            f"report of #{c.id}",
        )
        if "id" in filed:
            self.answer(
                self.soak.admin.post(
                    f"/api/admin/reports/{filed['id']}/resolve",
                    {"refundPaise": self.rng.choice((0, amount)), "note": "soak"},
                ),
                (200, 409),
                f"resolving the report of #{c.id}",
            )
        return f"report #{c.id}"

    def end_once(self, c: Consultation, ender: Api, how: str) -> dict | None:
        as_user = ender is c.user
        what = f"end #{c.id} by {'user' if as_user else 'astrologer'} via {how}"
        if how == "socket":
            ws = self.socket_of(ender)
            ws.send("endSession", {"sessionId": c.id}, requestId=f"end-{c.id}")
            frame = ws.wait_for_any("endSession:result", "error", timeout=10)
            if frame["event"] == "error":
                expect(
                    frame["data"]["message"] in ("Session is not active",),
                    f"{what}: {frame['data']}",
                )
                return None
            body = frame["data"]
        else:
            if how == "rest-id":
                r = ender.post(f"/api/sessions/{c.id}/end")
            else:
                r = ender.post("/api/sessions/end", {"sessionId": c.id})
            body = self.answer(r, (200, 409), what)
            if r.status_code == 409:
                return None
        self.check_end_answer(body, c, as_user, what)
        return body

    def end(self):
        c = self.pick_session("active", "ended", "requested")
        if c is None:
            return "end: no session"
        ender = self.rng.choice((c.user, c.astrologer))
        how = self.rng.choice(("rest-id", "rest-body", "socket"))
        self.end_once(c, ender, how)
        return f"end #{c.id} via {how}"

    def burst(self):
        """Both parties, several ways, at once: one settlement, one set of figures."""
        c = self.pick_session("active")
        if c is None:
            return "burst: nothing active"
        plan = [
            (self.rng.choice((c.user, c.astrologer)), self.rng.choice(("rest-id", "rest-body")))
            for _ in range(self.rng.randint(2, 6))
        ]
        answers, errors = [], []
        gate = threading.Barrier(len(plan))

        def one(ender, how):
            try:
                gate.wait(10)
                body = self.end_once(c, ender, how)
                if body is not None:
                    answers.append(body)
            except Exception as error:  # re-raised below, with the schedule's context
                errors.append(error)

        threads = [threading.Thread(target=one, args=p) for p in plan]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        if errors:
            raise errors[0]
        won = [a for a in answers if a["alreadyEnded"] is False]
        expect(len(won) <= 1, f"a burst of ends on #{c.id} settled {len(won)} times")
        figures = {(a["reason"], a["endedAt"], a["totalCostPaise"]) for a in answers}
        expect(len(figures) <= 1, f"a burst on #{c.id} gave different figures: {figures}")
        return f"burst of {len(plan)} ends on #{c.id}"

    def socket_of(self, person: Api) -> Socket:
        open_ = [ws for ws in self.sockets[person.id] if not ws.closed.is_set()]
        if open_:
            return self.rng.choice(open_)
        return self.connect(person)

    def connect(self, person: Api | None = None) -> Socket:
        person = person or self.rng.choice(self.people())
        ws = person.socket()
        ws.wait_for("session:state", timeout=10)
        self.sockets[person.id].append(ws)
        return ws

    def connect_action(self):
        person = self.rng.choice(self.people())
        self.connect(person)
        return f"connect user {person.id}"

    def drop(self):
        open_ = [ws for wss in self.sockets.values() for ws in wss if not ws.closed.is_set()]
        if not open_:
            return "drop: no socket"
        ws = self.rng.choice(open_)
        if self.rng.random() < 0.7:
            ws.drop()  # no close frame: a phone losing its signal
        else:
            try:
                ws.ws.send_close()
            except Exception:  # already gone
                pass
        ws.closed.wait(3)
        return "drop a socket"

    def wait(self):
        seconds = self.rng.choice((0.1, 0.3, 0.8, 1.5, 2.5))
        time.sleep(seconds)  # time passing is part of the schedule: funds, grace, timeouts
        return f"wait {seconds}s"

    def kill(self):
        if self.killed:
            return "kill: once per schedule"
        self.killed = True
        live = [sid for sid, s in self.soak.statuses(self.sessions).items() if s == "active"]
        killed_at = self.soak.kill_and_restart()
        for sid in live:
            self.live_at_kill.setdefault(sid, killed_at)
        for person in self.people():
            self.sockets[person.id] = []  # they died with the server
        return f"kill the server ({len(live)} live)"

    ACTIONS = (
        ("request", 6),
        ("answer_request", 7),
        ("cancel", 1),
        ("chat", 3),
        ("recharge", 3),
        ("end", 3),
        ("burst", 1),
        ("connect_action", 3),
        ("drop", 2),
        ("wait", 4),
        ("kill", 0.4),
        ("change_limits", 1),
        ("rate", 1),
        ("refund", 1),
    )

    def step(self) -> str:
        names = [name for name, _ in self.ACTIONS]
        weights = [weight for _, weight in self.ACTIONS]
        return getattr(self, self.rng.choices(names, weights)[0])()

    # -- the end of a schedule

    def finish(self) -> None:
        """End everything, wait until it settles, and check each user's money."""
        for c in list(self.sessions.values()):
            status = self.soak.statuses([c.id]).get(c.id)
            if status == "requested":
                self.answer(c.user.post(f"/api/sessions/{c.id}/cancel"), (200, 409), "cancel")
            elif status == "active":
                self.answer(c.user.post(f"/api/sessions/{c.id}/end"), (200, 409), "final end")
        deadline = time.monotonic() + 20  # a restart settles its orphans ~3 s after boot
        while True:
            pending = {
                sid: s for sid, s in self.soak.statuses(self.sessions).items() if s not in TERMINAL
            }
            if not pending:
                break
            expect(time.monotonic() < deadline, f"sessions never settled: {pending}")
            time.sleep(0.2)
        self.soak.books("after the schedule drained")
        costs = {user.id: 0 for user in self.users}
        refunds = {user.id: 0 for user in self.users}
        for c in self.sessions.values():
            body = self.answer(c.user.get(f"/api/sessions/{c.id}"), (200,), f"GET #{c.id}")
            if body["status"] != "ended":
                expect(body["totalCostPaise"] is None, f"#{c.id} {body['status']} yet charged")
                continue
            costs[c.user.id] += body["totalCostPaise"]
            refunds[c.user.id] += body["refundedPaise"]
            expect(
                0 <= body["refundedPaise"] <= body["totalCostPaise"],
                f"#{c.id}: refunded {body['refundedPaise']} of {body['totalCostPaise']}",
            )
            if body["maxSpendPaise"] is not None:
                expect(
                    body["totalCostPaise"] <= body["maxSpendPaise"],
                    f"#{c.id}: cost {body['totalCostPaise']} passed its cap "
                    f"{body['maxSpendPaise']}",
                )
            expect(
                body["totalCostPaise"] == body["durationSeconds"] * c.rate // 60,
                f"#{c.id}: {body}",
            )
            crashed = self.live_at_kill.get(c.id)
            expect(
                crashed is None or instant(body["endedAt"]) <= crashed,
                f"#{c.id} was live at a crash at {crashed} but was billed until "
                f"{body['endedAt']} ({body['endReason']})",
            )
        for user in self.users:
            wallet = self.answer(user.get("/api/wallet"), (200,), "GET /api/wallet")
            expected = self.credited[user.id] - costs[user.id] + refunds[user.id]
            expect(
                wallet["balancePaise"] == expected,
                f"user {user.id}: wallet {wallet['balancePaise']}, but credited "
                f"{self.credited[user.id]} minus costs {costs[user.id]} plus refunds "
                f"{refunds[user.id]} is {expected}",
            )
        for wss in self.sockets.values():
            for ws in wss:
                if not ws.closed.is_set():
                    ws.drop()

    def run(self, steps: int) -> None:
        self.begin()
        self.soak.books("after the set-up")
        for n in range(steps):
            did = self.step()
            self.log.append(did)
            self.soak.books(f"after step {n + 1} ({did})")
        self.finish()


# ---------------------------------------------------------------- running it


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, help="replay this one schedule")
    parser.add_argument("--from-seed", type=int, help="the first schedule's seed (default random)")
    parser.add_argument("--schedules", type=int, default=None, help="stop after this many")
    parser.add_argument("--seconds", type=float, default=None, help="no new schedule after this")
    parser.add_argument(
        "--steps", type=int, default=None, help="steps per schedule (default 10-30)"
    )
    parser.add_argument(
        "--database-url", help="default: a fresh SQLite file; a PostgreSQL URL works too"
    )
    parser.add_argument(
        "--tolerate",
        action="append",
        default=[],
        choices=KNOWN,
        help="count, but do not fail on, a known and reported bug",
    )
    args = parser.parse_args(argv)
    if args.seed is not None:
        seeds = iter([args.seed])
    else:
        first = args.from_seed if args.from_seed is not None else random.randrange(10**6)
        seeds = iter(range(first, first + 10**9))
        print(f"first seed {first}", flush=True)
    if args.seed is None and args.schedules is None and args.seconds is None:
        args.seconds = 60.0

    folder = tempfile.TemporaryDirectory(prefix="consult-soak-")
    url = args.database_url or f"sqlite:///{folder.name}/consult.db"
    began = time.monotonic()
    soak = Soak(url, set(args.tolerate))
    ran = 0
    try:
        for seed in seeds:
            if args.schedules is not None and ran >= args.schedules:
                break
            if args.seconds is not None and time.monotonic() - began >= args.seconds:
                break
            schedule = Schedule(soak, seed)
            steps = args.steps or random.Random(seed).randint(10, 30)
            try:
                schedule.run(steps)
            except Exception as error:
                print(f"\nFAILED schedule seed={seed} after {len(schedule.log)} steps:")
                for n, did in enumerate(schedule.log[-12:], start=max(1, len(schedule.log) - 11)):
                    print(f"  step {n}: {did}")
                if isinstance(error, SoakFailure):
                    print(f"  {error}")
                else:
                    traceback.print_exc()
                print(f"server log: {soak.server.log_path}")
                print(f"replay: python scripts/soak.py --seed {seed}", flush=True)
                return 1
            ran += 1
            print(
                f"schedule seed={seed}: {steps} steps, {len(schedule.sessions)} sessions, "
                f"{'a kill' if schedule.killed else 'no kill'}: clean",
                flush=True,
            )
    finally:
        soak.stop()
        folder.cleanup()
    if soak.tolerated:
        print(f"tolerated {len(soak.tolerated)} known violation(s):")
        for message in soak.tolerated:
            print(f"  {message}")
    print(f"{ran} schedules ran clean in {time.monotonic() - began:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
