"""Liveness and readiness for load balancers and orchestrators.

``liveness`` only says the process answers. ``readiness`` checks what a node needs to do its
work, each check bounded in time, and tells two kinds of trouble apart:

- **broken**: a dependency is unreachable or failing (database, Redis, media storage). Nothing
  will get better by waiting on this node's side; an operator is needed.
- **not ready**: everything answers but the node is not able to serve its purpose yet:
  migrations are pending (a deploy in progress), no RQ worker has been seen on a queue, or the
  recovery scheduler has not looped lately.

A check that depends on another (migrations on the database; workers and the scheduler on
Redis) is ``skipped`` when that one is broken, so the report names the cause once. Details
never carry an exception's text (a database error can name hosts and users): only its class.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from rq import Queue, Worker
from rq.worker import BaseWorker

from workspace.core.rq import DISPATCH_QUEUE, QUEUE_NAME, scheduler_heartbeat_age

OK = "ok"
NOT_READY = "not_ready"
BROKEN = "broken"
SKIPPED = "skipped"

# Redis answers in microseconds; a second is a broken Redis, not a slow one.
REDIS_TIMEOUT_SECONDS = 1.0
# Where the storage check writes and reads its probe (then deletes it).
PROBE_FOLDER = "healthcheck"


@dataclass
class Check:
    name: str
    state: str
    detail: str = ""
    latency_ms: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "detail": self.detail,
            "latency_ms": round(self.latency_ms, 1),
        }


@dataclass
class Report:
    status: str
    checks: list[Check]

    @property
    def http_status(self) -> int:
        return 200 if self.status == OK else 503

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "checks": [check.as_json() for check in self.checks]}


def _failure(error: BaseException) -> str:
    return f"unreachable or failing ({type(error).__name__})"


def _timed(name: str, probe: Callable[[], tuple[str, str]]) -> Check:
    started = time.perf_counter()
    try:
        state, detail = probe()
    except Exception as error:  # any failure of a dependency is a finding, not a crash
        state, detail = BROKEN, _failure(error)
    return Check(name, state, detail, (time.perf_counter() - started) * 1000)


# Once a process has seen no pending migration it never will again: new migrations come with
# new code, which means a new process.
_migrations_applied = False


def _database() -> tuple[str, str]:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return OK, ""


def _migrations() -> tuple[str, str]:
    global _migrations_applied
    if _migrations_applied:
        return OK, ""
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        return NOT_READY, f"{len(plan)} migrations not applied yet (run migrate)"
    _migrations_applied = True
    return OK, ""


def health_redis() -> redis.Redis:
    """A connection of its own with short timeouts: the app's pool waits far longer."""
    return redis.Redis.from_url(
        str(settings.REDIS_URL),
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        retry_on_timeout=False,
    )


def _redis(connection: redis.Redis) -> Callable[[], tuple[str, str]]:
    def probe() -> tuple[str, str]:
        connection.ping()
        return OK, ""

    return probe


def _storage() -> tuple[str, str]:
    # Through the storage API, so whatever backend holds the media is what gets checked.
    payload = uuid.uuid4().hex.encode()
    name = default_storage.save(
        f"{PROBE_FOLDER}/{socket.gethostname()}-{uuid.uuid4().hex}.txt", ContentFile(payload)
    )
    try:
        with default_storage.open(name) as handle:
            read = handle.read()
    finally:
        default_storage.delete(name)
    if read != payload:
        return BROKEN, "a file written to media storage read back different"
    return OK, ""


def live_workers(connection: redis.Redis, queue: str) -> list[BaseWorker]:
    """The queue's workers that beat lately, or are in a job and still registered.

    An in-process worker (``REELHOUSE_RQ_WORKER=in-process``) does not beat during a long job
    (a large download); RQ extends its registration to cover the job's timeout instead.
    """
    seen_within = settings.REELHOUSE_HEALTH_WORKER_SEEN_SECONDS
    now = time.time()
    alive = []
    for worker in Worker.all(connection=connection, queue=Queue(queue, connection=connection)):
        beat = worker.last_heartbeat
        if (beat is not None and now - beat.timestamp() <= seen_within) or (
            worker.get_current_job_id() is not None
        ):
            alive.append(worker)
    return alive


def _workers(connection: redis.Redis, queue: str) -> Callable[[], tuple[str, str]]:
    def probe() -> tuple[str, str]:
        seen_within = settings.REELHOUSE_HEALTH_WORKER_SEEN_SECONDS
        alive = len(live_workers(connection, queue))
        if not alive:
            return NOT_READY, f"no worker on the {queue} queue seen in the last {seen_within} s"
        return OK, f"{alive} worker(s)"

    return probe


def _scheduler(connection: redis.Redis) -> Callable[[], tuple[str, str]]:
    def probe() -> tuple[str, str]:
        seen_within = settings.REELHOUSE_HEALTH_SCHEDULER_SEEN_SECONDS
        age = scheduler_heartbeat_age(connection)
        if age is None:
            return NOT_READY, "the recovery scheduler (reelhouse_scheduler) has not run"
        if age > seen_within:
            return NOT_READY, f"the recovery scheduler was last seen {age:.0f} s ago"
        return OK, f"seen {age:.0f} s ago"

    return probe


def liveness() -> Report:
    return Report(OK, [])


def readiness() -> Report:
    checks = [_timed("database", _database)]
    database_ok = checks[0].state == OK
    checks.append(
        _timed("migrations", _migrations) if database_ok else Check("migrations", SKIPPED)
    )
    connection = health_redis()
    try:
        redis_check = _timed("redis", _redis(connection))
        checks.append(redis_check)
        checks.append(_timed("storage", _storage))
        for queue in (QUEUE_NAME, DISPATCH_QUEUE):
            name = f"workers:{queue}"
            checks.append(
                _timed(name, _workers(connection, queue))
                if redis_check.state == OK
                else Check(name, SKIPPED)
            )
        checks.append(
            _timed("scheduler", _scheduler(connection))
            if redis_check.state == OK
            else Check("scheduler", SKIPPED)
        )
    finally:
        connection.close()
    states = {check.state for check in checks}
    status = BROKEN if BROKEN in states else NOT_READY if NOT_READY in states else OK
    return Report(status, checks)
