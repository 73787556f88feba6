"""The periodic side of Reelhouse: resumes generations whose queued job was lost.

Runs as one process next to the workers. Safe to run more than one: every step it enqueues is
a conditional update, so a duplicate does nothing.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from workspace.billing.services import reservations_close_orphans
from workspace.core.rq import enqueue_overdue_scheduled
from workspace.generations.recovery import generations_resume_stalled

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Every --interval seconds, re-enqueue the next step of generations that stalled and "
        "close reservations whose generation already ended."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=30.0)
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
        while not stop.is_set():
            try:
                overdue = enqueue_overdue_scheduled()
                if overdue:
                    logger.info("enqueued %d overdue scheduled jobs", overdue)
                resumed = generations_resume_stalled(
                    stale_after=timedelta(seconds=options["stale_after"])
                )
                if resumed:
                    logger.info("resumed %d stalled generations", resumed)
                # A worker that died between a final state and its settle/release leaves a
                # reservation open; close it from the generation's outcome.
                closed = reservations_close_orphans()
                if closed:
                    logger.info("closed %d orphaned reservations", closed)
            except Exception:
                # A database or Redis outage must not kill the loop; the next sweep tries again.
                logger.exception("sweep failed")
            finally:
                connections.close_all()
            if options["once"]:
                return
            stop.wait(options["interval"])
