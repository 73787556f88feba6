"""Benchmark: central pacing and fairness against a naive client, on the same simulator.

    .venv/bin/python bench/limits.py [--rpm 50 200] [--time-scale 10]

For each limit it runs Reelhouse (real RQ workers in separate processes, the database as the
queue of record, the shared Redis limiter) and then a naive baseline client that does what
typical scripts do (send everything at once; on an error retry 3 times after 5 s x attempt;
poll every 3 s), against the simulator enforcing the same limit on creates. Time runs
``--time-scale`` times faster in the simulator, the limiter and both clients alike; every figure
is reported in simulated (provider) time.

Uses DATABASE_URL / REDIS_URL when set (point them at a scratch database: the benchmark wipes
it), else SQLite and an embedded Redis under var/.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from _harness import machine, setup_django, start_workers, stop, wait_until

HEAVY_JOBS = 200
MID_MEMBERS = 4
MID_JOBS = 25


def max_in_window(times: list[float], window: float) -> int:
    best = 0
    for index, start in enumerate(times):
        best = max(best, bisect.bisect_left(times, start + window) - index)
    return best


def jain(values: list[float]) -> float:
    squares = sum(v * v for v in values)
    return sum(values) ** 2 / (len(values) * squares) if squares else 0.0


@dataclass
class Report:
    label: str
    creates: int = 0
    creates_per_minute: float = 0.0
    max_window: int = 0
    sent_429: int = 0
    status_per_video: float = 0.0
    completed: int = 0
    lost: int = 0
    light_wait_slots: int = 0
    light_wait_seconds: float = 0.0
    fairness: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


FAIR_SHARE = 15  # creates per member in the window where everyone still had work waiting


def analyse(
    label: str,
    sim: Any,
    scale: float,
    owners: dict[str, str],
    light_submitted_real: float,
    all_queued_real: float,
    completed: int,
    lost: int,
    started_real: float,
) -> Report:
    """Figures from the simulator's own logs; ``owners`` maps a prompt to its member."""
    log = sorted(sim.creates(), key=lambda c: c["created_at_real"])
    counters = sim.counters()
    times = [(c["created_at_real"] - log[0]["created_at_real"]) * scale for c in log]
    members = [owners.get(c["prompt"], "?") for c in log]
    report = Report(label=label, creates=len(log))
    # Work waits from the first submission until the last create: the rate over that time,
    # per simulated minute (creates the provider accepted, not attempts).
    span = (log[-1]["created_at_real"] - started_real) * scale if log else 0.0
    report.creates_per_minute = len(log) / span * 60 if span else 0.0
    report.max_window = max_in_window(times, 60.0)
    report.sent_429 = int(counters["rate_limited_429"])
    report.status_per_video = counters["status_calls"] / max(1, counters["jobs_completed"])
    report.completed, report.lost = completed, lost
    light_index = next((i for i, m in enumerate(members) if m == "light"), None)
    if light_index is not None:
        light_real = log[light_index]["created_at_real"]
        report.light_wait_seconds = max(0.0, (light_real - light_submitted_real) * scale)
        report.light_wait_slots = sum(
            1 for c in log[:light_index] if c["created_at_real"] >= light_submitted_real
        )
    # Jain's index over the heavy and the mid members from the moment all their work was
    # queued, over the next creates in which each could have had FAIR_SHARE (all still had work).
    after = [
        m for c, m in zip(log, members, strict=True) if c["created_at_real"] >= all_queued_real
    ]
    backlogged = ["heavy", *[f"mid{i}" for i in range(MID_MEMBERS)]]
    window = [m for m in after if m in backlogged][: len(backlogged) * FAIR_SHARE]
    shares = [window.count(name) / FAIR_SHARE for name in backlogged]
    report.fairness = jain(shares)
    report.extra["creates_total_at_simulator"] = counters["creates"]
    buckets: dict[int, int] = {}
    for t in times:
        buckets[int(t // 10)] = buckets.get(int(t // 10), 0) + 1
    report.extra["creates_per_10s"] = [buckets.get(i, 0) for i in range(max(buckets) + 1)] if buckets else []
    return report


def run_reelhouse(
    sim: Any, rpm: int, scale: float, env: dict[str, str], *, mix: str = "text"
) -> Report:
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from workspace.core.rq import get_redis
    from workspace.generations.lanes import channel_kick
    from workspace.generations.models import Generation, Status
    from workspace.generations.submission import generation_submit
    from workspace.projects.models import Role
    from workspace.projects.services import membership_add, project_create
    from workspace.providers.models import Channel

    call_command("flush", interactive=False, verbosity=0)  # a scratch database, wiped per run
    get_redis().flushdb()
    channel = Channel.objects.create(
        slug="openai",
        name="Simulated provider",
        requests_per_minute=100_000,
        creates_per_minute=rpm,
        max_in_flight=200,
        member_max_in_flight=100,
        member_max_queued=500,
    )
    owner = User.objects.create_user("heavy")
    project = project_create(name="Bench", owner=owner)
    names = ["light", *[f"mid{i}" for i in range(MID_MEMBERS)]]
    users = {"heavy": owner}
    for name in names:
        users[name] = User.objects.create_user(name)
        membership_add(project=project, username=name, role=Role.EDITOR, actor=None)
    owners: dict[str, str] = {}
    from chaos import solid_png

    from workspace.generations.images import PreparedImage
    from workspace.generations.models import InputRole

    still = PreparedImage(
        role=InputRole.FIRST_FRAME,
        content=solid_png(1280, 720),
        content_type="image/png",
        width=1280,
        height=720,
    )
    made = 0

    def submit(name: str, n: int) -> None:
        # The creative mix: the mid members start one video in five from an image and ask
        # for two takes in one request in ten (the heavy member floods with plain text).
        nonlocal made
        prompt = f"{name} job {n}"
        owners[prompt] = name
        creative = mix == "creative" and name.startswith("mid")
        takes = 2 if creative and n % 10 == 7 else 1
        generation_submit(
            project=project,
            user=users[name],
            channel=channel,
            model="sora-2",
            prompt=prompt,
            size="1280x720",
            seconds=4,
            images=[still] if creative and n % 5 == 2 else [],
            takes=takes,
        )
        made += takes

    sim.reset()
    workers = start_workers(env, default=2, dispatch=2)
    from rq import Worker

    # Measure the system, not the workers' start-up: wait until all four are listening.
    wait_until(lambda: len(Worker.all(connection=get_redis())) >= 4, timeout=120, every=0.2)
    started = time.time()
    try:
        for n in range(HEAVY_JOBS):
            submit("heavy", n)
        for n in range(MID_JOBS):
            for i in range(MID_MEMBERS):
                submit(f"mid{i}", n)
        all_queued = time.time()
        time.sleep(5 / scale * 60 / rpm * 3)  # let a few heavy/mid jobs go first
        light_submitted = time.time()
        submit("light", 0)
        channel_kick(channel_id=channel.pk)
        total = made
        expected = total / rpm * 60 / scale
        def progress() -> bool:
            if os.environ.get("BENCH_TIMELINE"):
                from django.db.models import Count

                from workspace.core.rq import get_queue

                by_status = dict(Generation.objects.values_list("status").annotate(n=Count("id")))
                lanes = []
                for i in range(2):
                    try:
                        job = get_queue("dispatch").fetch_job(f"dispatch-{channel.pk}-{i}")
                        lanes.append(job.get_status() if job else None)
                    except Exception:  # the lane ended between the two calls
                        lanes.append(None)
                print(
                    f"{time.time():.0f} {by_status} default={len(get_queue())} "
                    f"scheduled={get_queue().scheduled_job_registry.count} "
                    f"lanes={lanes}",
                    flush=True,
                )
            done = [Status.COMPLETED, Status.FAILED, Status.CANCELED]
            return Generation.objects.filter(status__in=done).count() == total

        wait_until(progress, timeout=expected * 2 + 60, every=2)
    finally:
        stop(workers)
    completed = Generation.objects.filter(status=Status.COMPLETED).count()
    return analyse(
        "Reelhouse", sim, scale, owners, light_submitted, all_queued, completed, total - completed,
        started,
    )


def run_naive(sim: Any, rpm: int, scale: float) -> Report:
    """What typical client code does, one thread per job, all started at once."""
    sim.reset()
    started = time.time()
    base = sim.url + "/v1"
    owners: dict[str, str] = {}
    outcome = {"completed": 0, "lost": 0}
    lock = threading.Lock()

    def one(name: str, n: int) -> None:
        prompt = f"{name} job {n}"
        client = httpx.Client(base_url=base, headers={"Authorization": "Bearer naive"}, timeout=30)
        video = None
        for attempt in range(4):  # the first try and 3 retries
            try:
                answer = client.post(
                    "/videos",
                    json={"model": "sora-2", "prompt": prompt, "size": "1280x720", "seconds": "4"},
                )
                if answer.status_code == 200:
                    video = answer.json()
                    break
            except httpx.HTTPError:
                pass
            if attempt < 3:
                time.sleep(5 * (attempt + 1) / scale)
        if video is None:
            with lock:
                outcome["lost"] += 1
            return
        deadline = time.monotonic() + 600 / scale
        while time.monotonic() < deadline:
            time.sleep(3 / scale)
            try:
                status = client.get(f"/videos/{video['id']}").json().get("status")
            except (httpx.HTTPError, ValueError):
                continue
            if status in ("completed", "failed"):
                break
        for variant in ("video", "thumbnail", "spritesheet"):
            try:
                client.get(f"/videos/{video['id']}/content", params={"variant": variant})
            except httpx.HTTPError:
                pass
        with lock:
            outcome["completed" if status == "completed" else "lost"] += 1

    jobs = [("heavy", n) for n in range(HEAVY_JOBS)]
    jobs += [(f"mid{i}", n) for n in range(MID_JOBS) for i in range(MID_MEMBERS)]
    for name, n in [*jobs, ("light", 0)]:
        owners[f"{name} job {n}"] = name
    with ThreadPoolExecutor(max_workers=len(jobs) + 1) as pool:
        for name, n in jobs:
            pool.submit(one, name, n)
        all_queued = time.time()
        time.sleep(5 / scale * 60 / rpm * 3)
        light_submitted = time.time()
        pool.submit(one, "light", 0)
    return analyse(
        "naive client",
        sim,
        scale,
        owners,
        light_submitted,
        all_queued,
        outcome["completed"],
        outcome["lost"],
        started,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rpm", type=int, nargs="+", default=[50, 200])
    parser.add_argument(
        "--time-scale",
        type=float,
        nargs="+",
        default=[6.0, 1.5],
        help="simulated seconds per real second, one per --rpm (keeps the 2-core machine unsaturated)",
    )
    parser.add_argument(
        "--mix",
        choices=["text", "creative"],
        default="text",
        help="creative: the mid members also send images and two-take requests",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    os.environ["BENCH_MIX"] = args.mix
    if len(args.time_scale) != len(args.rpm):
        parser.error("give one --time-scale per --rpm")
    results = []
    print(f"machine: {machine()}")
    for rpm, scale in zip(args.rpm, args.time_scale, strict=True):
        results.extend(run_limit(rpm, scale))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([r.__dict__ for r in results], handle, indent=2)


def run_limit(rpm: int, scale: float) -> list[Report]:
    """Both clients against one limit, in a fresh process state for that time scale."""
    import subprocess
    import sys

    # Django settings (the time scale) are fixed per process: run each limit in a child.
    if os.environ.get("BENCH_CHILD") != "1":
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--rpm",
                str(rpm),
                "--time-scale",
                str(scale),
                "--json",
                "/dev/stdout",
                "--mix",
                os.environ.get("BENCH_MIX", "text"),
            ],
            env={**os.environ, "BENCH_CHILD": "1"},
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise SystemExit(f"the run at {rpm} RPM failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
        lines = out.stdout.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("["))
        for line in lines[:start]:
            if not line.startswith("machine:"):
                print(line, flush=True)
        return [Report(**r) for r in json.loads("\n".join(lines[start:]))]
    return measure(rpm, scale)


def measure(rpm: int, scale: float) -> list[Report]:
    env = setup_django(name="limits", time_scale=scale)
    from workspace.simulator.server import SimulatorConfig, SimulatorServer

    sim = SimulatorServer(config=SimulatorConfig(time_scale=scale, seed=7)).start()
    env["REELHOUSE_SIMULATOR_URL"] = sim.url
    from django.conf import settings

    settings.SIMULATOR_URL = sim.url
    results = []
    random.seed(7)
    sim.update_config(rpm_limit=rpm, rpm_scope="create")
    mix = os.environ.get("BENCH_MIX", "text")
    for run in (
        lambda: run_reelhouse(sim, rpm, scale, env, mix=mix),
        lambda: run_naive(sim, rpm, scale),
    ):
        report = run()
        report.extra["limit_rpm"] = rpm
        report.extra["mix"] = mix
        report.extra["time_scale"] = scale
        results.append(report)
        if os.environ.get("BENCH_TIMELINE"):
            print(report.label, "creates per 10 s:", report.extra["creates_per_10s"], flush=True)
        print(
            f"{rpm:>4} RPM {report.label:<13} creates/min÷limit {report.creates_per_minute / rpm:5.3f}  "
            f"max 60s window÷limit {report.max_window / rpm:5.3f}  429s {report.sent_429:>5}  "
            f"status calls/video {report.status_per_video:5.2f}  light wait {report.light_wait_slots} slots "
            f"{report.light_wait_seconds:6.1f}s  Jain {report.fairness:5.3f}  "
            f"completed {report.completed}  lost {report.lost}",
            flush=True,
        )
    sim.stop()
    return results


if __name__ == "__main__":
    main()
