"""Chaos run: nothing lost, nothing paid twice, nothing stuck, the ledger equal to the bill.

    .venv/bin/python bench/chaos.py [--generations 300] [--time-scale 10] [--fault-seconds 90]

Real RQ workers (2 for status checks and downloads, 2 dispatch lanes: 4 worker processes) and
the recovery scheduler run as separate processes against the database (DATABASE_URL, else
SQLite) and a Redis server this run starts and owns (it restarts it once, mid-run). While the
faults run, a random worker and its work horse are SIGKILLed every few seconds, the simulator
answers 10 % of calls with a 5xx and fails 10 % of jobs with processing_error, resets 5 % of
connections after a create, answers 5 % of calls slower than the client timeout, blocks 2 % of
jobs for moderation, and throws bursts of 429s. Then the faults stop and the system must settle
by itself. Exit status 0 only when every target holds.

With ``--mix creative`` (the default) the work is what a creative team sends, not only text:
one video in ten starts from an image, one request in twenty asks for three takes, and while
the faults run, finished videos are edited, remixed and extended (``--changes`` of them), each
through the same pipeline, limits and ledger. A paid duplicate is a job the simulator billed
that no generation holds as its own.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

from _harness import (
    ROOT,
    children_of,
    ledger_against_bill,
    nothing_lost_stuck_or_paid_twice,
    paid_duplicates,
    project_with_members,
    report_and_exit,
    scratch_database_url,
    signal_each,
    simulator_channel,
    stop,
)

SLOW_CLIENT_TIMEOUT = 2  # seconds the workers wait for a provider answer in this run


class Workers:
    """RQ worker processes this run owns, restartable one by one."""

    def __init__(self, env: dict[str, str], queues: list[str]) -> None:
        self.env, self.queues = env, queues
        self.processes: list[subprocess.Popen[bytes]] = [self._start(q) for q in queues]
        self.kills = 0

    def _start(self, queue: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "rqworker", queue, "--with-scheduler"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill_one(self, rng: random.Random) -> None:
        index = rng.randrange(len(self.processes))
        process = self.processes[index]
        # The work horse, then the worker.
        signal_each([*children_of(process.pid), process.pid], signal.SIGKILL)
        process.wait()
        self.kills += 1
        self.processes[index] = self._start(self.queues[index])

    def revive(self) -> None:
        """Restart any worker that exited by itself (e.g. when Redis went away)."""
        for index, process in enumerate(self.processes):
            if process.poll() is not None:
                self.processes[index] = self._start(self.queues[index])

    def stop(self) -> None:
        stop(self.processes)


def solid_png(width: int, height: int) -> bytes:
    """A valid PNG of one colour, made without an imaging library."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + b"\x30\x60\x90" * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height, 9))
        + chunk(b"IEND", b"")
    )


def chaos_database_url() -> str:
    """CHAOS_DATABASE_URL as given, else ``<name>_chaos`` beside the configured database."""
    return os.environ.get("CHAOS_DATABASE_URL") or scratch_database_url("chaos", fresh=False)


def run(args: argparse.Namespace) -> dict[str, object]:
    var = ROOT / "var" / "bench-chaos"
    var.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from workspace.core import embedded_redis

    # A Redis of this run's own (it is restarted mid-run), and a database of its own (it is
    # wiped): never the ones DATABASE_URL / REDIS_URL name.
    socket_path = var / f"redis-{os.getpid()}" / "redis.sock"
    redis_process = embedded_redis.start(socket_path)
    os.environ["DATABASE_URL"] = chaos_database_url()
    os.environ.update(
        {
            "REDIS_URL": f"unix://{socket_path}",
            "PROVIDER_READ_TIMEOUT": str(SLOW_CLIENT_TIMEOUT),
            "PROVIDER_CONNECT_TIMEOUT": "2",
        }
    )
    from _harness import setup_django

    env = setup_django(name="chaos", time_scale=args.time_scale)
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)

    from workspace.core.rq import get_redis
    from workspace.generations.images import PreparedImage
    from workspace.generations.models import Generation, InputRole, Operation, Status
    from workspace.generations.submission import generation_submit
    from workspace.simulator.server import SimulatorConfig, SimulatorServer

    get_redis().flushdb()
    rng = random.Random(args.seed)
    faults = {
        "fail_5xx_rate": 0.10,
        "processing_error_rate": 0.10,
        "reset_after_create_rate": 0.05,
        "slow_rate": 0.05,
        "moderation_rate": 0.02,
    }
    sim = SimulatorServer(
        config=SimulatorConfig(
            time_scale=args.time_scale,
            seed=args.seed,
            slow_seconds=SLOW_CLIENT_TIMEOUT + 1.5,
            **faults,
        )
    ).start()
    env["REELHOUSE_SIMULATOR_URL"] = sim.url
    from django.conf import settings

    settings.SIMULATOR_URL = sim.url
    channel = simulator_channel(
        name="Chaos provider",
        requests_per_minute=100_000,
        creates_per_minute=args.creates_per_minute,
        max_in_flight=100,
        member_max_in_flight=40,
    )
    project, members = project_with_members(name="Chaos", members=args.members)
    creative = args.mix == "creative"
    still = PreparedImage(
        role=InputRole.FIRST_FRAME,
        content=solid_png(1280, 720),
        content_type="image/png",
        width=1280,
        height=720,
        original_name="still.png",
    )
    requests = Counter[str]()
    for n in range(args.generations):
        takes = 3 if creative and n % 20 == 7 else 1
        image = creative and n % 10 == 3
        generation_submit(
            project=project,
            user=members[n % len(members)],
            channel=channel,
            model="sora-2",
            prompt=f"chaos video {n}",
            size="1280x720",
            seconds=4,
            images=[still] if image else [],
            takes=takes,
        )
        requests["takes" if takes > 1 else "image" if image else "text"] += takes
    changes_left = args.changes if creative else 0
    change_kinds = [Operation.EDIT, Operation.EXTEND, Operation.REMIX]

    def send_changes() -> None:
        nonlocal changes_left
        if changes_left <= 0:
            return
        sources = Generation.objects.filter(
            status=Status.COMPLETED, operation=Operation.GENERATE, derivatives__isnull=True
        )[:changes_left]
        for source in sources:
            operation = change_kinds[changes_left % len(change_kinds)]
            generation_submit(
                project=project,
                user=source.created_by,
                model=source.model,
                prompt=f"chaos {operation} {changes_left} of {source.prompt}",
                size=source.size,
                seconds=4,
                operation=operation,
                parent=source,
            )
            requests[str(operation)] += 1
            changes_left -= 1
    workers = Workers(env, ["default", "default", "dispatch", "dispatch"])
    scheduler = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "reelhouse_scheduler",
            "--interval",
            "2",
            "--stale-after",
            "15",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    active = [Status.QUEUED, Status.SUBMITTING, Status.IN_PROGRESS, Status.DOWNLOADING]
    started = time.monotonic()
    redis_restarted = False
    next_kill = started + rng.uniform(2, 5)
    next_burst = started + rng.uniform(5, 10)
    try:
        while time.monotonic() - started < args.fault_seconds:
            now = time.monotonic()
            if now >= next_kill:
                workers.kill_one(rng)
                next_kill = now + rng.uniform(2, 5)
            if now >= next_burst:
                sim.update_config(rpm_limit=2)  # a burst of 429s for a couple of seconds
                time.sleep(2)
                sim.update_config(rpm_limit=None)
                next_burst = time.monotonic() + rng.uniform(8, 15)
            if not redis_restarted and now - started > args.fault_seconds / 2:
                # Everything RQ knew is gone: the database must be enough to carry on.
                redis_process.kill()  # type: ignore[union-attr]
                redis_process.wait()  # type: ignore[union-attr]
                redis_process = embedded_redis.start(socket_path)
                redis_restarted = True
            workers.revive()
            send_changes()
            if scheduler.poll() is not None:
                scheduler = subprocess.Popen(
                    scheduler.args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            if not Generation.objects.filter(status__in=active).exists() and changes_left <= 0:
                break
            time.sleep(0.5)
        fault_time = time.monotonic() - started
        sim.update_config(**{name: 0.0 for name in faults}, rpm_limit=None)
        settle_deadline = time.monotonic() + args.settle_seconds
        while time.monotonic() < settle_deadline:
            workers.revive()
            send_changes()
            if not Generation.objects.filter(status__in=active).exists() and changes_left <= 0:
                break
            time.sleep(1)
        # Give the scheduler one more sweep for reservations of jobs that ended under a kill.
        time.sleep(3)
    finally:
        workers.stop()
        scheduler.terminate()
        scheduler.wait(timeout=15)
    settle_time = time.monotonic() - started - fault_time
    sim_log = sim.creates()
    counters = sim.counters()
    unheld = paid_duplicates(sim_log)
    duplicates = len(unheld)
    billed_per_prompt = Counter(c["prompt"] for c in unheld)
    statuses = Counter(Generation.objects.values_list("status", flat=True))
    by_class = Counter(
        Generation.objects.filter(status=Status.FAILED).values_list("error_class", flat=True)
    )
    ledger = ledger_against_bill(counters["billed_cents"])
    stuck = sum(statuses[s] for s in active)
    duplicated = [prompt for prompt, n in billed_per_prompt.items() if n > 1]
    duplicate_details = []
    for prompt in duplicated:
        generation = Generation.objects.filter(prompt=prompt).first()
        duplicate_details.append(
            {
                "prompt": prompt,
                "creates": [
                    {k: c.get(k) for k in ("id", "answer", "slow", "status", "billed", "created_at_real")}
                    for c in sim_log
                    if c["prompt"] == prompt
                ],
                "generation": {
                    "status": generation.status,
                    "provider_job_id": generation.provider_job_id,
                    "history": generation.provider_job_history,
                    "submit_attempts": generation.submit_attempts,
                    "provider_retries": generation.provider_retries,
                    "error_class": generation.error_class,
                }
                if generation
                else None,
            }
        )
    report = {
        "generations": args.generations,
        "members": args.members,
        "worker_kills": workers.kills,
        "redis_restarted": redis_restarted,
        "fault_seconds": round(fault_time, 1),
        "settle_seconds": round(settle_time, 1),
        "requests": dict(requests),
        "lost": sum(requests.values()) - Generation.objects.count() + stuck,
        "duplicate_paid_creations": duplicates,
        "stuck_after_run": stuck,
        **ledger,
        "final_states": dict(statuses),
        "duplicates": duplicate_details,
        "failed_by_class": dict(by_class),
        "simulator": {
            k: counters[k]
            for k in (
                "creates",
                "jobs_billed",
                "errors_5xx_sent",
                "connections_reset",
                "slow_responses",
                "rate_limited_429",
                "jobs_failed",
            )
        },
    }
    sim.stop()
    if redis_process is not None:
        redis_process.terminate()
        redis_process.wait(timeout=10)
    import shutil

    shutil.rmtree(socket_path.parent, ignore_errors=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generations", type=int, default=300)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--creates-per-minute", type=int, default=120)
    parser.add_argument("--fault-seconds", type=float, default=120.0)
    parser.add_argument("--settle-seconds", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--mix", choices=["creative", "text"], default="creative")
    parser.add_argument("--changes", type=int, default=30, help="edits, remixes, extensions")
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args()
    report_and_exit(run(args), targets_met=targets_met, json_path=args.json)


def targets_met(report: dict[str, object]) -> bool:
    return nothing_lost_stuck_or_paid_twice(report)


if __name__ == "__main__":
    main()
