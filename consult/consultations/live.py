"""The operator's live console: what started, paused, resumed or ended is broadcast to the
sockets watching topic `live` (admins' only), so the console never polls to see it."""

from collections.abc import Iterable

from ..realtime import Event, Hub

TOPIC = "live"


def changed(hub: Hub, consultation_ids: Iterable[int]) -> None:
    ids = sorted(set(consultation_ids))
    if ids:
        hub.broadcast(Event("live:changed", {"sessionIds": ids}), topic=TOPIC)
