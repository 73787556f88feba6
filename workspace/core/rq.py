"""RQ plumbing shared by every app: the worker class and the one place jobs are enqueued."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import django_rq
import redis
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connections, transaction
from rq import Queue
from rq.job import Job
from rq.worker import SimpleWorker, Worker

from workspace.core.storage import object_store

QUEUE_NAME = "default"
# Dispatch lanes hold a worker while they pace creates, so they get workers of their own and
# never delay status checks and downloads on the default queue.
DISPATCH_QUEUE = "dispatch"
# Failed jobs keep their traceback for a week, not RQ's default year (rq/rq#1143).
FAILURE_TTL = int(timedelta(days=7).total_seconds())


class ForkSafeWorker(Worker):
    """An RQ worker that never lets a work horse inherit the parent's database connection.

    django-rq closes connections once before the work loop, but maintenance tasks in the parent
    can open one again; a forked child sharing that socket corrupts both (rq/django-rq#650).
    The same goes for pooled connections to an S3 media store.
    """

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        connections.close_all()
        store = object_store(default_storage)
        if store is not None:
            store.forget_connections()
        super().fork_work_horse(job, queue)


class InProcessWorker(SimpleWorker):
    """An RQ worker that runs each job in its own process instead of forking a work horse.

    Reelhouse's jobs are short (a status check, a download, a slice of a dispatch lane) and
    take ids, so a fork per job (plus a fresh database connection in every child) was most of
    the CPU a request cost: about 65 CPU-seconds per 1,000 provider requests. Run in process,
    a worker keeps its database connection between jobs; one that saw an error is checked and
    replaced before the next job. A job that crashes the interpreter takes the worker with it,
    which the recovery sweep already handles (the database is the queue of record). The choice
    is ``RQ["WORKER_CLASS"]`` in settings (``REELHOUSE_RQ_WORKER``: ``fork``, the default, or
    ``in-process``).
    """

    def execute_job(self, job: Job, queue: Queue) -> None:
        for connection in connections.all(initialized_only=True):
            if connection.connection is None or connection.in_atomic_block:
                continue  # in_atomic_block: a test running jobs inside its own transaction
            broken = connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]
            if broken or (connection.errors_occurred and not connection.is_usable()):
                connection.close()
            else:
                connection.errors_occurred = False
        super().execute_job(job, queue)


_connection: tuple[int, str, redis.Redis] | None = None


def get_redis() -> redis.Redis:
    """One Redis connection pool per process (a forked child builds its own)."""
    global _connection
    url = str(settings.RQ_QUEUES[QUEUE_NAME]["URL"])
    if _connection is None or _connection[0] != os.getpid() or _connection[1] != url:
        _connection = (os.getpid(), url, redis.Redis.from_url(url))
    return _connection[2]


def get_queue(name: str = QUEUE_NAME) -> Queue:
    return django_rq.get_queue(name, connection=get_redis())


def enqueue_on_commit(
    func: Callable[..., Any], *args: Any, delay: float = 0, **kwargs: Any
) -> None:
    """Enqueue ``func(*args)`` once the current transaction commits (at once outside one).

    Jobs only ever receive ids, so a job never sees a row its enqueuer had not yet committed.
    """

    def _enqueue() -> None:
        queue = get_queue()
        options: dict[str, Any] = {"failure_ttl": FAILURE_TTL, "result_ttl": 600}
        if delay > 0:
            queue.enqueue_in(timedelta(seconds=delay), func, *args, **options, **kwargs)
        else:
            queue.enqueue(func, *args, **options, **kwargs)

    transaction.on_commit(_enqueue)


def enqueue_overdue_scheduled(*, grace: float = 5.0) -> int:
    """Move scheduled jobs that are overdue by more than ``grace`` seconds onto their queues.

    RQ's own scheduler runs inside one worker holding a lock; when that worker dies the lock
    outlives it and the other workers' schedulers only look again every 15 minutes, so delayed
    jobs (polls, retries, rescheduled dispatch lanes) would wait that long. The recovery
    scheduler calls this as a backstop. A job enqueued twice in a race with RQ's scheduler runs
    twice, which every Reelhouse job tolerates.
    """
    from rq.utils import current_timestamp

    moved = 0
    connection = get_redis()
    for name in settings.RQ_QUEUES:
        queue = get_queue(name)
        registry = queue.scheduled_job_registry
        job_ids = registry.get_jobs_to_schedule(int(current_timestamp() - grace))
        if not job_ids:
            continue
        with connection.pipeline() as pipeline:
            for job in Job.fetch_many(job_ids, connection=connection):
                if job is not None:
                    queue._enqueue_job(job, pipeline=pipeline)
            for job_id in job_ids:
                registry.remove(job_id, pipeline=pipeline)
            pipeline.execute()
        moved += len(job_ids)
    return moved


# Set once Redis holds Reelhouse's state; gone when Redis restarted empty or was flushed, and
# with it every queued and scheduled job (the database still knows what was in flight).
REDIS_MARK_KEY = "reelhouse:redis-mark"


def redis_data_lost() -> bool:
    """True while Redis has not been marked since it last started empty or was flushed."""
    return not get_redis().exists(REDIS_MARK_KEY)


def redis_mark() -> None:
    """Record that the work in flight has been re-enqueued into this Redis."""
    get_redis().set(REDIS_MARK_KEY, "1")


# The recovery scheduler's heartbeat: Redis's own time of its last loop, so the health check
# on any machine can tell a live scheduler from one that stopped, whatever the clocks say.
SCHEDULER_HEARTBEAT_KEY = "reelhouse:scheduler:heartbeat"
# Outlives a few missed beats; a key that expired means no scheduler has looped for this long.
SCHEDULER_HEARTBEAT_TTL = 300


def scheduler_beat() -> None:
    connection = get_redis()
    seconds, micros = connection.time()
    beat = f"{seconds + micros / 1e6:.3f}"
    connection.set(SCHEDULER_HEARTBEAT_KEY, beat, ex=SCHEDULER_HEARTBEAT_TTL)


def scheduler_heartbeat_age(connection: redis.Redis | None = None) -> float | None:
    """Seconds since any scheduler last looped, on Redis's clock; None when none ever did."""
    connection = connection or get_redis()
    with connection.pipeline() as pipeline:
        pipeline.get(SCHEDULER_HEARTBEAT_KEY)
        pipeline.time()
        beat, (seconds, micros) = pipeline.execute()
    if beat is None:
        return None
    return max(0.0, seconds + micros / 1e6 - float(beat))
