"""Shared plumbing for the benchmarks: an isolated Django setup, workers as real processes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from workspace.projects.models import Project
    from workspace.providers.models import Channel

ROOT = Path(__file__).resolve().parent.parent


def scratch_database_url(suffix: str, *, fresh: bool) -> str:
    """A scratch database next to the configured one: ``<name>_<suffix>`` on the same PostgreSQL
    (dropped first when ``fresh``, else created when missing), or a SQLite file under var/ when
    no PostgreSQL DATABASE_URL is set."""
    configured = os.environ.get("DATABASE_URL")
    if not configured or configured.startswith("sqlite"):
        return f"sqlite:///{ROOT / 'var' / f'bench-{suffix}' / f'{suffix}-{os.getpid()}.sqlite3'}"
    from urllib.parse import urlparse, urlunparse

    import psycopg

    parsed = urlparse(configured)
    name = (parsed.path.lstrip("/") or "reelhouse") + f"_{suffix}"
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        if fresh:
            connection.execute(f'drop database if exists "{name}" with (force)')
        exists = connection.execute("select 1 from pg_database where datname = %s", (name,))
        if exists.fetchone() is None:
            connection.execute(f'create database "{name}"')
    return urlunparse(parsed._replace(path=f"/{name}"))


def setup_django(*, name: str, time_scale: float) -> dict[str, str]:
    """Configure this process for a benchmark and return the environment for its workers.

    Uses ``DATABASE_URL``/``REDIS_URL`` when set (PostgreSQL and Redis, as in production), else
    SQLite and an embedded Redis under ``var/bench-<name>``.
    """
    sys.path.insert(0, str(ROOT))
    var = ROOT / "var" / f"bench-{name}"
    var.mkdir(parents=True, exist_ok=True)
    env = {
        "DJANGO_SETTINGS_MODULE": "workspace.settings",
        "REELHOUSE_VAR_DIR": str(var),
        "REELHOUSE_TIME_SCALE": str(time_scale),
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    from workspace.core import embedded_redis

    if not os.environ.get("REDIS_URL"):
        socket_path = var / "redis" / "redis.sock"
        embedded_redis.start(socket_path)
        os.environ["REDIS_URL"] = f"unix://{socket_path}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    return {**os.environ}


def start_workers(
    env: dict[str, str], *, default: int, dispatch: int
) -> list[subprocess.Popen[bytes]]:
    manage = str(ROOT / "manage.py")
    processes = []
    log_dir = os.environ.get("BENCH_WORKER_LOGS")  # a directory for the workers' output
    for queue, count in (("default", default), ("dispatch", dispatch)):
        for n in range(count):
            out = (
                open(Path(log_dir) / f"{queue}-{n}.log", "w")  # noqa: SIM115
                if log_dir
                else subprocess.DEVNULL
            )
            processes.append(
                subprocess.Popen(
                    [sys.executable, manage, "rqworker", queue, "--with-scheduler"],
                    env={**env, "LOG_LEVEL": "INFO"} if log_dir else env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    return processes


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    wait_or_kill(processes, timeout=15)


def wait_or_kill(processes: Iterable[subprocess.Popen[bytes]], *, timeout: float) -> None:
    """Wait for each process to exit, killing any that takes longer than ``timeout`` seconds."""
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def signal_each(pids: Iterable[int], signal_number: int) -> None:
    """Send the signal to each process, passing over those already gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_number)


def machine() -> str:
    import platform

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def wait_until(predicate, *, timeout: float, every: float = 0.5) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def report_and_exit(
    report: dict[str, object],
    *,
    targets_met: Callable[[dict[str, object]], bool],
    json_path: str | None,
) -> NoReturn:
    """The end of a run that has targets: the machine and the report, whether every target held,
    the report again to ``json_path`` (``--json``), and exit status 0 only when they all held."""
    print(f"machine: {machine()}")
    print(json.dumps(report, indent=2))
    ok = targets_met(report)
    print("targets met" if ok else "TARGETS MISSED")
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2))
    sys.exit(0 if ok else 1)


def simulator_channel(
    *,
    name: str,
    requests_per_minute: int,
    creates_per_minute: int,
    max_in_flight: int,
    member_max_in_flight: int,
) -> Channel:
    """The channel the simulator answers for, with a member queue deep enough that no bench's
    backlog is refused by it."""
    from workspace.providers.models import Channel

    return Channel.objects.create(
        slug="openai",
        name=name,
        requests_per_minute=requests_per_minute,
        creates_per_minute=creates_per_minute,
        max_in_flight=max_in_flight,
        member_max_in_flight=member_max_in_flight,
        member_max_queued=1000,
    )


def project_with_members(
    *, name: str, members: int, password: str | None = None
) -> tuple[Project, list[User]]:
    """A project owned by ``member0``, with ``member1`` … as editors: ``members`` users in all."""
    from django.contrib.auth.models import User

    from workspace.projects.models import Role
    from workspace.projects.services import membership_add, project_create

    owner = User.objects.create_user("member0", password=password)
    project = project_create(name=name, owner=owner)
    users = [owner]
    for n in range(1, members):
        users.append(User.objects.create_user(f"member{n}", password=password))
        membership_add(project=project, username=f"member{n}", role=Role.EDITOR, actor=None)
    return project, users


def paid_duplicates(
    creates: list[dict[str, Any]], *, using: str = "default"
) -> list[dict[str, Any]]:
    """The simulator's creates it billed that no generation holds as its own job: each one a video
    paid twice. (Takes share a prompt, so prompts alone cannot tell a duplicate.)"""
    from workspace.generations.models import Generation

    held = set(
        Generation.objects.using(using)
        .exclude(provider_job_id=None)
        .values_list("provider_job_id", flat=True)
    )
    return [c for c in creates if c["billed"] and c["id"] not in held]


def ledger_against_bill(billed_cents: int, *, using: str = "default") -> dict[str, int]:
    """The ledger's spend and its open reservations beside what the simulator billed; a run that
    settled leaves no reservation open and no difference."""
    from django.db.models import Sum

    from workspace.billing.models import LedgerEntry

    totals = LedgerEntry.objects.using(using).aggregate(
        spent=Sum("spent_cents"), held=Sum("reserved_cents")
    )
    spent = totals["spent"] or 0
    return {
        "ledger_spent_cents": spent,
        "ledger_open_reservations_cents": totals["held"] or 0,
        "simulator_billed_cents": billed_cents,
        "ledger_minus_simulator_cents": spent - billed_cents,
    }


def nothing_lost_stuck_or_paid_twice(report: dict[str, object]) -> bool:
    """The targets every run against the simulator shares: no generation lost or left unfinished,
    no video paid twice, the ledger equal to the bill with no reservation left open."""
    return (
        report["lost"] == 0
        and report["stuck_after_run"] == 0
        and report["duplicate_paid_creations"] == 0
        and report["ledger_minus_simulator_cents"] == 0
        and report["ledger_open_reservations_cents"] == 0
    )
