"""The process manager behind ``up``, with real child processes.

Every wait below is for an event the supervisor reports (a start, an exit); the timeouts only
bound a broken run, they are not what is tested.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis
from django.conf import settings
from rq import Worker

from workspace.core.procfile import procfile_read, procfile_specs
from workspace.core.supervisor import Backoff, ProcessSpec, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
FAILING = [sys.executable, "-c", "raise SystemExit(3)"]
# Fast backoff: these tests are about what restarts, not how long it waits.
FAST = Backoff(initial=0.001, maximum=0.01, healthy_after=3600, loud_after=3)


@dataclass
class Running:
    supervisor: Supervisor
    events: queue.Queue[tuple[str, str, int | None, str]] = field(default_factory=queue.Queue)
    stop: threading.Event = field(default_factory=threading.Event)
    seen: list[tuple[str, str, int | None, str]] = field(default_factory=list)

    def next(self, event: str, name: str) -> tuple[str, str, int | None, str]:
        """The next ``event`` of process ``name``, keeping every event on the way in ``seen``."""
        while True:
            item = self.events.get(timeout=60)
            self.seen.append(item)
            if item[0] == event and item[1] == name:
                return item


@pytest.fixture
def supervise() -> Iterator[object]:
    threads: list[tuple[threading.Thread, Running]] = []

    def start(specs: list[ProcessSpec], **options: object) -> Running:
        running = Running(Supervisor(specs, rng=random.Random(7), **options))  # type: ignore[arg-type]
        running.supervisor._on_event = lambda *event: running.events.put(event)
        thread = threading.Thread(target=running.supervisor.run, args=(running.stop,))
        thread.start()
        threads.append((thread, running))
        return running

    yield start
    for thread, running in threads:
        running.stop.set()
        thread.join(timeout=60)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_process_is_started_again(supervise) -> None:  # type: ignore[no-untyped-def]
    running = supervise([ProcessSpec("sleeper", SLEEPER)], backoff=FAST)
    _, _, first, _ = running.next("started", "sleeper")
    assert first is not None
    os.kill(first, signal.SIGKILL)
    assert running.next("exited", "sleeper")[3] == str(-signal.SIGKILL)
    _, _, second, _ = running.next("started", "sleeper")
    assert second is not None and second != first
    assert alive(second)


def test_one_process_that_keeps_failing_never_stops_the_others(supervise, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING, logger="workspace.core.supervisor")
    running = supervise(
        [
            ProcessSpec("web", SLEEPER),
            ProcessSpec("broken", FAILING),
            ProcessSpec("missing", ["/nonexistent/reelhouse-no-such-binary"]),
        ],
        backoff=FAST,
    )
    _, _, web, _ = running.next("started", "web")
    for _ in range(FAST.loud_after + 3):
        assert running.next("exited", "broken")[3] == "3"
    for _ in range(FAST.loud_after + 1):
        running.next("start-failed", "missing")
    assert web is not None and alive(web)
    assert not [e for e in running.seen if e[1] == "web" and e[0] != "started"]
    assert "broken KEEPS FAILING: exited with 3" in caplog.text
    assert "missing KEEPS FAILING: could not start" in caplog.text


def test_a_process_that_ran_long_enough_starts_its_failure_count_afresh(supervise, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING, logger="workspace.core.supervisor")
    healthy = Backoff(initial=0.001, maximum=0.01, healthy_after=0, loud_after=2)
    running = supervise([ProcessSpec("flaky", FAILING)], backoff=healthy)
    for _ in range(5):
        running.next("exited", "flaky")
    assert "KEEPS FAILING" not in caplog.text
    assert "flaky exited with 3; restarting it in" in caplog.text


def test_backoff_grows_exponentially_with_jitter_up_to_its_maximum() -> None:
    backoff = Backoff(initial=1.0, factor=2.0, maximum=30.0, jitter=0.5)
    rng = random.Random(1)
    for failures, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 30), (20, 30)]:
        delays = [backoff.delay(failures, rng) for _ in range(50)]
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays), (failures, delays)
        assert len(set(delays)) == 50  # jittered: processes that died together spread out


def test_stopping_sends_sigterm_once_kills_what_ignores_it_and_stops_servers_last(
    supervise,
) -> None:  # type: ignore[no-untyped-def]
    stubborn = [
        sys.executable,
        "-c",
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)",
    ]
    running = supervise(
        [
            ProcessSpec("server", SLEEPER, stops_last=True),
            ProcessSpec("polite", SLEEPER),
            ProcessSpec("stubborn", stubborn),
        ],
        backoff=FAST,
        grace=0.5,
    )
    for name in ("server", "polite", "stubborn"):
        running.next("started", name)
    running.stop.set()
    running.next("stopped", "server")
    stopped = {e[1]: e[3] for e in running.seen if e[0] == "stopped"}
    assert stopped["polite"] == str(-signal.SIGTERM)
    assert stopped["server"] == str(-signal.SIGTERM)
    # Killed after the grace period (it may not have set its handler yet: then SIGTERM did it).
    assert stopped["stubborn"] in (str(-signal.SIGKILL), str(-signal.SIGTERM))
    assert [e[1] for e in running.seen if e[0] == "stopped"][-1] == "server"
    assert not [e for e in running.seen if e[0] == "exited"]


def test_supervisor_refuses_two_processes_with_one_name() -> None:
    with pytest.raises(ValueError, match="unique"):
        Supervisor([ProcessSpec("a", SLEEPER), ProcessSpec("a", SLEEPER)])


@pytest.mark.django_db(transaction=True)
def test_a_sigkilled_rq_worker_comes_back_beside_its_own_dead_registration(  # type: ignore[no-untyped-def]
    supervise, redis_url: str, redis_conn: redis.Redis
) -> None:
    # The Procfile's own worker line, as `up` runs it.
    (spec,) = procfile_specs(
        {"worker": procfile_read(settings.BASE_DIR / "Procfile")["worker"]},
        counts={"worker": 1},
        variables=dict(os.environ),
        python=sys.executable,
    )
    env = {"REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
    running = supervise(
        [ProcessSpec(spec.name, spec.argv, env=env)],
        backoff=FAST,
        cwd=settings.BASE_DIR,
    )

    def registered(pid: int) -> Worker:
        # Waits for the worker process to register itself in Redis.
        for _ in range(600):
            for worker in Worker.all(connection=redis_conn):
                if worker.pid == pid:
                    return worker
            running.stop.wait(0.1)
        raise AssertionError(f"worker {pid} never registered")

    _, _, first_pid, _ = running.next("started", "worker.1")
    assert first_pid is not None
    first = registered(first_pid)
    os.kill(first_pid, signal.SIGKILL)
    running.next("exited", "worker.1")
    _, _, second_pid, _ = running.next("started", "worker.1")
    assert second_pid is not None
    second = registered(second_pid)
    # The dead worker is still listed (nothing unregistered it); the new one has its own name.
    names = {w.name for w in Worker.all(connection=redis_conn)}
    assert {first.name, second.name} <= names
    assert first.name != second.name
    assert alive(second_pid)
