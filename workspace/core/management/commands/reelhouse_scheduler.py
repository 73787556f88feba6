"""The periodic side of Reelhouse: resumes generations whose queued job was lost, purges
projects deleted longer ago than their grace period, and once a day applies the retention
policies (``generations.retention``).

Runs as one process next to the workers. Safe to run more than one: every step it enqueues is
a conditional update, so a duplicate does nothing.

Every --watch seconds it asks Redis whether it lost its data (a restart of a Redis that keeps
nothing on disk, a flush, a failover to an empty server): if so, every job and schedule is
gone, so it re-enqueues the next step of everything in flight at once instead of waiting until
the work looks stale.

Every loop also leaves a heartbeat in Redis (``core.rq.scheduler_beat``): ``/readyz`` and
``/metrics`` on any machine read it to tell a live scheduler from one that stopped.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from datetime import timedelta
from typing import Any

import redis
from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from workspace.api.webhooks import webhook_events_resume
from workspace.billing.services import reservations_close_orphans
from workspace.core.rq import (
    enqueue_overdue_scheduled,
    redis_data_lost,
    redis_mark,
    scheduler_beat,
)
from workspace.generations.characters import characters_resume_stalled
from workspace.generations.following import generations_extras_recover
from workspace.generations.recovery import generations_resume_stalled
from workspace.generations.retention import retention_run_daily
from workspace.projects.services import projects_purge_due

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Every --interval seconds, re-enqueue the next step of generations that stalled and "
        "close reservations whose generation already ended; at once when Redis lost its data."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=30.0)
        parser.add_argument(
            "--watch",
            type=float,
            default=2.0,
            help="Seconds between checks whether Redis lost its data.",
        )
        parser.add_argument("--once", action="store_true", help="Sweep once and exit.")
        parser.add_argument(
            "--stale-after",
            type=float,
            default=120.0,
            help="Seconds without progress after which a generation's next step is re-enqueued.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stale_after = timedelta(seconds=options["stale_after"])
        next_sweep = time.monotonic()
        while not stop.is_set():
            self._beat()
            if self._redis_lost():
                logger.warning(
                    "Redis holds none of Reelhouse's jobs (a fresh start, or it restarted "
                    "empty or was flushed): re-enqueueing the work in flight now"
                )
                if _sweep(stale_after=stale_after, redis_lost=True):
                    redis_mark()
                next_sweep = time.monotonic() + options["interval"]
            elif time.monotonic() >= next_sweep:
                _sweep(stale_after=stale_after, redis_lost=False)
                next_sweep = time.monotonic() + options["interval"]
            if options["once"]:
                return
            stop.wait(max(0.0, min(options["watch"], next_sweep - time.monotonic())))

    def _beat(self) -> None:
        # The health check reads this to tell a live scheduler from a stopped one.
        with contextlib.suppress(redis.RedisError):  # down: the health check says so itself
            scheduler_beat()

    def _redis_lost(self) -> bool:
        try:
            return redis_data_lost()
        except redis.RedisError:
            return False  # down: nothing to enqueue into yet; asked again at the next watch


def _sweep(*, stale_after: timedelta, redis_lost: bool) -> bool:
    """One recovery sweep; False when it failed (logged; the next one tries again)."""
    try:
        overdue = enqueue_overdue_scheduled()
        if overdue:
            logger.info("enqueued %d overdue scheduled jobs", overdue)
        resumed = generations_resume_stalled(stale_after=stale_after, jobs_lost=redis_lost)
        if resumed:
            logger.info("resumed %d stalled generations", resumed)
        resumed_characters = characters_resume_stalled(
            stale_after=stale_after, jobs_lost=redis_lost
        )
        if resumed_characters:
            logger.info("resumed %d stalled characters", resumed_characters)
        # Posters and spritesheets whose place in Redis, or whose worker, was lost.
        extras = generations_extras_recover()
        if extras:
            logger.info("put back %d posters and spritesheets to fetch", extras)
        # Webhook deliveries whose job went with Redis or with a killed worker.
        redelivered = webhook_events_resume(stale_after=timedelta(0) if redis_lost else stale_after)
        if redelivered:
            logger.info("re-enqueued %d webhook deliveries", redelivered)
        # A worker that died between a final state and its settle/release leaves a
        # reservation open; close it from the generation's outcome.
        closed = reservations_close_orphans()
        if closed:
            logger.info("closed %d orphaned reservations", closed)
        # Projects deleted longer ago than their grace period: rows, then files.
        purged = projects_purge_due()
        if purged:
            logger.info("purged %d deleted projects", purged)
        # Once a day across every scheduler: files the retention policies no longer keep.
        retention_run_daily()
        return True
    except Exception:
        # A database or Redis outage must not kill the loop; the next sweep tries again.
        logger.exception("sweep failed")
        return False
    finally:
        connections.close_all()
