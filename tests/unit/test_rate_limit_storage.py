"""The in-memory rate-limit storage counts as limits' own does, and sweeps seldom."""

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from consult.web import rate_limits
from consult.web.rate_limits import SweptMemoryStorage


def test_the_app_storage_is_found_by_its_scheme_and_still_limits():
    storage = storage_from_string("consult-memory://")
    assert isinstance(storage, SweptMemoryStorage)
    limiter, three = FixedWindowRateLimiter(storage), RateLimitItemPerMinute(3)
    assert [limiter.hit(three, "message", "7") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(three, "message", "8")  # another account counts on its own


def test_a_count_sweeps_after_seconds_not_every_ten_milliseconds():
    storage = SweptMemoryStorage()
    storage.timer.join(1)  # the constructor's first sweep
    storage.incr("message/7", 60)
    assert storage.timer.is_alive()
    assert storage.timer.interval == SweptMemoryStorage.SWEEP_SECONDS
    storage.timer.cancel()


def test_counting_schedules_a_sweep_once_per_sweep_interval(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(rate_limits.time, "monotonic", lambda: now[0])
    storage = SweptMemoryStorage()
    storage.timer.join(1)
    storage.incr("message/7", 60)
    first = storage.timer
    for _ in range(100):
        storage.incr("message/7", 60)
    assert storage.timer is first  # the hundred counts after it scheduled no other
    now[0] += SweptMemoryStorage.SWEEP_SECONDS
    storage.incr("message/7", 60)
    assert storage.timer is not first and storage.timer.is_alive()  # the next one
    assert storage.get("message/7") == 102
    first.cancel()
    storage.timer.cancel()
