"""Keeps a declared list of processes running: the process manager behind ``up``.

A process that exits is started again after an exponential backoff with jitter, counted per
process; a run that lasted ``healthy_after`` seconds starts the count afresh. A process that
keeps failing is reported loudly and retried at the longest backoff for as long as the
supervisor runs: it never stops the others (one broken worker must not take the web server
down with it). Stopping sends SIGTERM to every child once (RQ workers finish their job, gunicorn
its requests), waits ``grace`` seconds, then SIGKILLs what is left with its descendants.

Free of Django so it can be tested with plain subprocesses.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessSpec:
    """One process to keep running: a display name and the argv to start it with."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    # Stopped only after all the others (a server they use until their last job is done).
    stops_last: bool = False


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0
    # Each delay is drawn from [(1 - jitter) * d, d], so processes that died together (Redis went
    # away under every worker) do not all come back in the same instant.
    jitter: float = 0.5
    healthy_after: float = 10.0
    loud_after: int = 5

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait before start number ``failures + 1`` after ``failures`` in a row."""
        ceiling = min(self.maximum, self.initial * self.factor ** max(0, failures - 1))
        return ceiling * (1.0 - self.jitter * rng.random())


@dataclass
class _Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None


# (event, process name, pid or None, detail): "started", "exited", "start-failed", "stopped".
EventHook = Callable[[str, str, int | None, str], None]


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the supervisor itself is killed (Linux only).

    Children run in their own process groups (so a terminal's Ctrl-C reaches only the
    supervisor, which then stops each of them once); without this, a SIGKILLed supervisor would
    leave them running with nobody to stop them.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (RQ's work horses start their own process group, so killing
    a worker's group misses them). Empty where /proc is missing."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        for child in parents.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        backoff: Backoff | None = None,
        grace: float = 20.0,
        rng: random.Random | None = None,
        on_event: EventHook | None = None,
        cwd: str | Path | None = None,
        tick: float = 0.25,
    ) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"Process names must be unique: {names}")
        self._children = [_Child(spec) for spec in specs]
        self.backoff = backoff or Backoff()
        self.grace = grace
        self._rng = rng or random.Random()
        self._on_event = on_event
        self._cwd = cwd
        self._tick = tick

    def adopt(self, name: str, process: subprocess.Popen[bytes]) -> None:
        """Supervise ``process``, already started (e.g. a server ``up`` waited for), as ``name``."""
        child = self._child(name)
        child.process, child.started_at = process, time.monotonic()

    def pids(self) -> dict[str, int]:
        """The running children's pids by name."""
        return {
            c.spec.name: c.process.pid
            for c in self._children
            if c.process is not None and c.process.poll() is None
        }

    def run(self, stop: threading.Event) -> None:
        """Start every child not yet running and keep them running until ``stop`` is set."""
        try:
            for child in self._children:
                if child.process is None:
                    self._start(child)
            while not stop.is_set():
                now = time.monotonic()
                wait = self._tick
                for child in self._children:
                    if child.restart_at is not None:
                        if now >= child.restart_at:
                            self._start(child)
                        else:
                            wait = min(wait, child.restart_at - now)
                    elif child.process is not None and child.process.poll() is not None:
                        self._exited(child, child.process.returncode)
                stop.wait(max(0.0, wait))
        finally:
            self.stop_all()

    def _child(self, name: str) -> _Child:
        for child in self._children:
            if child.spec.name == name:
                return child
        raise KeyError(name)

    def _emit(self, event: str, child: _Child, pid: int | None, detail: str = "") -> None:
        if self._on_event is not None:
            self._on_event(event, child.spec.name, pid, detail)

    def _start(self, child: _Child) -> None:
        child.restart_at = None
        child.started_at = time.monotonic()
        try:
            child.process = subprocess.Popen(
                list(child.spec.argv),
                env={**os.environ, **child.spec.env},
                cwd=self._cwd,
                process_group=0,
                preexec_fn=_die_with_parent,
            )
        except OSError as error:
            child.process = None
            self._failed(child, f"could not start: {error}")
            self._emit("start-failed", child, None, str(error))
            return
        self._emit("started", child, child.process.pid)

    def _exited(self, child: _Child, code: int) -> None:
        assert child.process is not None
        pid = child.process.pid
        if time.monotonic() - child.started_at >= self.backoff.healthy_after:
            child.failures = 0
        # Whatever it left in its process group (RQ's scheduler process) goes with it, so the
        # replacement starts alone; work horses have their own group and end with their job.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
        self._failed(child, how)
        self._emit("exited", child, pid, str(code))

    def _failed(self, child: _Child, how: str) -> None:
        child.failures += 1
        delay = self.backoff.delay(child.failures, self._rng)
        child.restart_at = time.monotonic() + delay
        name = child.spec.name
        if child.failures >= self.backoff.loud_after:
            logger.error(
                "%s KEEPS FAILING: %s (%d times in a row); the other processes keep running, "
                "retrying in %.1f s",
                name,
                how,
                child.failures,
                delay,
            )
        else:
            logger.warning("%s %s; restarting it in %.1f s", name, how, delay)

    def stop_all(self) -> None:
        for last in (False, True):
            self._stop([c for c in self._children if c.spec.stops_last is last])
        for child in self._children:
            child.restart_at = None

    def _stop(self, children: list[_Child]) -> None:
        running = [c for c in children if c.process is not None and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in %.0f s; killing it", child.spec.name, self.grace)
                for pid in [*descendants(child.process.pid), child.process.pid]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                child.process.wait()
            self._emit("stopped", child, child.process.pid, str(child.process.returncode))
