"""`FakeHub`: the one fake of `consult.realtime.Hub`, for the domain's tests.

It records what the domain published instead of delivering it, and lets a test say who is
away (and since when). Attached connections are only counted as present: what reaches a
real connection is the real hub's business (`helpers.inprocess.listen`).
`tests/unit/test_fake_hub.py` keeps it in step with the protocol.
"""

import threading
from collections.abc import Iterable
from datetime import datetime

from consult.clock import utcnow
from consult.realtime import Connection, Event


class FakeHub:
    def __init__(self):
        self.published: list[tuple[tuple[int, ...], Event]] = []  # () for a broadcast
        self.away: dict[int, datetime] = {}  # user id -> gone since
        self._attached: dict[int, int] = {}
        self._lock = threading.Lock()  # the domain publishes from many threads at once

    # ---------------------------------------------------------------- Hub

    def publish(self, user_ids: Iterable[int], event: Event) -> None:
        with self._lock:
            self.published.append((tuple(sorted(set(user_ids))), event))

    def broadcast(self, event: Event, topic: str) -> None:
        with self._lock:
            self.published.append(((), event))

    def attach(self, connection: Connection) -> None:
        with self._lock:
            self._attached[connection.user_id] = self._attached.get(connection.user_id, 0) + 1
            self.away.pop(connection.user_id, None)

    def detach(self, connection: Connection) -> None:
        with self._lock:
            self._attached[connection.user_id] -= 1
            if not self._attached[connection.user_id]:
                self.away[connection.user_id] = utcnow()

    def online(self, user_id: int) -> bool:
        return user_id not in self.away

    def gone_since(self, user_id: int) -> datetime | None:
        return self.away.get(user_id)

    def gone_among(self, user_ids: Iterable[int]) -> dict[int, datetime]:
        return {u: self.away[u] for u in user_ids if u in self.away}

    # ---------------------------------------------------------------- what was published

    def named(self, name: str) -> list[tuple[tuple[int, ...], Event]]:
        """(recipients, event) of every event called `name`, in the order published."""
        with self._lock:
            return [(ids, e) for ids, e in self.published if e.name == name]

    def count(self, name: str) -> int:
        return len(self.named(name))
