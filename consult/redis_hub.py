"""The hub over Redis, for several workers or machines (`REDIS_URL`).

Events go through one pub/sub channel; every instance delivers them to the sockets it
holds. Presence lives in Redis too: each live socket is a member of its user's sorted
set, scored with an expiry that its instance keeps pushing out. A crashed instance's
sockets therefore fade out on their own, and the scheduler's presence reconciliation
pauses the sessions they leave behind.
"""

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import redis

from .clock import utcnow
from .realtime import Connection, Event, LocalHub, PresenceListener

log = logging.getLogger(__name__)
PRESENCE_TTL = 30.0  # seconds a socket counts as present without a refresh
REFRESH_EVERY = 10.0


class RedisHub:
    def __init__(
        self, url: str, on_presence: PresenceListener | None = None, prefix: str = "consult"
    ):
        # One prefix per deployment: several Consults can share one Redis.
        self.channel = f"{prefix}:events"
        self._conns = f"{prefix}:conns:{{}}".format
        self._gone = f"{prefix}:gone:{{}}".format
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.redis.ping()  # fail at start-up, not at the first event
        self.local = LocalHub()
        self.on_presence = on_presence
        self._ids: dict[int, str] = {}  # id(connection) -> its member name in Redis
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        threading.Thread(target=self._listen, name="redis-hub-listen", daemon=True).start()
        threading.Thread(target=self._refresh, name="redis-hub-refresh", daemon=True).start()
        self._subscribed.wait(5)

    # ---------------------------------------------------------------- events

    def publish(self, user_ids: Iterable[int], event: Event) -> None:
        self.redis.publish(
            self.channel,
            json.dumps({"to": sorted(set(user_ids)), "name": event.name, "data": event.data}),
        )

    def broadcast(self, event: Event, topic: str) -> None:
        self.redis.publish(
            self.channel,
            json.dumps({"to": None, "topic": topic, "name": event.name, "data": event.data}),
        )

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                self._subscribed.set()
                for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    body = json.loads(message["data"])
                    event = Event(body["name"], body["data"])
                    if body["to"] is None:
                        self.local.broadcast(event, body["topic"])
                    else:
                        self.local.publish(body["to"], event)
            except redis.ConnectionError:
                log.warning("lost the Redis subscription; reconnecting")
                time.sleep(1)

    # ---------------------------------------------------------------- presence

    def attach(self, connection: Connection) -> None:
        member = uuid.uuid4().hex
        with self._lock:
            self._ids[id(connection)] = member
        self.local.attach(connection)
        key, now = self._conns(connection.user_id), time.time()
        pipe = self.redis.pipeline()
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zadd(key, {member: now + PRESENCE_TTL})
        pipe.zcard(key)
        pipe.delete(self._gone(connection.user_id))
        count = pipe.execute()[2]
        if count == 1:
            self._presence_changed(connection.user_id, True, utcnow())

    def detach(self, connection: Connection) -> None:
        with self._lock:
            member = self._ids.pop(id(connection), None)
        self.local.detach(connection)
        if member is None:
            return
        key, now = self._conns(connection.user_id), time.time()
        pipe = self.redis.pipeline()
        pipe.zrem(key, member)
        pipe.zcount(key, now, "+inf")
        left = pipe.execute()[1]
        if left == 0:
            at = utcnow()
            self.redis.set(self._gone(connection.user_id), at.isoformat(), ex=24 * 3600)
            self._presence_changed(connection.user_id, False, at)

    def online(self, user_id: int) -> bool:
        return self.redis.zcount(self._conns(user_id), time.time(), "+inf") > 0

    def gone_since(self, user_id: int) -> datetime | None:
        """When the user's last socket went; for sockets of a crashed instance, when they
        were last refreshed. None while online, or if the user never connected."""
        if self.online(user_id):
            return None
        marked = self.redis.get(self._gone(user_id))
        if marked:
            return datetime.fromisoformat(marked)
        stale = self.redis.zrange(self._conns(user_id), -1, -1, withscores=True)
        if stale:
            return datetime.fromtimestamp(stale[0][1] - PRESENCE_TTL, UTC)
        return None

    def gone_among(self, user_ids: Iterable[int]) -> dict[int, datetime]:
        """`gone_since` for many users in two pipelined round trips, not two per user."""
        user_ids, now = list(user_ids), time.time()
        pipe = self.redis.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.zcount(self._conns(user_id), now, "+inf")
        offline = [uid for uid, live in zip(user_ids, pipe.execute(), strict=True) if not live]
        gone = {}
        for user_id in offline:  # rare: only users who really left
            since = self.gone_since(user_id)
            if since is not None:
                gone[user_id] = since
        return gone

    def connection_count(self) -> int:
        return self.local.connection_count()

    def _refresh(self) -> None:
        """Keep this instance's sockets present; stop and they fade out after PRESENCE_TTL."""
        while not self._stop.wait(REFRESH_EVERY):
            try:
                with self._lock:
                    members = [(c.user_id, self._ids.get(id(c))) for c in self.local.connections()]
                expiry = time.time() + PRESENCE_TTL
                pipe = self.redis.pipeline()
                for user_id, member in members:
                    if member:
                        pipe.zadd(self._conns(user_id), {member: expiry}, xx=True)
                pipe.execute()
            except redis.ConnectionError:
                log.warning("could not refresh presence in Redis")

    def _presence_changed(self, user_id: int, online: bool, at: datetime) -> None:
        if self.on_presence is not None:
            self.on_presence(user_id, online, at)
