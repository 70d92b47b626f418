"""The hub: domain events fanned out to every live connection of the users they concern.

The domain publishes facts (`Event`); each connection renders them in its own form (JSON
frames for programs, HTML fragments for htmx pages). The hub also knows presence: which
users have at least one live connection, and since when a user has had none.

`LocalHub` serves one process. A Redis-backed hub with the same interface serves several
(`REDIS_URL`); the rest of the code does not know which one it talks to.
"""

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Protocol

from . import frames
from .clock import utcnow


@dataclass(frozen=True)
class Event:
    """A domain fact: `name` is the wire event name of docs/websocket.md, `data` its JSON body."""

    name: str
    data: dict = field(default_factory=dict)

    @cached_property
    def frame(self) -> str:
        """The JSON frame of docs/websocket.md, serialised once however many sockets it goes to."""
        return json.dumps({"event": self.name, "data": self.data})

    @cached_property
    def framed(self) -> bytes:
        """`frame` as a WebSocket text frame, built once for all its sockets."""
        return frames.text(self.frame)


class Connection(Protocol):
    user_id: int
    topics: frozenset[str]  # what else it watches, e.g. "presence" for the astrologer list

    def deliver(self, event: Event) -> None:
        """Queue the event for sending; must not block."""


PresenceListener = Callable[[int, bool, datetime], None]


class Hub(Protocol):
    def publish(self, user_ids: Iterable[int], event: Event) -> None: ...
    def broadcast(self, event: Event, topic: str) -> None: ...
    def attach(self, connection: Connection) -> None: ...
    def detach(self, connection: Connection) -> None: ...
    def online(self, user_id: int) -> bool: ...
    def gone_since(self, user_id: int) -> datetime | None: ...
    def gone_among(self, user_ids: Iterable[int]) -> dict[int, datetime]: ...


class LocalHub:
    """An in-memory hub for a single process."""

    def __init__(self, on_presence: PresenceListener | None = None):
        self._lock = threading.Lock()
        self._connections: dict[int, set] = defaultdict(set)
        self._watchers: dict[str, set] = defaultdict(set)  # topic -> connections watching it
        self._gone_since: dict[int, datetime] = {}
        self.on_presence = on_presence

    def publish(self, user_ids: Iterable[int], event: Event) -> None:
        with self._lock:
            targets = [c for uid in set(user_ids) for c in self._connections.get(uid, ())]
        for connection in targets:
            connection.deliver(event)

    def broadcast(self, event: Event, topic: str) -> None:
        """Deliver to every connection that watches `topic`, whoever it belongs to."""
        with self._lock:
            targets = list(self._watchers.get(topic, ()))
        for connection in targets:
            connection.deliver(event)

    def attach(self, connection: Connection) -> None:
        with self._lock:
            first = not self._connections[connection.user_id]
            self._connections[connection.user_id].add(connection)
            for topic in connection.topics:
                self._watchers[topic].add(connection)
            self._gone_since.pop(connection.user_id, None)
        if first:
            self._presence_changed(connection.user_id, True)

    def detach(self, connection: Connection) -> None:
        now = utcnow()
        with self._lock:
            conns = self._connections.get(connection.user_id, set())
            conns.discard(connection)
            for topic in connection.topics:
                self._watchers[topic].discard(connection)
            last = not conns
            if last:
                self._connections.pop(connection.user_id, None)
                self._gone_since[connection.user_id] = now
        if last:
            self._presence_changed(connection.user_id, False, now)

    def online(self, user_id: int) -> bool:
        with self._lock:
            return bool(self._connections.get(user_id))

    def gone_since(self, user_id: int) -> datetime | None:
        with self._lock:
            return self._gone_since.get(user_id)

    def gone_among(self, user_ids: Iterable[int]) -> dict[int, datetime]:
        """Those of the users who have no connection, with since when (if ever known)."""
        with self._lock:
            return {
                uid: self._gone_since[uid]
                for uid in user_ids
                if not self._connections.get(uid) and uid in self._gone_since
            }

    def connection_count(self) -> int:
        return len(self.connections())

    def connections(self) -> list:
        with self._lock:
            return [c for conns in self._connections.values() for c in conns]

    def _presence_changed(self, user_id: int, online: bool, at: datetime | None = None) -> None:
        if self.on_presence is not None:
            self.on_presence(user_id, online, at or utcnow())
