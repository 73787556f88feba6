"""The channel limiter across several OS processes, against the real Redis server."""

from __future__ import annotations

import itertools
import multiprocessing
import time

import pytest
import redis
from django.conf import settings

from workspace.providers.limiter import SAFETY, ChannelLimiter, Throttled

RPM = 600  # an interval of ~101 ms keeps the test short


def limiter(url: str, *, rpm: int = RPM, creates: int | None = None) -> ChannelLimiter:
    return ChannelLimiter(
        redis.Redis.from_url(url), channel_id=7, requests_per_minute=rpm, creates_per_minute=creates
    )


def _take_slots(url: str, count: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    own = limiter(url)
    slots = []
    for _ in range(count):
        own.acquire("other", max_wait=30)
        assert own.last_slot_at is not None
        slots.append(own.last_slot_at)
    results.put(slots)


def test_processes_share_one_evenly_spaced_sequence_of_slots(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    workers = [context.Process(target=_take_slots, args=(url, 6, results)) for _ in range(4)]
    for process in workers:
        process.start()
    per_process = [results.get(timeout=60) for _ in workers]
    for process in workers:
        process.join(timeout=10)
        assert process.exitcode == 0
    slots = sorted(slot for taken in per_process for slot in taken)
    interval = 60 / (RPM * SAFETY)
    assert len(slots) == 24
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    # Slots are handed out by Redis, one interval apart, whichever process asked.
    assert min(gaps) >= interval - 0.002
    assert max(gaps) <= interval + 0.002
    # So no sliding window ever holds more than the limit: 600 a minute is 10 a second.
    window = 1.0
    assert all(sum(1 for s in slots if start <= s < start + window) <= 10 for start in slots)


def test_a_pushback_pauses_every_process(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    first, second = limiter(url), limiter(url)
    first.acquire("other", max_wait=1)
    # A 429 seen by one worker...
    first.pushback(2.0)
    # ...holds back another worker (another process in production) without using a slot.
    with pytest.raises(Throttled) as caught:
        second.acquire("other", max_wait=0.5)
    assert caught.value.reason == "provider pause"
    assert 1.5 < caught.value.wait <= 2.0
    state = second.state()
    assert state.paused_until is not None
    # A shorter pushback never shortens a longer pause.
    second.pushback(0.1)
    assert second.state().paused_until == state.paused_until


def test_a_pause_that_starts_while_waiting_voids_the_slot(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    slow = limiter(url, rpm=60)  # one slot a second
    slow.acquire("other", max_wait=1)
    context = multiprocessing.get_context("fork")
    pusher = context.Process(target=_push_soon, args=(url,))
    pusher.start()
    with pytest.raises(Throttled):
        slow.acquire("other", max_wait=2)  # sleeps ~1 s for its slot, then sees the pause
    pusher.join(timeout=10)


def _push_soon(url: str) -> None:
    time.sleep(0.3)
    limiter(url, rpm=60).pushback(5)


def test_creates_can_have_their_own_bucket(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    split = limiter(url, rpm=6000, creates=6)  # a create every ~10 s, status calls every ~10 ms
    split.acquire("create", max_wait=1)
    with pytest.raises(Throttled) as caught:
        split.acquire("create", max_wait=1)
    assert caught.value.reason == "rate limit"
    assert caught.value.wait > 9
    split.acquire("other", max_wait=1)  # status checks are not held up by creates


def test_a_held_slot_is_used_by_the_next_call(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    paced = limiter(url, rpm=6)
    paced.acquire("other", max_wait=1, hold=True)
    assert paced.acquire("other", max_wait=0) == 0.0  # the held slot, no second reservation
    with pytest.raises(Throttled):
        paced.acquire("other", max_wait=1)
