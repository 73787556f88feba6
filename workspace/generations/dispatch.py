"""Fair, paced dispatch of queued generations to their channel's provider.

The database is the queue of record. Redis carries only *dispatch lanes*: a few RQ jobs per
channel (``REELHOUSE_DISPATCH_LANES``) that each loop "wait for the next create slot from the
channel's limiter, then send the fairest waiting generation". The choice is made only once the
slot is in hand, so a job submitted while others wait competes for the very next slot.

Fairness is round-robin by count, least recently served first: the next slot goes to the member
whose last dispatch on this channel is oldest (never dispatched counts as oldest), and within a
member to their oldest request. Count rather than cost because the scarce resource the limiter
shares is provider requests, one per create whatever the video costs; spend is held fair by
budgets instead. A member with 200 queued generations therefore delays another member's first
generation by at most the slot already being used.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone
from rq import Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from workspace.core.rq import DISPATCH_QUEUE, FAILURE_TTL, get_queue, get_redis
from workspace.generations.models import DispatchTurn, Generation, Status
from workspace.generations.render_times import (
    check_margin_seconds,
    expected_render_seconds,
    render_seconds_estimate,
)
from workspace.providers.limiter import ChannelLimiter, Throttled
from workspace.providers.models import Channel

logger = logging.getLogger(__name__)

# What the provider counts against its concurrency: jobs it may be rendering. A job it finished
# (ours still downloading the files) no longer holds a place there, nor in our cap.
IN_FLIGHT = (Status.SUBMITTING, Status.IN_PROGRESS)
# A lane gives its worker back this often (plus a stagger per lane, so two lanes never step
# aside at once and leave slots unused), keeping jobs far below RQ's timeout and letting a
# deploy or a new lane count take effect.
LANE_SECONDS = 120.0
LANE_STAGGER_SECONDS = 15.0
# How long a lane sleeps in a worker for its slot before it reschedules itself instead.
LANE_MAX_WAIT = 5.0
_RETRY_FOREVER = 10**9


# --- Kicking lanes ------------------------------------------------------------------------------


def _lane_id(channel_id: int, lane: int) -> str:
    return f"dispatch-{channel_id}-{lane}"


def channel_kick(*, channel_id: int, delay: float = 0) -> int:
    """Make sure the channel's dispatch lanes run; returns how many were started.

    A lane that already exists (queued, scheduled or running) is left alone, so kicking is
    cheap and safe to do after every submission and every finished job.
    """
    from workspace.generations import jobs

    queue = get_queue(DISPATCH_QUEUE)
    if delay <= 0:
        _wake_lanes(channel_id)
    started = 0
    for lane in range(settings.REELHOUSE_DISPATCH_LANES):
        job_id = _lane_id(channel_id, lane)
        existing = _fetch_lane(job_id, queue.connection)
        if existing is not None and _lane_alive(existing):
            continue
        if existing is not None:
            # It may have ended (and been cleaned up) since the look above.
            with contextlib.suppress(NoSuchJobError, KeyError):
                existing.delete()
        options = {"job_id": job_id, "unique": True, "result_ttl": 0, "failure_ttl": FAILURE_TTL}
        try:
            if delay > 0:
                queue.enqueue_in(
                    timedelta(seconds=delay), jobs.channel_dispatch_job, channel_id, lane, **options
                )
            else:
                queue.enqueue(jobs.channel_dispatch_job, channel_id, lane, **options)
            started += 1
        except DuplicateJobError:
            pass  # another process started this lane a moment ago
    return started


# A running lane refreshes its heartbeat before every slot; one "started" without a fresh
# heartbeat lost its worker (e.g. SIGKILL), which RQ itself would only notice minutes later.
# The heartbeat outlives the longest wait and the slowest create a lane can be in.


def _heartbeat_key(job_id: str) -> str:
    return f"reelhouse:lane-heartbeat:{job_id}"


def _lane_beat(job_id: str) -> None:
    ttl = int(
        LANE_MAX_WAIT * 2 + settings.PROVIDER_READ_TIMEOUT + settings.PROVIDER_CONNECT_TIMEOUT
    )
    get_redis().set(_heartbeat_key(job_id), "1", ex=ttl)


def _lane_alive(job: Job) -> bool:
    status = job.get_status(refresh=False)
    if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return True
    if status != JobStatus.STARTED:
        return False
    return bool(get_redis().exists(_heartbeat_key(job.id)))


def _exists(job_id: str) -> bool:
    return bool(get_redis().exists(f"rq:job:{job_id}"))


def _fetch_lane(job_id: str, connection: Any) -> Job | None:
    if not _exists(job_id):
        return None
    try:
        return Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        # Deleted between the check and the fetch: RQ drops a finished lane at once
        # (result_ttl=0), and a concurrent kick deletes a dead one. Either way: no lane.
        return None


def channel_kick_on_commit(*, channel_id: int, delay: float = 0) -> None:
    """Kick the channel's lanes once the current transaction commits.

    What committed is the record (a queued generation, a freed slot); the kick only hurries it
    along. A kick that fails (Redis unreachable, a race in RQ) is logged, never raised into the
    request or job that committed: the recovery sweep kicks every channel with queued work.
    """

    def kick_channel_lanes() -> None:  # named: Django logs a failing callback by its name
        channel_kick(channel_id=channel_id, delay=delay)

    transaction.on_commit(kick_channel_lanes, robust=True)


# --- The follow-up clock -----------------------------------------------------------------------
# Status checks are scheduled in RQ as a safety net, and also listed here by when they are due.
# Running lanes release each one from RQ's schedule the moment it is due (RQ's own scheduler
# works in whole seconds), and wake when something changes instead of sleeping blind.

DUE_FOLLOW_UPS_KEY = "reelhouse:due-follow-ups"

_POP_DUE = """
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 200)
if #items > 0 then redis.call('ZREM', KEYS[1], unpack(items)) end
return items
"""


def _wake_key(channel_id: int) -> str:
    return f"reelhouse:channel:{channel_id}:wake"


def _wake_lanes(channel_id: int) -> None:
    connection = get_redis()
    with connection.pipeline() as pipeline:
        pipeline.lpush(_wake_key(channel_id), "1")
        pipeline.ltrim(_wake_key(channel_id), 0, 0)
        pipeline.expire(_wake_key(channel_id), 60)
        pipeline.execute()


def follow_up_due(*, channel_id: int, job_id: str, due: float) -> None:
    """Note that scheduled RQ job ``job_id`` (a status check) is due at unix time ``due``."""
    get_redis().zadd(DUE_FOLLOW_UPS_KEY, {job_id: due})
    _wake_lanes(channel_id)  # a sleeping lane may have planned to wake later than this


def follow_ups_release() -> float | None:
    """Move every due status check from RQ's schedule onto its queue; return the next due time.

    Removing the job from the schedule decides who enqueues it: if RQ's scheduler got there
    first, this does nothing.
    """
    connection = get_redis()
    queue = get_queue()
    registry = queue.scheduled_job_registry
    # Registering only hashes the text; Redis runs it by that hash (EVALSHA).
    due_ids = connection.register_script(_POP_DUE)(keys=[DUE_FOLLOW_UPS_KEY], args=[time.time()])
    for raw in due_ids:
        job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        if not connection.zrem(registry.key, job_id):
            continue
        try:
            queue._enqueue_job(Job.fetch(job_id, connection=connection))
        except NoSuchJobError:
            continue
    upcoming = connection.zrange(DUE_FOLLOW_UPS_KEY, 0, 0, withscores=True)
    return float(upcoming[0][1]) if upcoming else None


def _lane_wait(channel_id: int, seconds: float) -> None:
    """Sleep up to ``seconds``, releasing status checks as they fall due, until woken."""
    deadline = time.monotonic() + seconds
    while True:
        next_due = follow_ups_release()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        timeout = remaining if next_due is None else min(remaining, next_due - time.time())
        if timeout < 0.002:
            continue
        if get_redis().blpop([_wake_key(channel_id)], timeout=timeout):
            return


# --- Choosing the next generation --------------------------------------------------------------


def _eligible(channel: Channel, now: datetime) -> QuerySet[Generation]:
    busy_members = (
        Generation.objects.filter(channel=channel, status__in=IN_FLIGHT)
        .values("created_by")
        .annotate(running=Count("id"))
        .filter(running__gte=channel.member_max_in_flight)
        .values("created_by")
    )
    return (
        Generation.objects.filter(channel=channel, status=Status.QUEUED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .exclude(created_by__in=busy_members)
    )


def _turns(channel: Channel) -> dict[int, datetime]:
    return dict(
        DispatchTurn.objects.filter(channel=channel).values_list("member_id", "last_dispatched_at")
    )


def _members_by_turn(member_ids: set[int], turns: dict[int, datetime]) -> list[int]:
    # Never served first, then least recently served; ties by id for a stable order.
    return sorted(member_ids, key=lambda m: (m in turns, turns.get(m, _EPOCH), m))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def fair_queue(channel: Channel, *, eligible_only: bool = True) -> list[tuple[str, int, Any]]:
    """The channel's queued generations in the order dispatch will send them.

    Members take turns (least recently served first); each member's own requests go oldest
    first. Returns ``(generation id, member id, next_attempt_at)`` tuples.
    """
    now = timezone.now()
    source = (
        _eligible(channel, now)
        if eligible_only
        else Generation.objects.filter(channel=channel, status=Status.QUEUED)
    )
    rows = list(
        source.order_by("created_at", "id").values_list("id", "created_by_id", "next_attempt_at")
    )
    per_member: dict[int, list[tuple[str, int, Any]]] = {}
    for gid, member, next_attempt_at in rows:
        per_member.setdefault(member, []).append((str(gid), member, next_attempt_at))
    order = _members_by_turn(set(per_member), _turns(channel))
    ordered: list[tuple[str, int, Any]] = []
    depth = 0
    while len(ordered) < len(rows):
        for member in order:
            if depth < len(per_member[member]):
                ordered.append(per_member[member][depth])
        depth += 1
    return ordered


def _has_capacity(channel: Channel) -> bool:
    in_flight = Generation.objects.filter(channel=channel, status__in=IN_FLIGHT).count()
    return in_flight < channel.max_in_flight


def _work_waiting(channel: Channel) -> bool:
    if channel.halted_at is not None:
        return False
    return _has_capacity(channel) and _eligible(channel, timezone.now()).exists()


def _claim_next(channel: Channel, limiter: ChannelLimiter) -> tuple[Generation | None, float]:
    """Choose the fairest eligible generation, then take a create slot for it, under one lock.

    Returns ``(generation, 0)`` with the slot held by ``limiter``, or ``(None, wait)``: nothing
    eligible (``wait`` 0) or no slot free yet (``wait`` until one may be). The slot is taken only
    once something to send with it is in hand, so a lane never takes a slot and drops it.
    """
    now = timezone.now()
    with transaction.atomic():
        # One dispatcher at a time per channel decides; the in-flight count cannot be raced.
        Channel.objects.select_for_update().filter(pk=channel.pk).first()
        if not _has_capacity(channel):
            return None, 0.0
        eligible = _eligible(channel, now)
        waiting = set(eligible.values_list("created_by_id", flat=True).distinct())
        slot_held = False
        for member in _members_by_turn(waiting, _turns(channel)):
            candidate = eligible.filter(created_by_id=member).order_by("created_at", "id").first()
            if candidate is None:
                continue
            if not slot_held:
                wait = limiter.take_now("create")
                if wait > 0:
                    return None, wait
                slot_held = True
            if candidate.transition(
                Status.SUBMITTING,
                from_=Status.QUEUED,
                submit_started_at=now,
                submit_attempts=F("submit_attempts") + 1,
                next_attempt_at=None,
            ):
                DispatchTurn.objects.update_or_create(
                    channel=channel,
                    member_id=member,
                    defaults={"last_dispatched_at": now, "dispatched": F("dispatched") + 1},
                    create_defaults={"last_dispatched_at": now, "dispatched": 1},
                )
                candidate.refresh_from_db()
                return candidate, 0.0
        if slot_held:
            # Every candidate was taken from under us (canceled): the slot goes back unused.
            limiter.give_back()
    return None, 0.0


# --- Sending ---------------------------------------------------------------------------------


def channel_dispatch_once(
    *, channel: Channel, limiter: ChannelLimiter, max_wait: float
) -> Generation | None:
    """Send the fairest waiting generation with the next free create slot.

    Returns the generation sent, or ``None`` when nothing could go (no eligible work or no
    capacity). Raises ``Throttled`` when the next free slot is more than ``max_wait`` away.
    The lane waits holding neither a slot nor a claim: a follow-up that asks meanwhile goes
    first, and a generation submitted meanwhile competes for the slot.
    """
    from workspace.generations.services import send_create

    deadline = time.monotonic() + max_wait
    while True:
        if not _work_waiting(channel):
            return None
        generation, wait = _claim_next(channel, limiter)
        if generation is not None:
            try:
                send_create(generation=generation, limiter=limiter)
            finally:
                limiter.give_back()  # a no-op once the create used its slot
            return generation
        if wait <= 0:
            return None
        if time.monotonic() + wait > deadline:
            paused = limiter.paused_for() > 0
            raise Throttled(wait, reason="provider pause" if paused else "rate limit")
        _lane_wait(channel.pk, wait)


def generations_fail_over(*, channel: Channel) -> int:
    """Move this unavailable channel's queued work to equivalent models on available channels.

    Only queued generations move: nothing of theirs has reached a provider yet. Returns how many
    moved; each target channel is kicked.
    """
    from workspace.providers.services import channel_available, route_alternative

    if channel_available(channel=channel):
        return 0
    moved = 0
    targets: set[int] = set()
    waiting = Generation.objects.filter(channel=channel, status=Status.QUEUED).only(
        "id", "model", "size", "seconds"
    )
    for generation in waiting.iterator():
        alternative = route_alternative(
            channel=channel,
            model=generation.model,
            size=generation.size,
            seconds=generation.seconds,
        )
        if alternative is None:
            continue
        target, model = alternative
        if Generation.objects.filter(
            pk=generation.pk, channel=channel, status=Status.QUEUED
        ).update(channel=target, model=model, updated_at=timezone.now()):
            moved += 1
            targets.add(target.pk)
    for target_id in targets:
        channel_kick_on_commit(channel_id=target_id)
    if moved:
        logger.info(
            "channel %s unavailable: %d queued generations failed over", channel.slug, moved
        )
    return moved


def _come_back_for_retries(channel: Channel) -> Retry | None:
    """Nothing to send now. Work waiting for a retry time would otherwise wait for a kick that
    was skipped while this lane ran: the lane comes back when the first of it is due."""
    retry_at = (
        Generation.objects.filter(
            channel=channel, status=Status.QUEUED, next_attempt_at__gt=timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if retry_at is None:
        return None  # the lane ends; a kick starts it again
    wait = (retry_at - timezone.now()).total_seconds()
    return Retry(max=_RETRY_FOREVER, interval=max(1, math.ceil(wait)))


def channel_dispatch_lane(*, channel_id: int, lane: int) -> Retry | None:
    """Body of one dispatch lane: send while work waits, then step aside."""
    from workspace.providers.services import limiter_for_channel

    channel = Channel.objects.filter(pk=channel_id, is_active=True).first()
    if channel is None:
        return None
    limiter = limiter_for_channel(
        channel=channel, follow_ups_per_create=follow_ups_per_create(channel)
    )
    deadline = time.monotonic() + LANE_SECONDS + lane * LANE_STAGGER_SECONDS
    while time.monotonic() < deadline:
        _lane_beat(_lane_id(channel_id, lane))
        try:
            sent = channel_dispatch_once(channel=channel, limiter=limiter, max_wait=LANE_MAX_WAIT)
        except Throttled as throttled:
            if throttled.reason == "rate limit" and throttled.wait <= LANE_MAX_WAIT:
                # Follow-ups took every slot for a while: stay (RQ's retry works in whole
                # seconds) and keep releasing status checks.
                _lane_wait(channel_id, throttled.wait)
                continue
            logger.info("channel %s lane %s: %s", channel_id, lane, throttled)
            if throttled.reason == "circuit open":
                generations_fail_over(channel=channel)
            return Retry(max=_RETRY_FOREVER, interval=max(1, int(throttled.wait)))
        if sent is None:
            if channel.halted_at is not None:
                generations_fail_over(channel=channel)
                return None
            if not _eligible(channel, timezone.now()).exists():
                return _come_back_for_retries(channel)
            # Work waits for a place at the provider: stay, keep the follow-up clock (the next
            # check may free a place) and go again when woken.
            _lane_wait(channel_id, LANE_MAX_WAIT)
            channel.refresh_from_db()
            continue
        channel.refresh_from_db()  # an admin may change limits while the lane runs
        limiter = limiter_for_channel(
            channel=channel, follow_ups_per_create=follow_ups_per_create(channel)
        )
    return Retry(max=_RETRY_FOREVER, interval=0)


# --- Transparency --------------------------------------------------------------------------------


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


def follow_ups_per_create(channel: Channel) -> float:
    """Status checks and downloads each create has cost lately (each file is one download).

    Counted over the channel's latest completed videos, retries included (a job the provider
    failed cost a create and a check, and no downloads); before any, one check per video.
    """
    from workspace.providers.services import channel_files_per_video

    variants = channel_files_per_video(channel=channel)
    recent = list(
        Generation.objects.filter(channel=channel, status=Status.COMPLETED)
        .order_by("-completed_at")
        .values_list("poll_count", "provider_retries")[:50]
    )
    if not recent:
        return variants + 1.0
    checks = sum(polls for polls, _ in recent)
    creates = sum(1 + retries for _, retries in recent)
    return (checks + variants * len(recent)) / creates


def channel_pacing(*, channel: Channel) -> Pacing:
    from workspace.providers.limiter import SAFETY
    from workspace.providers.services import limiter_for_channel

    scale = settings.REELHOUSE_TIME_SCALE
    request_interval = 60.0 / (channel.requests_per_minute * SAFETY) / scale
    follow_ups = follow_ups_per_create(channel)
    if channel.creates_per_minute:
        # Creates have their own bucket; follow-ups use the other one and take nothing from it.
        bucket_interval = 60.0 / (channel.creates_per_minute * SAFETY) / scale
        create_interval = max(bucket_interval, request_interval * follow_ups)
    else:
        # One bucket: every video sent later costs its follow-ups' slots too, and they go first.
        create_interval = request_interval * (1 + follow_ups)
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


def _forecast(
    channel: Channel, ordered: list[tuple[str, int, Any]], pacing: Pacing
) -> list[float]:
    """Seconds from now until each queued generation (in dispatch order) is sent.

    Replays dispatch: the next free create slot, then one create interval after another (the
    follow-ups of finished videos take their share first), while the team's and each member's
    places at the provider free up as running jobs reach their expected end (the render-time
    model) and our check sees it.
    """
    import heapq

    renders: dict[tuple[str, int], float] = {}

    def render(model: str, seconds: int) -> float:
        if (model, seconds) not in renders:
            renders[model, seconds] = render_seconds_estimate(
                channel=channel, model=model, seconds=seconds
            )
        return renders[model, seconds]

    def freed(finish: float, expected: float) -> float:
        # A place frees when our check sees the end: just after it, after the check's slot.
        return finish + check_margin_seconds(expected) + pacing.request_interval

    now = timezone.now()
    running_all: list[float] = []
    running_member: dict[int, list[float]] = {}
    for member, sent, model, seconds in Generation.objects.filter(
        channel=channel, status__in=IN_FLIGHT
    ).values_list("created_by_id", "submitted_at", "model", "seconds"):
        expected = render(model, seconds)
        age = (now - sent).total_seconds() if sent else 0.0
        free_at = freed(max(0.0, expected - age), expected)
        heapq.heappush(running_all, free_at)
        heapq.heappush(running_member.setdefault(member, []), free_at)
    shapes = dict(
        (str(gid), (model, seconds))
        for gid, model, seconds in Generation.objects.filter(
            channel=channel, status=Status.QUEUED
        ).values_list("id", "model", "seconds")
    )
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
    from workspace.providers.services import circuit_for_channel

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
