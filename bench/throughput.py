"""Benchmark: the whole limit used, finished videos stored within seconds, estimates that hold.

    .venv/bin/python bench/throughput.py [--scenarios issue backlog creates rpm1000]

Each scenario runs Reelhouse (real RQ workers in separate processes, PostgreSQL/Redis from
DATABASE_URL/REDIS_URL, else SQLite and an embedded Redis) against the simulator, with time
running ``--time-scale`` times faster in the simulator, the limiter and every wait; all figures
are in simulated (provider) time. Point DATABASE_URL at a scratch database: it is wiped.

- issue:   the issue's run: every request counted (50 per sliding minute), 10 members x 10
           videos, renders of 30 s, 10 % of jobs failing with "under heavy load", default caps.
- backlog: every request counted (50/min), 300 videos of 4, 8 and 12 s from 5 members rendering
           10 s per video second (40-120 s); queue ETAs taken when all 300 are queued.
- creates: creates counted alone (50/min), in-flight cap 20, the same 40-120 s renders: the cap
           binds (20 / 80 s = 15 videos a minute).
- rpm1000: every request counted at 1,000 per minute, 30 s renders, at time scale 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from _harness import machine, setup_django, start_workers, stop, wait_until


@dataclass(frozen=True)
class Scenario:
    name: str
    rpm: int
    scope: str  # "all": every request counts; "create": creates counted alone
    members: int
    per_member: int
    lengths: tuple[int, ...]
    render_per_second: float  # simulated render seconds per video second (0: render_fixed)
    render_fixed: float
    max_in_flight: int
    member_max_in_flight: int
    time_scale: float
    processing_error_rate: float = 0.0
    default_workers: int = 2
    dispatch_workers: int = 2


SCENARIOS = {
    "issue": Scenario("issue", 50, "all", 10, 10, (4,), 0, 30.0, 20, 5, 5.0, 0.10, 4, 2),
    "backlog": Scenario("backlog", 50, "all", 5, 60, (4, 8, 12), 10.0, 0, 200, 100, 5.0, 0.0, 4, 2),
    "creates": Scenario("creates", 50, "create", 5, 30, (4, 8, 12), 10.0, 0, 20, 20, 5.0, 0.0, 4, 2),
    "rpm1000": Scenario("rpm1000", 1000, "all", 10, 50, (4,), 0, 30.0, 500, 100, 1.0, 0.0, 8, 2),
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def run(scenario: Scenario) -> dict[str, Any]:
    env = setup_django(name="throughput", time_scale=scenario.time_scale)
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db.models import Q, Sum

    from workspace.billing.models import LedgerEntry
    from workspace.core.rq import get_redis
    from workspace.generations.lanes import channel_kick
    from workspace.generations.models import Generation, Status
    from workspace.generations.standings import queue_standings
    from workspace.generations.submission import generation_submit
    from workspace.projects.models import Role
    from workspace.projects.services import membership_add, project_create
    from workspace.providers.models import Channel
    from workspace.simulator.server import SimulatorConfig, SimulatorServer

    scale = scenario.time_scale
    sim = SimulatorServer(config=SimulatorConfig(time_scale=scale, seed=11)).start()
    env["REELHOUSE_SIMULATOR_URL"] = sim.url
    from django.conf import settings

    settings.SIMULATOR_URL = sim.url
    call_command("flush", interactive=False, verbosity=0)
    get_redis().flushdb()
    sim.reset()
    sim.update_config(
        rpm_limit=scenario.rpm,
        rpm_scope=scenario.scope,
        render_seconds=scenario.render_fixed or 6.0,
        render_seconds_per_video_second=scenario.render_per_second,
        processing_error_rate=scenario.processing_error_rate,
    )
    every_request = scenario.scope == "all"
    channel = Channel.objects.create(
        slug="openai",
        name="Simulated provider",
        requests_per_minute=scenario.rpm if every_request else 100_000,
        creates_per_minute=None if every_request else scenario.rpm,
        max_in_flight=scenario.max_in_flight,
        member_max_in_flight=scenario.member_max_in_flight,
        member_max_queued=1000,
    )
    users = [User.objects.create_user(f"member{i}") for i in range(scenario.members)]
    project = project_create(name="Bench", owner=users[0])
    for user in users[1:]:
        membership_add(project=project, username=user.username, role=Role.EDITOR, actor=None)

    workers = start_workers(
        env, default=scenario.default_workers, dispatch=scenario.dispatch_workers
    )
    from rq import Worker

    wanted = scenario.default_workers + scenario.dispatch_workers
    wait_until(lambda: len(Worker.all(connection=get_redis())) >= wanted, timeout=120, every=0.2)
    samples: list[tuple[float, int]] = []
    sampling = threading.Event()

    trace = open(os.environ["BENCH_TRACE"], "w") if os.environ.get("BENCH_TRACE") else None  # noqa: SIM115

    def sample() -> None:
        from django.db import connection
        from django.db.models import Count

        from workspace.core.rq import get_queue

        beat = 0
        while not sampling.is_set():
            samples.append((time.time(), int(sim.counters()["requests_total"])))
            beat += 1
            if trace is not None and beat % 4 == 0:
                states = dict(Generation.objects.values_list("status").annotate(n=Count("id")))
                lanes = []
                for i in range(scenario.dispatch_workers):
                    job = get_queue("dispatch").fetch_job(f"dispatch-{channel.pk}-{i}")
                    lanes.append(job.get_status() if job else None)
                trace.write(
                    f"{(time.time() - started) * scale:7.1f} req={samples[-1][1]} {states} "
                    f"default={len(get_queue())} scheduled={get_queue().scheduled_job_registry.count} "
                    f"lanes={lanes}\n"
                )
                trace.flush()
            time.sleep(0.25)
        connection.close()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rng = random.Random(5)
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    total = scenario.members * scenario.per_member
    ids: list[str] = []
    try:
        # Members submit in turns, as a team does; lengths mixed at random.
        for n in range(scenario.per_member):
            for user in users:
                generation = generation_submit(
                    project=project,
                    user=user,
                    channel=channel,
                    model="sora-2",
                    prompt=f"{user.username} video {n}",
                    size="1280x720",
                    seconds=rng.choice(scenario.lengths),
                )
                ids.append(str(generation.pk))
        channel_kick(channel_id=channel.pk)
        eta_taken = time.time()
        standings = queue_standings(channel=channel, generation_ids=set(ids))
        etas = {gid: s.eta.timestamp() for gid, s in standings.items() if s.eta is not None}
        requests_needed = total * 5 / scenario.rpm * 60 / scale  # a lower bound, real seconds
        final = [Status.COMPLETED, Status.FAILED, Status.CANCELED]
        wait_until(
            lambda: Generation.objects.filter(status__in=final).count() == total,
            timeout=requests_needed * 3 + 600 / scale + 120,
            every=1,
        )
        # Posters and spritesheets may still be coming (they wait for spare slots under a
        # backlog): every request the videos need is counted, and when the last file came.
        wait_until(
            lambda: not Generation.objects.filter(status=Status.COMPLETED)
            .filter(Q(thumbnail="") | Q(spritesheet=""))
            .exists(),
            timeout=requests_needed + 600 / scale + 60,
            every=0.5,
        )
        files_done = time.time()
    finally:
        sampling.set()
        stop(workers)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    counters = sim.counters()
    log = sorted(sim.creates(), key=lambda c: c["created_at_real"])
    sim.stop()

    rows = {
        str(g["id"]): g
        for g in Generation.objects.values(
            "id", "prompt", "status", "provider_job_id", "completed_at", "seconds"
        )
    }
    by_job = {c["id"]: c for c in log}
    first_create: dict[str, float] = {}
    for c in log:
        first_create.setdefault(c["prompt"], c["created_at_real"])
    completed = [r for r in rows.values() if r["status"] == Status.COMPLETED]
    timed = sorted(
        (
            (by_job[r["provider_job_id"]]["finished_at_real"] - started) * scale,
            (r["completed_at"].timestamp() - by_job[r["provider_job_id"]]["finished_at_real"])
            * scale,
        )
        for r in completed
        if r["provider_job_id"] in by_job and by_job[r["provider_job_id"]].get("finished_at_real")
    )
    latencies = [latency for _, latency in timed]
    # Under backlog: from the first create to the last one (work was waiting all along).
    t_first, t_last = log[0]["created_at_real"], log[-1]["created_at_real"]

    def requests_at(moment: float) -> int:
        return min(samples, key=lambda s: abs(s[0] - moment))[1]

    backlog_minutes = (t_last - t_first) * scale / 60
    req_rate = (requests_at(t_last) - requests_at(t_first)) / backlog_minutes
    # The same rate from the first finished render on: before it only creates can be sent, and
    # at any pace that sustains itself they use 1 slot in (1 + follow-ups per video). On a
    # short backlog that start weighs heavily; this figure leaves it out (and says so).
    finished = [c["finished_at_real"] for c in log if c.get("finished_at_real")]
    t_steady = min(finished) if finished else t_first
    steady_minutes = max(1e-9, (t_last - t_steady) * scale / 60)
    steady_rate = (requests_at(t_last) - requests_at(t_steady)) / steady_minutes
    window = 60 / scale
    max_window = max(
        (later[1] - earlier[1])
        for earlier in samples
        for later in samples
        if 0 <= later[0] - earlier[0] <= window
    )
    creates_rate = (len(log) - 1) / backlog_minutes
    mean_render = statistics.mean(
        (scenario.render_per_second * r["seconds"]) or scenario.render_fixed for r in rows.values()
    )
    create_bound = min(scenario.rpm, scenario.max_in_flight / mean_render * 60)
    errors = []
    for gid, eta in etas.items():
        actual = first_create.get(rows[gid]["prompt"])
        if actual is not None and actual - eta_taken > 0:
            errors.append(abs(eta - actual) / (actual - eta_taken))
    last_stored = max(r["completed_at"].timestamp() for r in completed) if completed else started
    wall = (last_stored - started) * scale
    billed = Counter(c["prompt"] for c in log if c["billed"])
    spent = LedgerEntry.objects.aggregate(total=Sum("spent_cents"))["total"] or 0
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return {
        "scenario": scenario.name,
        "limit": scenario.rpm,
        "scope": scenario.scope,
        "time_scale": scale,
        "videos": total,
        "completed": len(completed),
        "failed": sum(1 for r in rows.values() if r["status"] == Status.FAILED),
        "lost": total - len(completed) - sum(1 for r in rows.values() if r["status"] == Status.FAILED),
        "requests_total": counters["requests_total"],
        "requests_per_min_over_limit": req_rate / scenario.rpm,
        "requests_per_min_over_limit_after_first_render": steady_rate / scenario.rpm,
        "max_requests_in_60s_over_limit": max_window / scenario.rpm,
        "creates_per_min_over_bound": creates_rate / create_bound,
        "create_bound_per_min": create_bound,
        "stored_latency_median_s": statistics.median(latencies) if latencies else None,
        "stored_latency_p95_s": percentile(latencies, 0.95),
        # Where the slow ones were: (finished at the provider, s after the start; waited, s).
        "slowest_stored": [
            [round(at, 1), round(latency, 1)]
            for at, latency in sorted(timed, key=lambda t: -t[1])[:12]
        ],
        "status_checks_per_video": counters["status_calls"] / max(1, counters["jobs_completed"]),
        "eta_median_relative_error": statistics.median(errors) if errors else None,
        "eta_samples": len(errors),
        "wall_s": wall,
        "wall_over_requests_per_limit": wall / (counters["requests_total"] / scenario.rpm * 60),
        # Until the last poster and spritesheet were stored too (they may come after the videos).
        "all_files_wall_over_requests_per_limit": (files_done - started)
        * scale
        / (counters["requests_total"] / scenario.rpm * 60),
        "rate_limited_429": counters["rate_limited_429"],
        "duplicate_paid_creations": sum(n - 1 for n in billed.values() if n > 1),
        "ledger_minus_bill_cents": spent - counters["billed_cents"],
        "worker_cpu_s": cpu,
        "worker_cpu_s_per_1000_requests": cpu / counters["requests_total"] * 1000,
        "jobs_failed_at_provider": counters["jobs_failed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--time-scale",
        type=float,
        help="run every chosen scenario at this time scale instead of its own (a lower one "
        "leaves more real time for a loaded machine's scheduling lateness)",
    )
    args = parser.parse_args()
    if os.environ.get("BENCH_CHILD") == "1":
        scenario = SCENARIOS[args.scenarios[0]]
        if args.time_scale:
            scenario = dataclasses.replace(scenario, time_scale=args.time_scale)
        print("RESULT " + json.dumps(run(scenario)), flush=True)
        return
    print(f"machine: {machine()}", flush=True)
    results = []
    for name in args.scenarios:
        # Settings (the time scale) are fixed per process: each scenario runs in a child.
        begun = time.time()
        out = subprocess.run(
            [sys.executable, __file__, "--scenarios", name]
            + (["--time-scale", str(args.time_scale)] if args.time_scale else []),
            env={**os.environ, "BENCH_CHILD": "1"},
            capture_output=True,
            text=True,
        )
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            raise SystemExit(f"scenario {name} failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
        result = json.loads(lines[-1][len("RESULT ") :])
        result["real_seconds"] = round(time.time() - begun, 1)
        results.append(result)
        print(json.dumps(result, indent=1), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
