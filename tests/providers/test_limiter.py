"""The channel limiter across several OS processes, against the real Redis server."""

from __future__ import annotations

import itertools
import math
import multiprocessing
import time

import pytest
import redis
from django.conf import settings

from workspace.providers.limiter import (
    BOOKING_WINDOW_SLOTS,
    SAFETY,
    Booking,
    ChannelLimiter,
    Throttled,
)

RPM = 600  # an interval of ~101 ms keeps the test short


def limiter(
    url: str, *, rpm: int = RPM, creates: int | None = None, follow_ups: float = 0.0
) -> ChannelLimiter:
    return ChannelLimiter(
        redis.Redis.from_url(url),
        channel_id=7,
        requests_per_minute=rpm,
        creates_per_minute=creates,
        follow_ups_per_create=follow_ups,
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
    # The first caller found the channel idle and went at once; the rest follow on the grid.
    assert slots[1] - slots[0] <= 2 * interval
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots[1:])]
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
    # Told to come back for the first slot after the pause.
    assert 1.5 < caught.value.wait <= 2.0 + 60 / (RPM * SAFETY)
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


def _calendar(connection: redis.Redis) -> list[tuple[str, float]]:
    return [
        (member.decode(), score)
        for member, score in connection.zrange("reelhouse:channel:7:slots", 0, -1, withscores=True)
    ]


def _is_create_slot(slot_us: float, interval_us: int, share: float) -> bool:
    k = round(slot_us / interval_us)
    return math.floor(k * share) > math.floor((k - 1) * share)


def _create_lane(url: str, count: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    # A dispatch lane with endless work: each create books its check and video download.
    own = limiter(url, follow_ups=4.0)
    pid = multiprocessing.current_process().pid
    sent = []
    for n in range(count):
        assert own.take_now("create", max_wait=5, booking=Booking(f"{pid}-{n}", 30.0, 2)) == 0.0
        own.acquire("create", max_wait=5)
        assert own.last_slot_at is not None
        sent.append(own.last_slot_at)
    results.put(sent)


def test_creates_take_only_their_share_of_slots_and_book_distinct_follow_up_slots(
    redis_conn,
) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    share = limiter(url, follow_ups=4.0).create_share()
    interval_us = round(limiter(url).interval_ms("other") * 1000)
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    lanes = [context.Process(target=_create_lane, args=(url, 8, results)) for _ in range(3)]
    for process in lanes:
        process.start()
    creates = sorted(round(slot * 1e6) for _ in lanes for slot in results.get(timeout=60))
    for process in lanes:
        process.join(timeout=10)
        assert process.exitcode == 0
    # Three lanes wanting every slot get one slot in 1 + 4 (a little more: the headroom) ...
    assert len(creates) == 24
    assert all(_is_create_slot(slot, interval_us, share) for slot in creates)
    gaps = [(later - earlier) / interval_us for earlier, later in itertools.pairwise(creates)]
    assert set(round(gap) for gap in gaps) <= {4, 5}
    # ... and every create booked two follow-up slots of its own, none shared with anything.
    booked = [score for member, score in _calendar(redis_conn) if "|" in member]
    assert len(booked) == 48
    assert len(set(booked) | set(creates)) == 48 + 24
    # Bookings go to slots creates do not use whenever one is free near the render's end.
    assert sum(1 for slot in booked if _is_create_slot(slot, interval_us, share)) <= 4


def test_an_owner_claims_its_booking_and_nobody_else_can_take_it_in_time(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    interval = 60 / (RPM * SAFETY)
    lane = limiter(url, follow_ups=4.0)
    assert lane.take_now("create", max_wait=1, booking=Booking("video-1", 0.5, 2)) == 0.0
    lane.acquire("create", max_wait=1)
    assert lane.last_slot_at is not None
    state = lane.state(owner="video-1")
    assert state.next_booking_at is not None
    check_slot = state.next_booking_at
    # The booking lies after the render's expected end, within a few slots of it.
    assert (
        lane.last_slot_at + 0.5
        <= check_slot
        <= lane.last_slot_at + 0.5 + (BOOKING_WINDOW_SLOTS + 1) * interval
    )
    # A status check of another video asking for any slot up to then never gets those two.
    other = limiter(url)
    taken = []
    while True:
        try:
            other.acquire("other", max_wait=0.0, hold=True)
        except Throttled:
            break
        assert other.last_slot_at is not None
        taken.append(other.last_slot_at)
        other.give_back()
        redis_conn.zadd("reelhouse:channel:7:slots", {f"{round(taken[-1] * 1e6)}": taken[-1] * 1e6})
        if taken[-1] > check_slot + 2 * interval:
            break
    assert all(abs(slot - check_slot) > interval / 2 for slot in taken)
    # The owner's check and then its download get exactly the booked slots.
    owner = limiter(url).owned_by("video-1")
    owner.acquire("other", max_wait=5)
    assert owner.last_slot_at == pytest.approx(check_slot, abs=1e-6)
    owner.acquire("other", max_wait=5)
    assert owner.last_slot_at is not None
    assert owner.last_slot_at > check_slot
    # Its bookings used up, the owner's next call is an ordinary follow-up.
    assert owner.state().next_booking_at is None


def test_a_booking_whose_owner_is_late_goes_to_whoever_asks(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    slow = limiter(url, rpm=60, follow_ups=4.0)  # a slot a second, tau half a second
    first = slow.book("late-video", after=0.0, count=1)
    assert first is not None
    booked_at = slow.state(owner="late-video").next_booking_at
    assert booked_at is not None
    # Nobody claims it; once its time is well past, the slot is free for the next caller
    # instead of going unused (the owner would have to send late, crowding the next slot).
    while slow.state().now < booked_at + 0.3:
        time.sleep(0.05)
    other = limiter(url, rpm=60)
    if other.state().now < booked_at + 0.5:  # still within the slot's lateness allowance
        assert other.acquire("other", max_wait=0.1) == 0.0
        assert other.last_slot_at is not None
        assert other.last_slot_at < booked_at + 0.5
    # The owner, when it comes, takes an ordinary slot.
    late = limiter(url, rpm=60).owned_by("late-video")
    late.acquire("other", max_wait=3)
    assert late.last_slot_at is not None
    assert late.last_slot_at > booked_at


def test_released_bookings_and_a_given_back_slot_are_free_again(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    lane = limiter(url, rpm=6, follow_ups=4.0)  # a slot every ~10 s
    assert lane.take_now("create", max_wait=60, booking=Booking("g", 30.0, 2)) == 0.0
    assert len(_calendar(redis_conn)) == 3
    # The candidate was taken from under the lane: slot and bookings go back together.
    assert lane.give_back()
    assert _calendar(redis_conn) == []
    assert lane.book("g", after=30.0, count=2) is not None
    assert len(_calendar(redis_conn)) == 2
    # The job failed at the provider: the download it will never make frees its slot.
    lane.release("g")
    assert _calendar(redis_conn) == []


def test_a_follow_up_goes_before_every_create_not_yet_taken(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    lane = limiter(url, rpm=6, follow_ups=4.0)  # a slot every ~10 s; creates one in five
    # A lane holds the next create slot (about to send)...
    assert lane.take_now("create", max_wait=60) == 0.0
    held = lane.held_in("create")
    assert held is not None
    # ...and a status check asking now gets the slot free now, whatever creates wait behind.
    check = limiter(url, rpm=6)
    assert check.acquire("other", max_wait=0.5) == 0.0
    # The next create slot is one in five away; a create never takes a follow-up's slot.
    assert limiter(url, rpm=6, follow_ups=4.0).take_now("create", max_wait=0.0) > 9


def test_a_held_create_slot_sleeps_until_its_time(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    lane = limiter(url, rpm=600, follow_ups=4.0)
    assert lane.take_now("create", max_wait=5) == 0.0
    slot = lane.last_slot_at
    lane.acquire("create", max_wait=0)
    # The create went at its own slot, no earlier (a second slot was never taken).
    assert lane.state().now >= slot  # type: ignore[operator]
    assert [score / 1e6 for _, score in _calendar(redis_conn)] == [pytest.approx(slot, abs=1e-6)]


def test_every_caller_sees_the_dispatchers_share_of_create_slots(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    interval_us = round(limiter(url).interval_ms("other") * 1000)
    lane = limiter(url, follow_ups=4.0)
    assert lane.take_now("create", max_wait=1) == 0.0
    # A status check's limiter knows nothing of follow-ups per create, yet books around the
    # dispatcher's create slots, not on them.
    check = limiter(url)
    assert check.book("video", after=5.0, count=4) is not None
    booked = [score for member, score in _calendar(redis_conn) if "|" in member]
    assert len(booked) == 4
    assert not any(_is_create_slot(slot, interval_us, 0.2) for slot in booked)
