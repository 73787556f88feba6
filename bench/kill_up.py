"""Kill test under the run command: `up` survives an operator's bad day.

    .venv/bin/python bench/kill_up.py [--generations 300] [--kill-seconds 300] [--time-scale 5]

Starts the real run command (`manage.py up`: embedded Redis, migrate, first admin, then the
Procfile's processes with the simulator) on a scratch database (``<DATABASE_URL's name>_killup``
on the same PostgreSQL, else SQLite) and a scratch state directory, submits generations
throughout, and for --kill-seconds SIGKILLs a random RQ worker or work horse every 2-5 s (the
work horse alone, the worker alone as the out-of-memory killer would, or both) and the embedded
Redis once, half-way. Then the kills stop and the app must settle by itself.

Checks: the web server answered throughout and still does, `up` and every process it runs are
still running, every generation finished (none lost or stuck), no create was paid twice at the
simulator, the ledger equals what the simulator billed with no reservation left open. Measures
the time from the Redis kill to Redis answering again, to the first provider request and to the
first generation progress after it (target: work resumes within 30 s). Exit status 0 only when
every target holds.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
from _harness import (
    ROOT,
    ledger_against_bill,
    nothing_lost_stuck_or_paid_twice,
    project_with_members,
    report_and_exit,
    scratch_database_url,
    signal_each,
    simulator_channel,
)

ACTIVE = ("queued", "submitting", "in_progress", "downloading")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def processes() -> dict[int, tuple[int, int, str]]:
    """pid → (parent pid, process group, command line) for every process."""
    table = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, UnicodeDecodeError):
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), command)
    return table


class Killer:
    """Picks victims among the processes `up` runs."""

    def __init__(self, up_pid: int, rng: random.Random) -> None:
        self.up_pid, self.rng = up_pid, rng
        self.kills: Counter[str] = Counter()

    def workers(self) -> tuple[dict[int, tuple[int, int, str]], list[int]]:
        table = processes()
        return table, [
            pid
            for pid, (parent, _, command) in table.items()
            if parent == self.up_pid and " rqworker " in command
        ]

    def kill_one(self) -> None:
        table, workers = self.workers()
        if not workers:
            return
        # A work horse starts its own process group; RQ's scheduler process stays in the worker's.
        horses = {
            worker: [
                p for p, (parent, group, _) in table.items() if parent == worker and group == p
            ]
            for worker in workers
        }
        busy = [w for w in workers if horses[w]]
        roll = self.rng.random()
        if busy and roll < 0.45:
            victims, kind = horses[self.rng.choice(busy)], "work_horse"
        elif roll < 0.75:
            victims, kind = [self.rng.choice(workers)], "worker_alone"
        else:
            worker = self.rng.choice(busy or workers)
            victims, kind = [*horses[worker], worker], "worker_and_horse"
        signal_each(victims, signal.SIGKILL)
        self.kills[kind] += 1

    def kill_redis(self) -> bool:
        for pid, (parent, _, command) in processes().items():
            if parent == self.up_pid and "redis-server" in command:
                os.kill(pid, signal.SIGKILL)
                return True
        return False


def run(args: argparse.Namespace) -> dict[str, object]:
    var = ROOT / "var" / "bench-killup" / str(os.getpid())
    var.mkdir(parents=True, exist_ok=True)
    web_port, sim_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "OPENAI_API_KEY")}
    env.update(
        DATABASE_URL=scratch_database_url("killup", fresh=True),
        DJANGO_SETTINGS_MODULE="workspace.settings",
        REELHOUSE_VAR_DIR=str(var),
        REELHOUSE_TIME_SCALE=str(args.time_scale),
        REELHOUSE_SIMULATOR_URL=f"http://127.0.0.1:{sim_port}",
        DJANGO_SUPERUSER_PASSWORD="kill test first admin password",
        LOG_LEVEL="INFO",
    )
    os.environ.clear()
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import close_old_connections

    call_command("migrate", interactive=False, verbosity=0)
    from workspace.generations.models import Generation
    from workspace.generations.submission import generation_submit

    channel = simulator_channel(
        name="Kill test provider",
        requests_per_minute=args.requests_per_minute,
        creates_per_minute=args.creates_per_minute,
        max_in_flight=60,
        member_max_in_flight=20,
    )
    project, members = project_with_members(name="Kill test", members=args.members)

    log_path = var / "up.log"
    log = log_path.open("w")
    up = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "up",
            "--port",
            str(web_port),
            "--workers",
            str(args.workers),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    web = f"http://127.0.0.1:{web_port}/accounts/sign-in/"
    sim = f"http://127.0.0.1:{sim_port}/_sim"
    client = httpx.Client(timeout=10)
    rng = random.Random(args.seed)
    killer = Killer(up.pid, rng)
    web_checks = 0
    web_failures: list[str] = []

    def check_web() -> None:
        nonlocal web_checks
        web_checks += 1
        moment = round(time.monotonic() - started, 1)
        try:
            status = client.get(web).status_code
        except httpx.HTTPError as error:
            web_failures.append(f"{moment}s: {error!r}")
            return
        if status != 200:
            web_failures.append(f"{moment}s: HTTP {status}")

    redis_kill: dict[str, object] = {}
    watcher: threading.Thread | None = None
    try:
        deadline = time.monotonic() + 120
        while "Press Ctrl-C to stop" not in log_path.read_text():
            if up.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"up did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        banner = re.search(r"Processes \(from Procfile\): (.*)", log_path.read_text())
        # The banner comes as the processes start; the clock starts once the web server answers.
        while True:
            try:
                if client.get(web).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if up.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the web server never answered:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        started = time.monotonic()
        submitted = 0
        next_kill = started + rng.uniform(2, 5)
        redis_due = started + args.kill_seconds / 2
        kill_until = started + args.kill_seconds
        # Generations arrive throughout the first 80 % of the kills, so work is in flight at
        # every kill, the Redis one included.
        per_second = args.generations / (args.kill_seconds * 0.8)
        while time.monotonic() < kill_until:
            now = time.monotonic()
            due = min(args.generations, int((now - started) * per_second) + 1)
            while submitted < due:
                generation_submit(
                    project=project,
                    user=members[submitted % len(members)],
                    channel=channel,
                    model="sora-2",
                    prompt=f"kill test video {submitted}",
                    size="1280x720",
                    seconds=4,
                )
                submitted += 1
            if now >= next_kill:
                killer.kill_one()
                next_kill = now + rng.uniform(2, 5)
            if watcher is None and now >= redis_due:
                requests_before = client.get(f"{sim}/state").json()["counters"]["requests_total"]
                killed_at = time.time()
                if killer.kill_redis():
                    # Measured beside the loop, so the worker kills go on meanwhile.
                    watcher = threading.Thread(
                        target=lambda at=killed_at, before=requests_before: redis_kill.update(
                            measure_resume(sim, at, before, var)
                        )
                    )
                    watcher.start()
            check_web()
            close_old_connections()
            time.sleep(0.5)
        kill_time = time.monotonic() - started
        if watcher is not None:
            watcher.join()
        settle_deadline = time.monotonic() + args.settle_seconds
        while time.monotonic() < settle_deadline:
            if not Generation.objects.filter(status__in=ACTIVE).exists():
                break
            check_web()
            close_old_connections()
            time.sleep(1)
        settle_time = time.monotonic() - started - kill_time
        # One more recovery sweep for reservations of jobs that ended under a kill.
        time.sleep(35)
        web_up_at_end = client.get(web).status_code == 200
        up_running = up.poll() is None
        running_now = Counter(
            label(command) for parent, _, command in processes().values() if parent == up.pid
        )
        creates = client.get(f"{sim}/creates").json()
        counters = client.get(f"{sim}/state").json()["counters"]
    finally:
        stop_started = time.monotonic()
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGTERM)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
        stop_seconds = time.monotonic() - stop_started
        log.close()
    billed_per_prompt = Counter(c["prompt"] for c in creates if c["billed"])
    statuses = Counter(Generation.objects.values_list("status", flat=True))
    stuck = sum(statuses[s] for s in ACTIVE)
    ledger = ledger_against_bill(counters["billed_cents"])
    text = log_path.read_text()
    return {
        "generations": submitted,
        "kill_seconds": round(kill_time, 1),
        "settle_seconds": round(settle_time, 1),
        "kills": dict(killer.kills),
        "restarts_logged": len(re.findall(r"restarting it in", text)),
        "keeps_failing_logged": len(re.findall(r"KEEPS FAILING", text)),
        "name_clashes_logged": len(re.findall(r"There exists an active worker named", text)),
        "processes_declared": banner.group(1) if banner else None,
        "processes_running_at_end": dict(running_now),
        "redis": redis_kill,
        "web_checks": web_checks,
        "web_failures": web_failures,
        "web_up_at_end": web_up_at_end,
        "up_running_at_end": up_running,
        "up_stop_seconds": round(stop_seconds, 1),
        "up_exit_code": up.returncode,
        "lost": submitted - Generation.objects.count() + stuck,
        "stuck_after_run": stuck,
        "duplicate_paid_creations": sum(n - 1 for n in billed_per_prompt.values() if n > 1),
        **ledger,
        "final_states": dict(statuses),
        "simulator_requests": counters["requests_total"],
        "log": str(log_path),
    }


def label(command: str) -> str:
    for known in ("redis-server", "gunicorn", "rqworker default", "rqworker dispatch"):
        if known in command:
            return known
    for known in ("reelhouse_scheduler", "simulate_provider"):
        if known in command:
            return known
    return command


def measure_resume(
    sim: str, killed_at: float, requests_before: int, var: Path
) -> dict[str, object]:
    """Seconds from the Redis kill to: Redis answering, the first provider request after that,
    the first generation progress after that (a row past `queued` updated by a worker)."""
    import redis as redis_lib
    from django.db import close_old_connections
    from django.db.models import Max

    from workspace.generations.models import Generation

    client = httpx.Client(timeout=5)
    from django.db.models import Q

    # Work the provider already had when Redis died: every one of its jobs went with Redis.
    in_flight = set(
        Generation.objects.filter(
            status__in=["submitting", "in_progress", "downloading"]
        ).values_list("id", flat=True)
    )
    all_progressed = None

    socket_path = var / "redis" / "redis.sock"
    back = first_request = first_progress = None
    requests_at_back = 0
    limit = time.time() + 240
    while time.time() < limit and None in (first_request, first_progress, all_progressed):
        now = time.time()
        if back is None:
            try:
                if redis_lib.Redis(unix_socket_path=str(socket_path), socket_timeout=0.5).ping():
                    back = now
                    requests_at_back = client.get(f"{sim}/state").json()["counters"][
                        "requests_total"
                    ]
            except (redis_lib.RedisError, OSError):
                pass
        else:
            if first_request is None:
                total = client.get(f"{sim}/state").json()["counters"]["requests_total"]
                if total > requests_at_back:
                    first_request = now
            if first_progress is None:
                close_old_connections()
                latest = Generation.objects.exclude(status="queued").aggregate(
                    at=Max("updated_at")
                )["at"]
                if latest is not None and latest.timestamp() > back:
                    first_progress = now
            if all_progressed is None:
                close_old_connections()
                moment = datetime.fromtimestamp(back, UTC)
                waiting = (
                    Generation.objects.filter(pk__in=in_flight)
                    .exclude(Q(updated_at__gt=moment) | Q(last_polled_at__gt=moment))
                    .count()
                )
                if not waiting:
                    all_progressed = now
        time.sleep(0.1)
    close_old_connections()

    def since(moment: float | None) -> float | None:
        return None if moment is None else round(moment - killed_at, 2)

    return {
        "killed_at": datetime.fromtimestamp(killed_at, UTC).isoformat(),
        "requests_before_kill": requests_before,
        "answering_after_s": since(back),
        "first_provider_request_after_s": since(first_request),
        "first_generation_progress_after_s": since(first_progress),
        "in_flight_at_kill": len(in_flight),
        "all_in_flight_progressed_after_s": since(all_progressed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generations", type=int, default=300)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="up --workers")
    parser.add_argument("--time-scale", type=float, default=5.0)
    parser.add_argument("--requests-per-minute", type=int, default=600)
    parser.add_argument("--creates-per-minute", type=int, default=60)
    parser.add_argument("--kill-seconds", type=float, default=300.0)
    parser.add_argument("--settle-seconds", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args()
    report_and_exit(run(args), targets_met=targets_met, json_path=args.json)


def targets_met(report: dict[str, object]) -> bool:
    redis = report["redis"]
    resumed = redis.get("first_provider_request_after_s") if isinstance(redis, dict) else None
    return (
        nothing_lost_stuck_or_paid_twice(report)
        and not report["web_failures"]
        and report["web_up_at_end"]
        and report["up_running_at_end"]
        and report["name_clashes_logged"] == 0
        and resumed is not None
        and resumed < 30
    )


if __name__ == "__main__":
    main()
