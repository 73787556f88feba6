"""What members and admins see of the queue: positions, reasons, forecasts, pacing and the
limit that binds a channel now."""

from __future__ import annotations

import heapq
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from workspace.generations.dispatch import (
    IN_FLIGHT,
    creates_share_of_slots,
    fair_queue,
    follow_up_costs,
    follow_ups_per_create,
)
from workspace.generations.following import EXTRAS_MAX_DEFER_SECONDS, extras_ages
from workspace.generations.models import Generation, Status
from workspace.generations.render_times import (
    check_margin_seconds,
    expected_render_seconds,
    render_seconds_estimate,
)
from workspace.providers.limiter import SAFETY, plan_place
from workspace.providers.models import Channel
from workspace.providers.services import (
    channel_defers_extras,
    circuit_for_channel,
    limiter_for_channel,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueStanding:
    position: int  # 1 = next to go
    reason: str
    eta: datetime | None
    halted: bool = False


@dataclass(frozen=True)
class Pacing:
    """What paces a channel's creates right now, in real seconds."""

    create_interval: float  # between creates under a backlog, follow-ups' share included
    request_interval: float  # between any two requests in the bucket creates draw from
    follow_ups_per_create: float  # status checks and downloads each create costs
    next_slot_in: float
    paused_until: float | None  # unix time


def channel_pacing(*, channel: Channel) -> Pacing:

    scale = settings.REELHOUSE_TIME_SCALE
    request_interval = 60.0 / (channel.requests_per_minute * SAFETY) / scale
    follow_ups = follow_ups_per_create(channel)
    if channel.creates_per_minute:
        # Creates have their own bucket; follow-ups use the other one and take nothing from it.
        bucket_interval = 60.0 / (channel.creates_per_minute * SAFETY) / scale
        create_interval = max(bucket_interval, request_interval * follow_ups)
    else:
        # One bucket: every video sent later costs its follow-ups' slots too, and they go first
        # (its poster and spritesheet only where they do not wait for spare slots).
        create_interval = request_interval / creates_share_of_slots(channel)
        bucket_interval = request_interval
    try:
        state = limiter_for_channel(channel=channel).state()
        slot_at = state.next_create_slot_at if channel.creates_per_minute else state.next_slot_at
        next_slot_in, paused_until = max(0.0, slot_at - state.now), state.paused_until
        if paused_until is not None:
            paused_until = time.time() + (paused_until - state.now)
    except Exception:  # Redis down: still show positions, without the live limiter facts
        logger.warning("limiter state unavailable for channel %s", channel.pk, exc_info=True)
        next_slot_in, paused_until = 0.0, None
    return Pacing(create_interval, bucket_interval, follow_ups, next_slot_in, paused_until)


@dataclass
class _ReplayStart:
    """What a queue replay starts from: the render-time model (memoised per model and length),
    when each running job's check will see its end (seconds from now), the team's and each
    member's places at the provider as heaps of when they free, and the queued jobs' shapes."""

    render: Callable[[str, int], float]
    ends: list[float]
    running_all: list[float]
    running_member: dict[int, list[float]]
    shapes: dict[str, tuple[str, int]]


def _replay_start(channel: Channel, *, interval: float) -> _ReplayStart:
    renders: dict[tuple[str, int], float] = {}

    def render(model: str, seconds: int) -> float:
        if (model, seconds) not in renders:
            renders[model, seconds] = render_seconds_estimate(
                channel=channel, model=model, seconds=seconds
            )
        return renders[model, seconds]

    now = timezone.now()
    start = _ReplayStart(render, [], [], {}, {})
    for member, sent, model, seconds in Generation.objects.filter(
        channel=channel, status__in=IN_FLIGHT
    ).values_list("created_by_id", "submitted_at", "model", "seconds"):
        expected = render(model, seconds)
        age = (now - sent).total_seconds() if sent else 0.0
        # Its check sees the end just after it; its place frees after the check's slot.
        end = max(0.0, expected - age) + check_margin_seconds(expected)
        start.ends.append(end)
        heapq.heappush(start.running_all, end + interval)
        heapq.heappush(start.running_member.setdefault(member, []), end + interval)
    start.shapes.update(
        (str(gid), (model, seconds))
        for gid, model, seconds in Generation.objects.filter(
            channel=channel, status=Status.QUEUED
        ).values_list("id", "model", "seconds")
    )
    return start


def _forecast(
    channel: Channel, ordered: list[tuple[str, int, Any]], pacing: Pacing
) -> list[float]:
    if channel.creates_per_minute:
        return _forecast_own_bucket(channel, ordered, pacing)
    try:
        return _forecast_shared(channel, ordered, pacing)
    except redis.RedisError:  # the plan and the extras live in Redis: the simpler model then
        logger.warning("plan unavailable for channel %s", channel.pk, exc_info=True)
        return _forecast_own_bucket(channel, ordered, pacing)


# A replay longer than this many slots (a backlog of thousands) stops; the rest of the queue
# is forecast at the steady pace from there.
REPLAY_MAX_SLOTS = 20_000


def _forecast_shared(
    channel: Channel, ordered: list[tuple[str, int, Any]], pacing: Pacing
) -> list[float]:
    """Seconds from now until each queued generation (in dispatch order) is sent, where every
    request counts against one limit: dispatch replayed slot by slot.

    Each slot goes, as the limiter and the lanes give it, to a status check or video download
    that is due (a running job's expected end), else to a poster or spritesheet that has waited
    too long, else to the next create if its place at the provider is free and the follow-ups
    it brings fit the plan a render later (the limiter's rule, from the plan as it stands in
    Redis), else to a waiting poster or spritesheet. So the start of a backlog (creates only,
    as far as the plan lets them), the steady state and the posters are all in the estimate,
    not one average pace.
    """
    scale = settings.REELHOUSE_TIME_SCALE
    interval = pacing.request_interval
    prompt, extras_each = follow_up_costs(channel)
    defers = channel_defers_extras(channel=channel)
    limiter = limiter_for_channel(channel=channel)
    width = limiter.plan_bucket_seconds()
    cap = limiter.plan_bucket_capacity()
    clock = time.time()
    plan = limiter.plan_load()
    max_defer = EXTRAS_MAX_DEFER_SECONDS / scale

    now = timezone.now()
    start = _replay_start(channel, interval=interval)
    render, running_all, running_member = start.render, start.running_all, start.running_member
    due: list[tuple[float, float]] = [(end, prompt) for end in start.ends]  # (when, how many)
    heapq.heapify(due)
    # Posters and spritesheets waiting: (when each goes ahead of creates, how many).
    extras: deque[list[float]] = deque(
        [max(0.0, waited_since + max_defer - clock), 1.0] for waited_since in extras_ages(channel)
    )
    shapes = start.shapes

    def admit(at: float, ahead: float) -> bool:
        return plan_place(
            plan,
            target=int((clock + at + ahead) // width),
            current=int((clock + at) // width),
            demand=prompt,
            cap=cap,
        )

    t = pacing.next_slot_in
    if pacing.paused_until is not None:
        t = max(t, pacing.paused_until - clock)
    owed = 0.0
    forecast: list[float] = []
    slots = 0
    index = 0
    while index < len(ordered) and slots < REPLAY_MAX_SLOTS:
        slots += 1
        while due and due[0][0] <= t:
            ended, amount = heapq.heappop(due)
            owed += amount
            if defers:
                extras.append([ended + max_defer, extras_each])
            else:
                owed += extras_each
        if owed >= 0.5:
            owed = max(0.0, owed - 1)
        elif extras and extras[0][0] <= t:
            _take_extra(extras)
        else:
            key, member, next_attempt_at = ordered[index]
            earliest = 0.0
            if next_attempt_at is not None:
                earliest = (next_attempt_at - now).total_seconds()
            mine = running_member.setdefault(member, [])
            places = ((running_all, channel.max_in_flight), (mine, channel.member_max_in_flight))
            for heap, limit in places:
                while heap and heap[0] <= t:
                    heapq.heappop(heap)
                if len(heap) >= limit:
                    earliest = max(earliest, heap[0])
            model, seconds = shapes.get(key, ("", 0))
            expected = render(model, seconds)
            ahead = expected + check_margin_seconds(expected)
            if earliest <= t and admit(t, ahead):
                forecast.append(t)
                index += 1
                heapq.heappush(due, (t + ahead, prompt))
                heapq.heappush(running_all, t + ahead + interval)
                heapq.heappush(mine, t + ahead + interval)
            elif extras:
                _take_extra(extras)
            elif earliest > t:
                # Nothing can use the slots until a place frees, a retry falls due or a
                # check is due: go straight there.
                later = min(earliest, due[0][0] if due else earliest)
                t = max(t, later - interval)
        t += interval
    # Beyond the replay: the steady pace.
    while len(forecast) < len(ordered):
        t += pacing.create_interval
        forecast.append(t)
    return forecast


def _take_extra(extras: deque[list[float]]) -> None:
    extras[0][1] -= 1
    if extras[0][1] <= 0:
        extras.popleft()


def _forecast_own_bucket(
    channel: Channel, ordered: list[tuple[str, int, Any]], pacing: Pacing
) -> list[float]:
    """Seconds from now until each queued generation (in dispatch order) is sent.

    Replays dispatch: the next free create slot, then one create interval after another (the
    follow-ups of finished videos take their share first), while the team's and each member's
    places at the provider free up as running jobs reach their expected end (the render-time
    model) and our check sees it.
    """

    now = timezone.now()
    start = _replay_start(channel, interval=pacing.request_interval)
    render, running_all, running_member = start.render, start.running_all, start.running_member
    shapes = start.shapes

    def freed(finish: float, expected: float) -> float:
        # A place frees when our check sees the end: just after it, after the check's slot.
        return finish + check_margin_seconds(expected) + pacing.request_interval

    t_slot = pacing.next_slot_in
    if pacing.paused_until is not None:
        t_slot = max(t_slot, pacing.paused_until - time.time())
    forecast: list[float] = []
    for key, member, next_attempt_at in ordered:
        t = t_slot
        if next_attempt_at is not None:
            t = max(t, (next_attempt_at - now).total_seconds())
        for heap, cap in (
            (running_all, channel.max_in_flight),
            (running_member.setdefault(member, []), channel.member_max_in_flight),
        ):
            while heap and heap[0] <= t:
                heapq.heappop(heap)
            if len(heap) >= cap:
                t = max(t, heapq.heappop(heap))
        for heap in (running_all, running_member[member]):
            while heap and heap[0] <= t:
                heapq.heappop(heap)
        forecast.append(t)
        model, seconds = shapes.get(key, ("", 0))
        expected = render(model, seconds)
        free_at = freed(t + expected, expected)
        heapq.heappush(running_all, free_at)
        heapq.heappush(running_member[member], free_at)
        t_slot = t + pacing.create_interval
    return forecast


def queue_standings(*, channel: Channel, generation_ids: set[str]) -> dict[str, QueueStanding]:
    """Where each queued generation stands, why it waits and when it should be sent.

    The estimate replays dispatch with the channel's real pacing (the limiter's next slot and
    interval, the follow-ups that go first), the in-flight caps and the render-time model.
    """
    if not generation_ids:
        return {}
    now = timezone.now()
    ordered = fair_queue(channel, eligible_only=False)
    running = dict(
        Generation.objects.filter(channel=channel, status__in=IN_FLIGHT)
        .values("created_by")
        .annotate(n=Count("id"))
        .values_list("created_by", "n")
    )
    in_flight = sum(running.values())
    pacing = channel_pacing(channel=channel)
    paused_until = pacing.paused_until
    last = max((i for i, row in enumerate(ordered) if row[0] in generation_ids), default=-1)
    forecast = _forecast(channel, ordered[: last + 1], pacing)
    standings: dict[str, QueueStanding] = {}
    for index, (key, member_id, next_attempt_at) in enumerate(ordered[: last + 1]):
        if key not in generation_ids:
            continue
        if channel.halted_at is not None:
            reason = "The channel is halted until an admin fixes it: " + channel.halted_reason
        elif paused_until is not None:
            reason = "The provider asked us to pause; sending resumes at {until}."
        elif next_attempt_at and next_attempt_at > now:
            reason = "Retrying after a temporary provider error."
        elif running.get(member_id, 0) >= channel.member_max_in_flight:
            reason = (
                f"You already have {channel.member_max_in_flight} videos generating; "
                "this one starts when one of them finishes."
            )
        elif in_flight >= channel.max_in_flight:
            reason = (
                f"The team has {channel.max_in_flight} videos generating, the most the "
                "channel allows at once."
            )
        else:
            reason = "Waiting for the channel's rate limit ({rpm} requests a minute)."
        until = (
            timezone.localtime(
                datetime.fromtimestamp(paused_until, tz=timezone.get_current_timezone())
            )
            if paused_until
            else None
        )
        standings[key] = QueueStanding(
            position=index + 1,
            halted=channel.halted_at is not None,
            reason=reason.format(
                until=until.strftime("%H:%M:%S") if until else "",
                rpm=channel.creates_per_minute or channel.requests_per_minute,
            ),
            eta=None if channel.halted_at is not None else now + timedelta(seconds=forecast[index]),
        )
    return standings


def channel_binding_limit(*, channel: Channel) -> str:
    """Which limit holds the channel's throughput back right now, in words for the admin."""

    if channel.pk is None:
        return "-"
    if channel.halted_at is not None:
        return f"Halted: nothing is sent until an admin resumes it ({channel.halted_reason})."
    try:
        pacing = channel_pacing(channel=channel)
        circuit = circuit_for_channel(channel=channel).state().state
    except Exception:
        return "unknown (Redis unreachable)"
    if pacing.paused_until is not None:
        left = max(0.0, pacing.paused_until - time.time())
        return f"Provider pause: the provider asked us to wait; {left:.0f} s more."
    if circuit == "open":
        return "Circuit open: most recent calls failed; sending resumes after a probe."
    scale = settings.REELHOUSE_TIME_SCALE
    in_flight = Generation.objects.filter(channel=channel, status__in=IN_FLIGHT).count()
    waiting = Generation.objects.filter(channel=channel, status=Status.QUEUED).count()
    rate_per_min = 60.0 / (pacing.create_interval * scale)
    model = (
        Generation.objects.filter(channel=channel)
        .order_by("-created_at")
        .values_list("model", flat=True)
        .first()
    )
    learned = expected_render_seconds(channel_id=channel.pk, model=model) if model else None
    capacity = ""
    if learned:
        cap_per_min = channel.max_in_flight * 60.0 / (learned * scale)
        capacity = (
            f" Under a backlog: the request rate allows about {rate_per_min:.0f} videos a "
            f"minute, the in-flight cap about {cap_per_min:.0f} ({channel.max_in_flight} at "
            f"once, {learned * scale:.0f} s per render), so "
            + ("the in-flight cap" if cap_per_min < rate_per_min else "requests per minute")
            + " binds."
        )
    if waiting and in_flight >= channel.max_in_flight:
        return (
            f"In-flight cap: {in_flight} of {channel.max_in_flight} generating; {waiting} queued "
            "wait for a place." + capacity
        )
    if waiting:
        limit = (
            f"{channel.creates_per_minute} creates a minute"
            if channel.creates_per_minute
            else f"{channel.requests_per_minute} requests a minute (status checks and "
            "downloads first)"
        )
        return f"Requests per minute: {waiting} queued are paced at {limit}." + capacity
    return (
        f"Nothing: no work waiting ({in_flight} of {channel.max_in_flight} generating)." + capacity
    )
