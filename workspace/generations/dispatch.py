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

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone
from rq import Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus

from workspace.core.rq import DISPATCH_QUEUE, FAILURE_TTL, get_queue, get_redis
from workspace.generations.models import DispatchTurn, Generation, Status
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
    started = 0
    for lane in range(settings.REELHOUSE_DISPATCH_LANES):
        job_id = _lane_id(channel_id, lane)
        existing = Job.fetch(job_id, connection=queue.connection) if _exists(job_id) else None
        if existing is not None and _lane_alive(existing):
            continue
        if existing is not None:
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


def channel_kick_on_commit(*, channel_id: int, delay: float = 0) -> None:
    transaction.on_commit(lambda: channel_kick(channel_id=channel_id, delay=delay))


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
        time.sleep(wait)


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


def channel_dispatch_lane(*, channel_id: int, lane: int) -> Retry | None:
    """Body of one dispatch lane: send while work waits, then step aside."""
    from workspace.providers.services import limiter_for_channel

    channel = Channel.objects.filter(pk=channel_id, is_active=True).first()
    if channel is None:
        return None
    limiter = limiter_for_channel(channel=channel)
    deadline = time.monotonic() + LANE_SECONDS + lane * LANE_STAGGER_SECONDS
    while time.monotonic() < deadline:
        _lane_beat(_lane_id(channel_id, lane))
        try:
            sent = channel_dispatch_once(channel=channel, limiter=limiter, max_wait=LANE_MAX_WAIT)
        except Throttled as throttled:
            logger.info("channel %s lane %s: %s", channel_id, lane, throttled)
            if throttled.reason == "circuit open":
                generations_fail_over(channel=channel)
            return Retry(max=_RETRY_FOREVER, interval=max(1, int(throttled.wait)))
        if sent is None:
            if channel.halted_at is not None:
                generations_fail_over(channel=channel)
            return None  # nothing to send: the lane ends; a kick starts it again
        channel.refresh_from_db()  # an admin may change limits while the lane runs
        limiter = limiter_for_channel(channel=channel)
    return Retry(max=_RETRY_FOREVER, interval=0)


# --- Transparency --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueStanding:
    position: int  # 1 = next to go
    reason: str
    eta: datetime | None
    halted: bool = False


def queue_standings(*, channel: Channel, generation_ids: set[str]) -> dict[str, QueueStanding]:
    """Where each queued generation stands, why it waits and roughly when it goes."""
    from workspace.providers.services import limiter_for_channel

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
    try:
        state = limiter_for_channel(channel=channel).state()
        paused_until = state.paused_until
        next_slot = max(0.0, state.next_create_slot_at - state.now)
        if not channel.creates_per_minute:
            next_slot = max(0.0, state.next_slot_at - state.now)
    except Exception:  # Redis down: still show positions, without the live limiter facts
        logger.warning("limiter state unavailable for channel %s", channel.pk, exc_info=True)
        paused_until, next_slot = None, 0.0
    interval = 60.0 / (channel.creates_per_minute or channel.requests_per_minute)
    interval /= settings.REELHOUSE_TIME_SCALE
    standings: dict[str, QueueStanding] = {}
    for index, (key, member_id, next_attempt_at) in enumerate(ordered):
        if key not in generation_ids:
            continue
        wait = next_slot + index * interval
        if channel.halted_at is not None:
            reason = "The channel is halted until an admin fixes it: " + channel.halted_reason
            wait = 0.0
        elif paused_until is not None:
            reason = "The provider asked us to pause; sending resumes at {until}."
            wait = max(wait, paused_until - time.time()) + index * interval
        elif next_attempt_at and next_attempt_at > now:
            reason = "Retrying after a temporary provider error."
            wait = max(wait, (next_attempt_at - now).total_seconds())
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
            eta=None if channel.halted_at is not None else now + timedelta(seconds=wait),
        )
    return standings
