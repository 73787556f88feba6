"""Creates admitted by the future: the follow-up plan of a channel whose every request counts.

Against the real Redis server. One slot a second (60 a minute), and each create's slot is given
back at once, so every create finds its slot free and only the plan decides.
"""

from __future__ import annotations

import redis
from django.conf import settings

from workspace.providers.limiter import FUTURE_SHARE, PLAN_BUCKET_SLOTS, PLAN_SPAN, ChannelLimiter

RENDER = 30.0  # seconds from now to a create's predicted end


def limiter(*, follow_ups: float = 2.0, creates: int | None = None) -> ChannelLimiter:
    return ChannelLimiter(
        redis.Redis.from_url(settings.RQ_QUEUES["default"]["URL"]),
        channel_id=9,
        requests_per_minute=60,
        creates_per_minute=creates,
        prompt_follow_ups=follow_ups,
    )


def admitted(lane: ChannelLimiter, *, ahead: float = RENDER) -> bool:
    """Try one create; give its slot back, so the next try finds the slot free again."""
    taken = lane.take_now("create", ahead=ahead) == 0.0
    if taken:
        assert not lane.refused_by_plan
        assert lane.give_back()
    return taken


# What one plan window (the predicted end's bucket and PLAN_SPAN either side) may hold.
WINDOW_CAPACITY = FUTURE_SHARE * PLAN_BUCKET_SLOTS * (2 * PLAN_SPAN + 1)


def test_creates_go_only_while_their_follow_ups_fit_beside_those_planned(redis_conn) -> None:  # type: ignore[no-untyped-def]
    lane = limiter(follow_ups=2.0)
    fits = int(WINDOW_CAPACITY // 2.0)
    assert [admitted(lane) for _ in range(fits)] == [True] * fits
    # The next create's check and video would crowd the same few seconds a render from now:
    # it waits, although the slot is free...
    assert not admitted(lane)
    assert lane.refused_by_plan
    # ...and it took nothing: the free slot is there for a follow-up (or a poster).
    assert limiter().acquire("other", max_wait=0) == 0.0


def test_a_create_whose_future_has_room_goes_at_once(redis_conn) -> None:  # type: ignore[no-untyped-def]
    lane = limiter(follow_ups=2.0)
    while admitted(lane):
        pass
    # A longer render ends where nothing is planned yet: any free slot will do for it.
    assert admitted(lane, ahead=RENDER * 3)


def test_the_plan_counts_what_each_create_brings(redis_conn) -> None:  # type: ignore[no-untyped-def]
    heavy = limiter(follow_ups=WINDOW_CAPACITY / 2)
    assert admitted(heavy)
    assert admitted(heavy)
    assert not admitted(heavy)
    assert not admitted(limiter(follow_ups=1.0))  # the window is full for anyone


def test_no_plan_without_a_shared_bucket_or_a_predicted_end(redis_conn) -> None:  # type: ignore[no-untyped-def]
    own_bucket = limiter(follow_ups=4.0, creates=60)  # follow-ups do not compete with creates
    assert all(admitted(own_bucket) for _ in range(10))
    unplanned = limiter(follow_ups=4.0)
    assert all(admitted(unplanned, ahead=0.0) for _ in range(10))
    nothing_follows = limiter(follow_ups=0.0)
    assert all(admitted(nothing_follows) for _ in range(10))


def test_a_create_bringing_more_than_a_window_holds_still_goes_into_an_empty_one(redis_conn) -> None:  # type: ignore[no-untyped-def]
    # A channel whose recent videos needed many status checks each (the first video of a new
    # channel, polled at its provider's pace) must not stop creating: an empty window takes
    # one such create, which then fills it.
    greedy = limiter(follow_ups=WINDOW_CAPACITY * 3)
    assert admitted(greedy)
    assert not admitted(greedy)
    assert not admitted(limiter(follow_ups=1.0))
    # Its predicted end lies elsewhere: that window is empty, so it goes.
    assert admitted(greedy, ahead=RENDER * 3)


def test_a_window_s_follow_ups_are_spread_over_its_buckets_not_piled_in_one(redis_conn) -> None:  # type: ignore[no-untyped-def]
    lane = limiter(follow_ups=2.0)
    while admitted(lane):
        pass
    plan = lane._redis.hgetall("reelhouse:channel:9:follow-up-plan")
    per_bucket = FUTURE_SHARE * PLAN_BUCKET_SLOTS
    # Every bucket of the window is full, none over: the burst a render later is at most what
    # the slots of each bucket can send.
    assert len(plan) == 2 * PLAN_SPAN + 1
    assert all(float(v) <= per_bucket + 1e-6 for v in plan.values())
    assert sum(float(v) for v in plan.values()) > WINDOW_CAPACITY - 2.0


def test_follow_ups_that_came_leave_the_plan_to_new_creates(redis_conn) -> None:  # type: ignore[no-untyped-def]
    lane = limiter(follow_ups=2.0)
    owners = []
    for n in range(20):
        if lane.take_now("create", ahead=RENDER, owner=f"video-{n}") != 0.0:
            break
        owners.append(f"video-{n}")
        lane.acquire("create", max_wait=0)  # sent: the slot is used, the plan keeps its place
        lane._redis.delete("reelhouse:channel:9:tat-us")  # and the next slot is free at once
    assert owners
    assert not admitted(lane)  # the window of their predicted ends is full
    # Their renders ended early and their checks saw it: the window is free again.
    assert all(lane.plan_forget(owner) for owner in owners)
    assert not lane.plan_forget(owners[0])  # once
    assert admitted(lane)


def test_a_create_given_back_unsent_leaves_nothing_planned(redis_conn) -> None:  # type: ignore[no-untyped-def]
    lane = limiter(follow_ups=WINDOW_CAPACITY)  # one create fills the window
    assert lane.take_now("create", ahead=RENDER, owner="video-1") == 0.0
    assert lane.give_back()  # chosen, then canceled before it went
    assert lane.take_now("create", ahead=RENDER, owner="video-2") == 0.0


def test_the_python_rule_places_follow_ups_as_the_redis_one_does(redis_conn) -> None:  # type: ignore[no-untyped-def]
    # Queue estimates replay the plan with plan_place; it must decide and place as _RESERVE.
    from workspace.providers.limiter import plan_place

    for _ in range(3):  # the predicted end may cross into the next bucket mid-way: again
        redis_conn.delete("reelhouse:channel:9:follow-up-plan")
        lane = limiter(follow_ups=2.0)
        assert admitted(lane)
        first = lane.plan_load()
        target = max(first, key=first.__getitem__)  # its own bucket fills first
        admitted_in_redis = 1
        while admitted(lane):
            admitted_in_redis += 1
        in_redis = lane.plan_load()
        if len(in_redis) <= 2 * PLAN_SPAN + 1:
            break
    mirror: dict[int, float] = {}
    placed = 0
    while plan_place(
        mirror, target=target, current=target - 100, demand=2.0, cap=lane.plan_bucket_capacity()
    ):
        placed += 1
    assert placed == admitted_in_redis
    assert mirror.keys() == in_redis.keys()
    assert all(abs(mirror[b] - in_redis[b]) < 1e-6 for b in mirror)
