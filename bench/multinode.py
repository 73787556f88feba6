"""Several machines: nodes sharing one PostgreSQL, one Redis and one S3 store; one dies mid-run.

    .venv/bin/python bench/multinode.py [--nodes 3] [--generations 160] [--time-scale 5]

Each node is a process group of its own standing in for a machine, running the Procfile's
declared processes: web (gunicorn), a worker on ``default``, a worker on ``dispatch`` (the
lanes that pace creates) and the recovery scheduler, with its own REELHOUSE_VAR_DIR. All nodes
share a scratch database (``<DATABASE_URL's name>_multinode``; the run wipes it), the Redis of
REDIS_URL (flushed; point it at a scratch db number), an S3 server (moto's, a process of this
run) holding every file, the SECRET_KEY, and the provider simulator, which enforces the
channel's request limit and logs every create.

Several members submit a backlog at once; once a third of it has finished, the first node's
whole process group and every process it forked (RQ work horses start sessions of their own)
are frozen and SIGKILLed at once, as a machine losing power. The others must finish the work.

Reports: lost, stuck, paid duplicates (the simulator's bill against the ledger), the most
creates in any 60 s (simulated) window ÷ the limit and the 429s the simulator sent, fairness
across members (Jain's index over the creates while every member still had work waiting,
before and after the kill), which node sent the creates and stored the files, and whether
every surviving node's web serves files stored by every other node (whole, Range and HEAD).
Exit status 0 only when every target holds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
from _harness import (
    ROOT,
    ledger_against_bill,
    nothing_lost_stuck_or_paid_twice,
    paid_duplicates,
    project_with_members,
    report_and_exit,
    scratch_database_url,
    signal_each,
    simulator_channel,
    wait_or_kill,
    wait_until,
)
from kill_up import free_port, processes
from limits import jain, max_in_window

ACTIVE = ("queued", "submitting", "in_progress", "downloading")
SECRET_KEY = "multinode-bench-shared-secret-key-0123456789abcdef"
S3_KEY_ID, S3_SECRET = "AKIAMULTINODEBENCH00", "multinode-bench-s3-secret-0123456789"


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(
        line.split(":", 1) for line in lines if line.strip() and not line.startswith("#")
    )


def expand(command: str, env: dict[str, str]) -> list[str]:
    """A Procfile line as the run command runs it: ${NAME:-default} expanded, our Python."""
    text = re.sub(
        r"\$\{([A-Z][A-Z0-9_]*):-([^}]*)\}", lambda m: env.get(m[1]) or m[2], command.strip()
    )
    argv = shlex.split(text)
    return [sys.executable, *argv[1:]] if argv[0] == "python" else argv


def tree(roots: set[int]) -> set[int]:
    """The given processes and all their descendants."""
    table = processes()
    found, frontier = set(roots), set(roots)
    while frontier:
        frontier = {pid for pid, (parent, _, _) in table.items() if parent in frontier} - found
        found |= frontier
    return found & set(table)


class Node:
    """One machine's processes, started as one process group."""

    def __init__(self, index: int, env: dict[str, str], var: Path, scale: float) -> None:
        self.name = f"node{index}"
        self.var = var / self.name
        self.var.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **env,
            "REELHOUSE_VAR_DIR": str(self.var),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "1",
        }
        self.scale = scale
        self.processes: list[subprocess.Popen[bytes]] = []
        self.group = 0
        self.killed = False

    def start(self, declared: dict[str, str]) -> None:
        for kind in ("web", "worker", "dispatch", "scheduler"):
            argv = expand(declared[kind], self.env)
            if kind == "scheduler":
                # Its sweep and staleness clocks do not follow REELHOUSE_TIME_SCALE.
                argv += ["--interval", str(30 / self.scale), "--stale-after", str(120 / self.scale)]
            log = (self.var / f"{kind}.log").open("w")
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=self.group,  # 0: the first becomes the group's leader
            )
            self.group = self.group or process.pid
            self.processes.append(process)

    def pids(self) -> set[int]:
        members = {pid for pid, (_, group, _) in processes().items() if group == self.group}
        return tree(members | {p.pid for p in self.processes})

    def kill(self) -> int:
        """A power cut: nothing gets to run another instruction, let alone clean up."""
        os.killpg(self.group, signal.SIGSTOP)  # no new work horse forks while we gather
        victims = self.pids()
        signal_each(victims, signal.SIGKILL)
        for process in self.processes:
            process.wait()
        self.killed = True
        return len(victims)

    def stop(self) -> None:
        if self.killed:
            return
        signal_each(self.pids(), signal.SIGTERM)
        wait_or_kill(self.processes, timeout=20)

    def log_count(self, pattern: str) -> set[str]:
        found: set[str] = set()
        for path in self.var.glob("*.log"):
            found |= set(re.findall(pattern, path.read_text(errors="replace")))
        return found


def sign_in(node: Node, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=node.url, timeout=30)
    page = client.get("/accounts/sign-in/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, f"{node.name}: no sign-in form"
    answer = client.post(
        "/accounts/sign-in/",
        data={"csrfmiddlewaretoken": token[1], "username": username, "password": password},
    )
    assert answer.status_code == 302, f"{node.name}: sign-in answered {answer.status_code}"
    return client


def start_s3(var: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=(var / "s3.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    if not wait_until(answers, timeout=60, every=0.2):
        raise SystemExit("the S3 server did not start")
    return process, url


def run(args: argparse.Namespace) -> dict[str, object]:
    var = ROOT / "var" / "bench-multinode" / str(os.getpid())
    var.mkdir(parents=True, exist_ok=True)
    s3_process, s3_url = start_s3(var)
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("Set REDIS_URL to a scratch Redis database: every node must share it.")
    shared = {
        k: v for k, v in os.environ.items() if not k.startswith(("REELHOUSE_", "OPENAI_"))
    }
    shared.update(
        DJANGO_SETTINGS_MODULE="workspace.settings",
        DATABASE_URL=scratch_database_url("multinode", fresh=True),
        SECRET_KEY=SECRET_KEY,
        REELHOUSE_TIME_SCALE=str(args.time_scale),
        REELHOUSE_STORAGE="s3",
        REELHOUSE_S3_BUCKET="reelhouse-media",
        REELHOUSE_S3_ENDPOINT_URL=s3_url,
        REELHOUSE_S3_REGION="us-east-1",
        REELHOUSE_S3_ACCESS_KEY_ID=S3_KEY_ID,
        REELHOUSE_S3_SECRET_ACCESS_KEY=S3_SECRET,
        REELHOUSE_S3_ADDRESSING_STYLE="path",
        REELHOUSE_DISPATCH_LANES=str(args.lanes),
        LOG_LEVEL="INFO",
    )
    os.environ.clear()
    os.environ.update({**shared, "REELHOUSE_VAR_DIR": str(var / "driver"), "LOG_LEVEL": "WARNING"})
    sys.path.insert(0, str(ROOT))
    import boto3
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.files.storage import default_storage
    from django.core.management import call_command
    from django.db import close_old_connections
    from django.db.models import Sum
    from django.urls import reverse
    from rq import Worker

    from workspace.billing.models import LedgerEntry
    from workspace.core.rq import get_redis
    from workspace.generations.models import Generation, Status
    from workspace.generations.submission import generation_submit
    from workspace.simulator.server import SimulatorConfig, SimulatorServer

    call_command("migrate", interactive=False, verbosity=0)
    get_redis().flushdb()
    boto3.client(
        "s3", endpoint_url=s3_url, region_name="us-east-1",
        aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET,
    ).create_bucket(Bucket="reelhouse-media")
    # The provider enforces the channel's request limit on every request and logs each create.
    sim = SimulatorServer(
        config=SimulatorConfig(
            time_scale=args.time_scale, seed=args.seed, rpm_limit=args.requests_per_minute,
            rpm_scope="all",
        )
    ).start()
    shared["REELHOUSE_SIMULATOR_URL"] = sim.url
    settings.SIMULATOR_URL = sim.url
    channel = simulator_channel(
        name="Shared provider",
        requests_per_minute=args.requests_per_minute,
        creates_per_minute=args.creates_per_minute,
        max_in_flight=100,
        member_max_in_flight=40,
    )
    password = "multinode bench password"
    project, members = project_with_members(
        name="Several machines", members=args.members, password=password
    )

    # The backlog: the first member floods, the others each send a share; all in one go, in
    # member order, so plain first-come-first-served would serve the flood first.
    light = args.generations // 2 // (args.members - 1)
    heavy = args.generations - light * (args.members - 1)
    owners: dict[str, str] = {}
    for n in range(heavy):
        owners[f"{members[0].username} video {n}"] = members[0].username
    for member in members[1:]:
        for n in range(light):
            owners[f"{member.username} video {n}"] = member.username
    for prompt, username in owners.items():
        generation_submit(
            project=project, user=next(m for m in members if m.username == username),
            channel=channel, model="sora-2", prompt=prompt, size="1280x720", seconds=4,
        )
    submitted = len(owners)

    declared = procfile()
    nodes = [Node(i, shared, var, args.time_scale) for i in range(args.nodes)]
    for node in nodes:
        node.start(declared)

    def ready() -> bool:
        try:
            webs = all(httpx.get(f"{n.url}/healthz", timeout=2).status_code == 200 for n in nodes)
        except httpx.HTTPError:
            return False
        return webs and len(Worker.all(connection=get_redis())) >= 2 * len(nodes)

    if not wait_until(ready, timeout=180, every=0.5):
        raise SystemExit("the nodes did not start; see " + str(var))
    started = time.time()

    victim = nodes[0]
    killed_at: float | None = None
    killed_processes = 0
    samples: list[tuple[float, int]] = []  # (wall time, requests the simulator has seen)
    lanes_on_victim: list[str] = []
    victim_pids: set[int] = set()
    lanes_back_at: float | None = None

    def lanes_running() -> dict[str, int]:
        """Dispatch lanes being run right now → the pid of the worker running each."""
        found = {}
        for worker in Worker.all(connection=get_redis()):
            job_id = worker.get_current_job_id()
            if job_id and job_id.startswith("dispatch-") and worker.pid:
                found[job_id] = worker.pid
        return found

    done = (Status.COMPLETED, Status.FAILED, Status.CANCELED)
    try:
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            samples.append((time.time(), int(sim.counters()["requests_total"])))
            close_old_connections()
            finished = Generation.objects.filter(status__in=done).count()
            if killed_at is None and finished >= submitted * args.kill_at:
                victim_pids = victim.pids()
                lanes_on_victim = sorted(j for j, pid in lanes_running().items() if pid in victim_pids)
                killed_processes = victim.kill()
                killed_at = time.time()
            if killed_at is not None and lanes_on_victim and lanes_back_at is None:
                elsewhere = {j for j, pid in lanes_running().items() if pid not in victim_pids}
                if set(lanes_on_victim) <= elsewhere:
                    lanes_back_at = time.time()
            if finished == submitted and killed_at is not None:
                break
            time.sleep(0.25)
        # The scheduler closes reservations of jobs that ended under the kill.
        wait_until(
            lambda: not (LedgerEntry.objects.aggregate(h=Sum("reserved_cents"))["h"] or 0),
            timeout=120 / args.time_scale * 3,
            every=1,
        )
        run_seconds = time.time() - started

        # Any node serves any file: every surviving node's web, signed in afresh there, serves
        # files that each node stored (the killed one's included), read from the shared store.
        stored_by: dict[str, str] = {}
        for node in nodes:
            for gid in node.log_count(r"generation ([0-9a-f-]{36}) completed"):
                stored_by[gid] = node.name
        serving: Counter[str] = Counter()
        serve_failures: list[str] = []
        survivors = [n for n in nodes if not n.killed]
        by_node: dict[str, list[Generation]] = {}
        for generation in Generation.objects.filter(status=Status.COMPLETED).order_by("completed_at"):
            node_name = stored_by.get(str(generation.pk))
            if node_name:
                by_node.setdefault(node_name, []).append(generation)
        for server in survivors:
            client = sign_in(server, "member1", password)
            for origin, generations in by_node.items():
                if origin == server.name:
                    continue
                for generation in generations[: args.files_per_pair]:
                    url = reverse("generations:file", args=[project.pk, generation.pk, "video"])
                    with default_storage.open(generation.video.name, "rb") as handle:
                        expected = handle.read()
                    whole = client.get(url)
                    part = client.get(url, headers={"Range": "bytes=10-1033"})
                    head = client.head(url)
                    ok = (
                        whole.status_code == 200
                        and hashlib.sha256(whole.content).digest() == hashlib.sha256(expected).digest()
                        and part.status_code == 206
                        and part.content == expected[10:1034]
                        and head.status_code == 200
                        and head.headers["content-length"] == str(len(expected))
                    )
                    serving[f"{origin}→{server.name}"] += 1
                    if not ok:
                        serve_failures.append(f"{origin}→{server.name} {generation.pk}")
        # The access check holds on every node: someone outside the project gets a 404.
        User.objects.create_user("outsider", password=password)
        any_generation = Generation.objects.filter(status=Status.COMPLETED).first()
        stranger_status = None
        if any_generation is not None and survivors:
            stranger = sign_in(survivors[-1], "outsider", password)
            url = reverse("generations:file", args=[project.pk, any_generation.pk, "video"])
            stranger_status = stranger.get(url).status_code
    finally:
        for node in nodes:
            node.stop()
        sim_log = sim.creates()
        counters = sim.counters()
        sim.stop()
        os.killpg(s3_process.pid, signal.SIGTERM)
        s3_process.wait(timeout=20)

    statuses = Counter(Generation.objects.values_list("status", flat=True))
    stuck = sum(statuses[s] for s in ACTIVE)
    duplicates = paid_duplicates(sim_log)
    ledger = ledger_against_bill(counters["billed_cents"])
    log = sorted(sim_log, key=lambda c: c["created_at_real"])
    times = [(c["created_at_real"] - log[0]["created_at_real"]) * args.time_scale for c in log]
    who = [owners.get(c["prompt"], "?") for c in log]

    backlog = Counter(owners.values())
    # Every request, from the simulator's counter sampled each 0.25 s: the most it grew within
    # any 60 s (simulated) window. The simulator's own sliding window is exact: a request over
    # the limit would have been answered 429.
    span = 60.0 / args.time_scale
    max_requests = max(
        (later - count for at, count in samples for t, later in samples if at <= t <= at + span),
        default=0,
    )

    def fairness(after: float) -> dict[str, object] | None:
        """Jain's index over the members' creates from ``after`` until the first member has
        no work left waiting (1.0: equal turns; 1/members: one member took them all)."""
        left = backlog - Counter(m for c, m in zip(log, who, strict=True)
                                 if c["created_at_real"] < after)
        turns: Counter[str] = Counter()
        for create, member in zip(log, who, strict=True):
            if create["created_at_real"] < after:
                continue
            if any(left[m.username] - turns[m.username] <= 0 for m in members):
                break
            turns[member] += 1
        if sum(turns.values()) < 2 * len(members):
            return None
        return {
            "jain": round(jain([float(turns[m.username]) for m in members]), 3),
            "creates": dict(turns),
        }

    sent_by = {n.name: len(n.log_count(r"generation ([0-9a-f-]{36}) accepted by")) for n in nodes}
    stored_counts = Counter(stored_by.values())
    after_kill = [c["created_at_real"] for c in log if killed_at and c["created_at_real"] >= killed_at]
    first_create_after_kill = (
        round((after_kill[0] - killed_at) * args.time_scale, 1) if after_kill and killed_at else None
    )
    killed_span = (
        round((killed_at - started) * args.time_scale, 1) if killed_at is not None else None
    )
    return {
        "nodes": args.nodes,
        "processes_per_node": ["web", "worker", "dispatch", "scheduler"],
        "generations": submitted,
        "members": args.members,
        "backlog_per_member": dict(Counter(owners.values())),
        "killed": victim.name if killed_at else None,
        "killed_processes": killed_processes,
        "killed_after_simulated_s": killed_span,
        "first_create_after_kill_simulated_s": first_create_after_kill,
        "lanes_on_killed_node": lanes_on_victim,
        "those_lanes_running_elsewhere_after_real_s": (
            round(lanes_back_at - killed_at, 1) if lanes_back_at and killed_at else None
        ),
        "run_seconds_real": round(run_seconds, 1),
        "lost": submitted - Generation.objects.count() + stuck,
        "stuck_after_run": stuck,
        "duplicate_paid_creations": len(duplicates),
        **ledger,
        "final_states": dict(statuses),
        "creates_limit_per_minute": args.creates_per_minute,
        "max_creates_in_60s": max_in_window(times, 60.0),
        "max_60s_window_over_limit": round(max_in_window(times, 60.0) / args.creates_per_minute, 3),
        "requests_limit_per_minute": args.requests_per_minute,
        "simulator_requests": counters["requests_total"],
        "max_requests_in_60s_sampled": max_requests,
        "max_requests_60s_window_over_limit": round(max_requests / args.requests_per_minute, 3),
        "simulator_429s": counters["rate_limited_429"],
        "fairness_from_start": fairness(started),
        "fairness_after_kill": fairness(killed_at) if killed_at else None,
        "creates_sent_by_node": sent_by,
        "videos_stored_by_node": dict(stored_counts),
        "files_served_across_nodes": dict(serving),
        "serve_failures": serve_failures,
        "outsider_status": stranger_status,
        "logs": str(var),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--generations", type=int, default=160)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--time-scale", type=float, default=5.0)
    parser.add_argument("--creates-per-minute", type=int, default=24)
    parser.add_argument("--requests-per-minute", type=int, default=300)
    parser.add_argument("--lanes", type=int, default=2, help="REELHOUSE_DISPATCH_LANES")
    parser.add_argument("--kill-at", type=float, default=0.33, help="share finished at the kill")
    parser.add_argument("--files-per-pair", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900.0, help="real seconds")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args()
    report_and_exit(
        run(args),
        targets_met=lambda report: targets_met(report, nodes=args.nodes),
        json_path=args.json,
    )


def targets_met(report: dict[str, object], *, nodes: int) -> bool:
    crossed = {k for k, v in report["files_served_across_nodes"].items() if v}  # type: ignore[union-attr]
    return (
        report["killed"] is not None
        and nothing_lost_stuck_or_paid_twice(report)
        and report["max_60s_window_over_limit"] <= 1.0  # type: ignore[operator]
        and report["simulator_429s"] == 0
        and not report["serve_failures"]
        and len(crossed) >= nodes - 1
        and report["outsider_status"] == 404
    )


if __name__ == "__main__":
    main()
