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
import math
import time
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone
from rq import Retry

from workspace.generations.failover import generations_fail_over
from workspace.generations.following import (
    extras_fetch_one,
    extras_waiting,
    prompt_work_pending,
)
from workspace.generations.lanes import (
    LANE_MAX_WAIT,
    channel_kick,
    follow_ups_release,
    lane_beat,
    lane_id,
    lane_wait,
)
from workspace.generations.models import DispatchTurn, Generation, Status
from workspace.generations.render_times import check_margin_seconds, render_seconds_estimate
from workspace.generations.sending import send_create
from workspace.providers.limiter import ChannelLimiter, Throttled
from workspace.providers.models import Channel
from workspace.providers.services import (
    channel_defers_extras,
    channel_files_per_video,
    channel_resume,
    limiter_for_channel,
)

logger = logging.getLogger(__name__)


# What the provider counts against its concurrency: jobs it may be rendering. A job it finished
# (ours still downloading the files) no longer holds a place there, nor in our cap.
IN_FLIGHT = (Status.SUBMITTING, Status.IN_PROGRESS)
# A lane gives its worker back this often (plus a stagger per lane, so two lanes never step
# aside at once and leave slots unused), keeping jobs far below RQ's timeout and letting a
# deploy or a new lane count take effect.
LANE_SECONDS = 120.0
LANE_STAGGER_SECONDS = 15.0
_RETRY_FOREVER = 10**9
# How far ahead (in create intervals) a lane that has chosen what to send waits for its slot.
SLOT_LEAD = 2.0


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


def _take_create_slot(limiter: ChannelLimiter, *, ahead: float, owner: str) -> float:
    """Take the create slot for a generation already chosen, waiting for it if it is near.

    Choosing takes several queries; a lane that chose only once the slot was free would reach
    it late (more so on a loaded machine) and leave part of every slot unused. So the lane
    chooses first and then waits for the slot itself, up to SLOT_LEAD intervals ahead. It
    waits without holding the slot: a follow-up asking meanwhile still goes first, and then
    the lane waits for the next one. It keeps releasing due status checks meanwhile (the other
    lane is waiting for the channel's lock).
    """
    lead = SLOT_LEAD * limiter.interval_ms("create") / 1000
    waited = 0.0
    while True:
        wait = limiter.take_now("create", ahead=ahead, owner=owner)
        if wait <= 0 or limiter.refused_by_plan or waited + wait > lead:
            return wait
        # A plain sleep to the slot (a blocking Redis wait may overshoot it), cut short to
        # release the next status check the moment it falls due.
        next_due = follow_ups_release()
        if next_due is not None:
            wait = min(wait, max(0.0, next_due - time.time()))
        time.sleep(wait)
        waited += wait


def _claim_next(channel: Channel, limiter: ChannelLimiter) -> tuple[Generation | None, float]:
    """Choose the fairest eligible generation, then take a create slot for it, under one lock.

    Returns ``(generation, 0)`` with the slot held by ``limiter``, or ``(None, wait)``: nothing
    eligible (``wait`` 0) or no slot free yet (``wait`` until one may be). The slot is taken only
    once something to send with it is in hand, so a lane never takes a slot and drops it.
    """
    now = timezone.now()
    with transaction.atomic():
        # One dispatcher at a time per channel decides; the in-flight count cannot be raced.
        # NO KEY UPDATE, so new generations (whose foreign key share-locks the channel) are
        # not held up, and cannot deadlock with a dispatcher, while it decides.
        Channel.objects.select_for_update(no_key=True).filter(pk=channel.pk).first()
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
                # Its status check and video come one predicted render from now: the limiter
                # sends it only if they fit beside the follow-ups already planned for then.
                expected = render_seconds_estimate(
                    channel=channel, model=candidate.model, seconds=candidate.seconds
                )
                ahead = expected + check_margin_seconds(expected)
                wait = _take_create_slot(limiter, ahead=ahead, owner=str(candidate.pk))
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
    first, and a generation submitted meanwhile competes for the slot. A free slot the
    follow-up plan keeps from creates fetches a finished video's poster or spritesheet.
    """

    deadline = time.monotonic() + max_wait
    while True:
        if not _work_waiting(channel):
            return None
        extras_fetch_one(channel=channel, limiter=limiter, now_only=False, overdue_only=True)
        generation, wait = _claim_next(channel, limiter)
        if generation is not None:
            try:
                send_create(generation=generation, limiter=limiter)
            finally:
                limiter.give_back()  # a no-op once the create used its slot
            return generation
        if wait <= 0:
            return None
        if limiter.refused_by_plan and extras_fetch_one(
            channel=channel, limiter=limiter, now_only=True
        ):
            if time.monotonic() > deadline:
                raise Throttled(0.0, reason="rate limit")  # the lane beats, then goes on
            continue
        if time.monotonic() + wait > deadline:
            paused = limiter.paused_for() > 0
            raise Throttled(wait, reason="provider pause" if paused else "rate limit")
        lane_wait(channel.pk, wait)


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

    channel = Channel.objects.filter(pk=channel_id, is_active=True).first()
    if channel is None:
        return None
    limiter = limiter_for_channel(channel=channel, prompt_follow_ups=follow_up_costs(channel)[0])
    deadline = time.monotonic() + LANE_SECONDS + lane * LANE_STAGGER_SECONDS
    while time.monotonic() < deadline:
        lane_beat(lane_id(channel_id, lane))
        try:
            sent = channel_dispatch_once(channel=channel, limiter=limiter, max_wait=LANE_MAX_WAIT)
        except Throttled as throttled:
            if throttled.reason == "rate limit" and throttled.wait <= LANE_MAX_WAIT:
                # Follow-ups took every slot for a while: stay (RQ's retry works in whole
                # seconds) and keep releasing status checks.
                lane_wait(channel_id, throttled.wait)
                continue
            logger.info("channel %s lane %s: %s", channel_id, lane, throttled)
            if throttled.reason == "circuit open":
                generations_fail_over(channel=channel)
            return Retry(max=_RETRY_FOREVER, interval=max(1, int(throttled.wait)))
        if sent is None:
            if channel.halted_at is not None:
                generations_fail_over(channel=channel)
                return None
            # Nothing can be created now: waiting posters and spritesheets go with slots nothing
            # else asks for while videos are with the provider (their checks and downloads
            # first), else as follow-ups. The lane stays meanwhile and releases due checks.
            if extras_waiting(channel_id=channel_id):
                busy = prompt_work_pending(channel_id=channel_id)
                if extras_fetch_one(channel=channel, limiter=limiter, now_only=busy):
                    continue
                if busy:
                    lane_wait(channel_id, limiter.interval_ms("other") / 1000)
                    continue
            if not _eligible(channel, timezone.now()).exists():
                return _come_back_for_retries(channel)
            # Work waits for a place at the provider: stay, keep the follow-up clock (the next
            # check may free a place) and go again when woken.
            lane_wait(channel_id, LANE_MAX_WAIT)
            channel.refresh_from_db()
            continue
        channel.refresh_from_db()  # an admin may change limits while the lane runs
        limiter = limiter_for_channel(
            channel=channel, prompt_follow_ups=follow_up_costs(channel)[0]
        )
    return Retry(max=_RETRY_FOREVER, interval=0)


def follow_up_costs(channel: Channel) -> tuple[float, float]:
    """Requests each create has lately brought after it: ``(prompt, extras)``.

    Prompt: its status checks and the video's download, which go before any create. Extras:
    the poster and spritesheet (one download each). Counted over the channel's latest completed
    videos, retries included (a job the provider failed cost a create and a check, and no
    downloads); before any, one check per video.
    """

    extra_files = channel_files_per_video(channel=channel) - 1
    recent = list(
        Generation.objects.filter(channel=channel, status=Status.COMPLETED)
        .order_by("-completed_at")
        .values_list("poll_count", "provider_retries")[:50]
    )
    if not recent:
        return 2.0, float(extra_files)
    checks = sum(polls for polls, _ in recent)
    creates = sum(1 + retries for _, retries in recent)
    return (checks + len(recent)) / creates, extra_files * len(recent) / creates


def follow_ups_per_create(channel: Channel) -> float:
    """Status checks and downloads each create has cost lately (each file is one download)."""
    return sum(follow_up_costs(channel))


def creates_share_of_slots(channel: Channel) -> float:
    """Of a backlog's requests (every request counted), the share that are creates.

    Posters and spritesheets put off to slots no create may take (``channel_defers_extras``)
    do not slow creates down; they go once the plan or the backlog leaves room.
    """
    prompt, extras = follow_up_costs(channel)
    if channel_defers_extras(channel=channel):
        return 1 / (1 + prompt)
    return 1 / (1 + prompt + extras)


def channel_resume_dispatch(*, channel: Channel) -> None:
    """An admin resumed a halted channel: clear the halt and the circuit, then restart its lanes."""
    channel_resume(channel=channel)
    channel_kick(channel_id=channel.pk)
