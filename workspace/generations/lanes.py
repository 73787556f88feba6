"""Dispatch lanes in Redis: starting and waking them, their heartbeat, and the follow-up clock.

A lane is an RQ job on the dispatch queue (its body is ``dispatch.channel_dispatch_lane``).
Kicking is cheap and safe after every state change that may let work go; the follow-up clock
lets running lanes release status checks the moment they are due.
"""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from workspace.core.rq import DISPATCH_QUEUE, FAILURE_TTL, get_queue, get_redis
from workspace.generations import jobs

# How long a lane sleeps in a worker for its slot before it reschedules itself instead.
LANE_MAX_WAIT = 5.0


def lane_id(channel_id: int, lane: int) -> str:
    return f"dispatch-{channel_id}-{lane}"


def channel_kick(*, channel_id: int, delay: float = 0) -> int:
    """Make sure the channel's dispatch lanes run; returns how many were started.

    A lane that already exists (queued, scheduled or running) is left alone, so kicking is
    cheap and safe to do after every submission and every finished job.
    """

    queue = get_queue(DISPATCH_QUEUE)
    if delay <= 0:
        _wake_lanes(channel_id)
    started = 0
    for lane in range(settings.REELHOUSE_DISPATCH_LANES):
        job_id = lane_id(channel_id, lane)
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


def lane_beat(job_id: str) -> None:
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


def lane_wait(channel_id: int, seconds: float) -> None:
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
