"""Fair dispatch, caps and what a waiting member is told."""

from __future__ import annotations

import httpx
import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from workspace.generations.dispatch import channel_dispatch_once, follow_up_costs
from workspace.generations.models import Generation, Status
from workspace.generations.standings import queue_standings
from workspace.generations.submission import generation_submit
from workspace.projects.models import Role
from workspace.projects.services import membership_add
from workspace.providers.limiter import Throttled
from workspace.providers.services import limiter_for_channel

pytestmark = pytest.mark.django_db(transaction=True)


def queue(project, user, count: int, prefix: str) -> list[Generation]:  # type: ignore[no-untyped-def]
    return [
        generation_submit(
            project=project,
            user=user,
            model="sora-2",
            prompt=f"{prefix} {n}",
            size="1280x720",
            seconds=4,
        )
        for n in range(count)
    ]


def dispatch(channel) -> Generation | None:  # type: ignore[no-untyped-def]
    return channel_dispatch_once(
        channel=channel, limiter=limiter_for_channel(channel=channel), max_wait=5
    )


@pytest.fixture
def light(project, owner) -> User:  # type: ignore[no-untyped-def]
    user = User.objects.create_user("lena", password="x")
    membership_add(project=project, username="lena", role=Role.EDITOR, actor=owner)
    return user


def test_a_light_member_is_not_stuck_behind_a_heavy_one(
    project, channel, teammate, light, simulator
) -> None:  # type: ignore[no-untyped-def]
    heavy_jobs = queue(project, teammate, 20, "heavy")
    first = dispatch(channel)
    assert first == heavy_jobs[0]
    light_job = queue(project, light, 1, "light")[0]
    # The light member's first job takes the very next slot.
    assert dispatch(channel) == light_job
    order = [dispatch(channel) for _ in range(3)]
    assert order == heavy_jobs[1:4]
    assert simulator.counters()["creates"] == 5


def test_round_robin_by_count_between_backlogged_members(
    project, channel, teammate, light, simulator
) -> None:  # type: ignore[no-untyped-def]
    queue(project, teammate, 4, "tariq")
    queue(project, light, 4, "lena")
    authors = [dispatch(channel).created_by.username for _ in range(6)]  # type: ignore[union-attr]
    assert authors == ["tariq", "lena", "tariq", "lena", "tariq", "lena"]


def test_caps_hold_work_back_and_say_why(project, channel, teammate, light, simulator) -> None:  # type: ignore[no-untyped-def]
    channel.member_max_in_flight = 1
    channel.max_in_flight = 2
    channel.save()
    tariq_jobs = queue(project, teammate, 3, "tariq")
    lena_jobs = queue(project, light, 2, "lena")
    assert dispatch(channel) == tariq_jobs[0]
    assert dispatch(channel) == lena_jobs[0]  # tariq is at his own cap
    assert dispatch(channel) is None  # the team is at the channel's cap
    waiting = {str(g.pk) for g in tariq_jobs[1:] + lena_jobs[1:]}
    standings = queue_standings(channel=channel, generation_ids=waiting)
    assert sorted(s.position for s in standings.values()) == [1, 2, 3]
    assert "You already have 1 videos generating" in standings[str(tariq_jobs[1].pk)].reason
    assert all(s.eta is not None for s in standings.values())


def test_a_paused_channel_says_until_when(project, channel, teammate, simulator) -> None:  # type: ignore[no-untyped-def]
    waiting = queue(project, teammate, 2, "x")
    limiter_for_channel(channel=channel).pushback(30)
    standings = queue_standings(channel=channel, generation_ids={str(g.pk) for g in waiting})
    assert "asked us to pause" in standings[str(waiting[0].pk)].reason
    assert [standings[str(g.pk)].position for g in waiting] == [1, 2]


def test_an_exhausted_window_pauses_before_a_429_is_earned(
    project, channel, teammate, simulator
) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(rpm_limit=1, time_scale=1.0)
    first, second = queue(project, teammate, 2, "burst")
    assert dispatch(channel) == first
    # The answer said "0 requests left in this window": the whole channel waits for it.
    with pytest.raises(Throttled):
        dispatch(channel)
    assert Generation.objects.get(pk=second.pk).status == Status.QUEUED
    assert simulator.counters()["rate_limited_429"] == 0


def test_a_429_pauses_the_channel_and_the_job_waits_without_failing(
    project, channel, teammate, simulator
) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(rpm_limit=2, time_scale=1.0)
    first, second = queue(project, teammate, 2, "burst")
    assert dispatch(channel) == first
    # Someone else using the same key spends the window's last request behind our back.
    httpx.get(f"{simulator.url}/v1/videos", headers={"Authorization": "Bearer other"})
    assert dispatch(channel) == second
    second.refresh_from_db()
    assert second.status == Status.QUEUED
    assert second.submit_attempts == 0  # waiting is not a failed attempt
    assert second.error_class == "rate_limited"
    assert limiter_for_channel(channel=channel).paused_for() > 0
    assert simulator.counters()["rate_limited_429"] == 1


def test_a_lane_that_finds_nothing_to_send_takes_no_slot(
    project, channel, teammate, simulator, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from workspace.generations import dispatch as dispatch_module

    channel.requests_per_minute = 6  # one slot every ~10 s: a wasted one would show
    channel.save()
    # The quick "is there work?" look said yes, but the work was gone by the time the lane
    # chose under the lock (canceled, taken by another lane).
    monkeypatch.setattr(dispatch_module, "_work_waiting", lambda channel: True)
    assert dispatch(channel) is None
    state = limiter_for_channel(channel=channel).state()
    assert state.next_slot_at <= state.now + 0.01
    # A candidate lost in a race after the slot was taken: the slot goes back unused.
    queue(project, teammate, 1, "raced")
    monkeypatch.setattr(Generation, "transition", lambda self, *args, **kwargs: False)
    assert dispatch(channel) is None
    state = limiter_for_channel(channel=channel).state()
    assert state.next_slot_at <= state.now + 0.01
    assert simulator.counters()["creates"] == 0


def test_a_due_follow_up_goes_before_every_create_not_yet_sent(
    project, channel, teammate, simulator
) -> None:  # type: ignore[no-untyped-def]
    channel.requests_per_minute = 120  # ~0.5 s apart
    channel.save()
    queue(project, teammate, 3, "backlog")
    lane = limiter_for_channel(channel=channel)
    assert channel_dispatch_once(channel=channel, limiter=lane, max_wait=5) is not None
    interval = lane.interval_ms("create") / 1000
    # The next create slot is not reserved by the waiting lane: a status check asking now
    # gets it, after at most the one slot the last create took.
    follow_up = limiter_for_channel(channel=channel)
    assert follow_up.acquire("other", max_wait=5) <= interval + 0.01
    assert lane.take_now("create") > interval * 0.9  # the lane waits behind the check


def test_the_in_flight_cap_counts_only_jobs_the_provider_is_rendering(
    project, channel, teammate, simulator
) -> None:  # type: ignore[no-untyped-def]
    channel.max_in_flight = 1
    channel.member_max_in_flight = 1
    channel.save()
    first, second = queue(project, teammate, 2, "cap")
    assert dispatch(channel) == first
    assert dispatch(channel) is None  # rendering: it holds the provider's only place
    # Finished at the provider, its files being copied: the provider no longer counts it.
    Generation.objects.filter(pk=first.pk).update(status=Status.DOWNLOADING)
    standing = queue_standings(channel=channel, generation_ids={str(second.pk)})[str(second.pk)]
    assert "generating" not in standing.reason
    assert dispatch(channel) == second


def test_queue_eta_replays_the_slots_and_the_follow_up_plan(
    project, channel, teammate, settings
) -> None:  # type: ignore[no-untyped-def]
    from workspace.generations.render_times import check_margin_seconds, render_seconds_estimate
    from workspace.providers.limiter import FUTURE_SHARE, PLAN_BUCKET_SLOTS, PLAN_SPAN, SAFETY

    # Every request counts, 60 a minute, time 10x faster: a slot every 0.1 s. Each create
    # brings its status check and its video a render later, and the plan holds FUTURE_SHARE of
    # those slots for them: the first creates go in consecutive slots until the window of their
    # predicted end is full, then only as fast as it moves on. The estimate knows both.
    settings.REELHOUSE_TIME_SCALE = 10.0
    channel.requests_per_minute = 60
    channel.save()
    interval = 60 / (60 * SAFETY) / 10
    window_creates = int(FUTURE_SHARE * PLAN_BUCKET_SLOTS * (2 * PLAN_SPAN + 1) / 2)
    waiting = queue(project, teammate, 3 * window_creates, "eta")

    def etas() -> list[float]:
        standings = queue_standings(channel=channel, generation_ids={str(g.pk) for g in waiting})
        assert [standings[str(g.pk)].position for g in waiting] == list(
            range(1, len(waiting) + 1)
        )
        return [(standings[str(g.pk)].eta - timezone.now()).total_seconds() for g in waiting]  # type: ignore[operator]

    fresh = etas()
    assert fresh[1] - fresh[0] == pytest.approx(interval, abs=0.01)
    assert fresh[-1] > 1.5 * len(waiting) * interval
    # The plan as it stands in Redis counts: with the window of their ends already full (as
    # a dispatch lane fills it), even the first waits for it to move on.
    lane = limiter_for_channel(channel=channel, prompt_follow_ups=follow_up_costs(channel)[0])
    render = render_seconds_estimate(channel=channel, model="sora-2", seconds=4)
    while lane.take_now("create", ahead=render + check_margin_seconds(render)) == 0.0:
        lane.give_back()
    crowded = etas()
    assert crowded[0] > fresh[0] + 2 * interval
    assert crowded[-1] > fresh[-1]


def test_queue_eta_waits_for_a_place_at_the_provider(
    project, channel, teammate, simulator
) -> None:  # type: ignore[no-untyped-def]
    channel.requests_per_minute = 60
    channel.max_in_flight = 1
    channel.save()
    waiting = queue(project, teammate, 3, "cap")
    standings = queue_standings(channel=channel, generation_ids={str(g.pk) for g in waiting})
    first, second = standings[str(waiting[0].pk)], standings[str(waiting[1].pk)]
    render = channel.catalog.get("sora-2").typical_render_seconds  # type: ignore[union-attr]
    assert first.eta is not None and second.eta is not None
    assert (first.eta - timezone.now()).total_seconds() < 2
    # With one place at the provider, the second waits for the first render to end.
    assert (second.eta - timezone.now()).total_seconds() >= render


def test_a_due_status_check_leaves_rqs_whole_second_schedule_on_time(channel, redis_conn) -> None:  # type: ignore[no-untyped-def]
    import time
    from datetime import timedelta

    from workspace.core.rq import get_queue
    from workspace.generations import jobs
    from workspace.generations.lanes import follow_up_due, follow_ups_release

    queue = get_queue()
    for name in ("poll-due-0", "poll-later-0"):
        # The safety net: RQ's scheduler would release these in half a minute.
        queue.enqueue_in(timedelta(seconds=30), jobs.generation_poll_job, name, 0, job_id=name)
    now = time.time()
    follow_up_due(channel_id=channel.pk, job_id="poll-due-0", due=now - 0.01)
    follow_up_due(channel_id=channel.pk, job_id="poll-later-0", due=now + 60)
    assert follow_ups_release() == pytest.approx(now + 60)
    assert queue.job_ids == ["poll-due-0"]
    assert queue.scheduled_job_registry.get_job_ids() == ["poll-later-0"]
    follow_ups_release()
    assert queue.job_ids == ["poll-due-0"]  # released once, never twice


def test_a_kick_that_fails_never_breaks_the_step_that_made_it(channel, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from workspace.generations import lanes

    def broken(**kwargs):  # type: ignore[no-untyped-def]
        raise KeyError(b"created_at")  # what RQ raised deleting a lane cleaned up meanwhile

    monkeypatch.setattr(lanes, "channel_kick", broken)
    lanes.channel_kick_on_commit(channel_id=channel.pk)  # outside a transaction: now


def test_a_lane_with_only_retries_waiting_comes_back_when_the_first_is_due(
    project, channel, teammate, simulator
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from rq import Retry

    from workspace.generations.dispatch import channel_dispatch_lane

    (waiting,) = queue(project, teammate, 1, "retry later")
    Generation.objects.filter(pk=waiting.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=30)
    )
    # A kick made for that retry time was skipped while a lane ran; the lane must not just end.
    again = channel_dispatch_lane(channel_id=channel.pk, lane=0)
    assert isinstance(again, Retry)
    assert 29 <= again.intervals[0] <= 31
