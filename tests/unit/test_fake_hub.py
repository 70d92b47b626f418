"""The tests' one fake hub keeps in step with the hub the domain is written against (and
so do the real ones)."""

import inspect

from consult.realtime import Hub, LocalHub
from consult.redis_hub import RedisHub
from helpers.hub import FakeHub

HUB_METHODS = sorted(
    name for name, member in vars(Hub).items() if callable(member) and not name.startswith("_")
)


def test_the_fake_hub_has_every_method_of_hub_with_its_parameters():
    assert (
        sorted(["publish", "broadcast", "attach", "detach", "online", "gone_since", "gone_among"])
        == HUB_METHODS
    )
    for name in HUB_METHODS:
        wanted = list(inspect.signature(getattr(Hub, name)).parameters)
        for hub in (FakeHub, LocalHub, RedisHub):
            assert list(inspect.signature(getattr(hub, name)).parameters) == wanted, (hub, name)


def test_the_fake_hub_records_what_was_published_and_who_is_away():
    from consult.realtime import Event

    hub = FakeHub()
    hub.publish([3, 1, 3], Event("consult:ended", {"sessionId": 5}))
    hub.broadcast(Event("presence", {}), topic="presence")
    assert hub.named("consult:ended") == [((1, 3), Event("consult:ended", {"sessionId": 5}))]
    assert hub.count("presence") == 1
    assert hub.online(1) and hub.gone_since(1) is None and hub.gone_among([1, 3]) == {}
