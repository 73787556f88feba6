"""Restore drill: a hot backup taken while generations were in flight, restored into a fresh
database, a fresh media store and an empty Redis, must finish every one of them with nothing
paid twice.

    .venv/bin/python bench/restore_drill.py [--generations 24] [--time-scale 20]

The system that is lost: RQ workers (2 default, 2 dispatch lanes) and the recovery scheduler as
processes on a scratch database (``<DATABASE_URL's name>_drill_src``, else SQLite), a Redis of
its own and a media folder, against the provider simulator, which runs throughout (the provider
outlives our disaster, and still knows every job). Once some videos are stored, the default
workers stop (no status checks, no downloads) while the dispatch lanes go on sending, so that at
the backup generations are queued, being sent (one create of unknown outcome), rendering at
the provider, and finished at the provider but not yet stored. ``manage backup`` runs while the
lanes keep sending; after it the lost system sends the creates of some generations the dump
still shows queued (the trap: sending them again would pay twice). Two stored videos are then
taken out of the backup's media copy, and one of those two is deleted at the provider. Then
every process of the lost system is SIGKILLed.

The restore: ``manage restore`` into ``<name>_drill_dst`` (empty), a new media folder and a new,
empty Redis; then the same processes start there. Checks: every generation of the dump is
finished (none lost, stuck or held); each job the provider already had is adopted, not created
again (no billed job without its own generation, the dump's job ids kept, the ids the lost system
got after the dump adopted); the ledger equals the simulator's bill with no reservation open; the
missing file the provider still has is fetched again and the other is marked lost; Redis was
empty at the restore and the scheduler rebuilt the work from the database. Exit status 0 only
when every check holds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
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
    wait_until,
)

ACTIVE = ("queued", "submitting", "in_progress", "downloading", "held")


class System:
    """One Reelhouse installation's processes (workers and scheduler) on one environment."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *argv: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *argv],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_all(self, *, stale_after: float) -> None:
        for n in range(2):
            self.start(f"default-{n}", "rqworker", "default", "--with-scheduler")
            self.start(f"dispatch-{n}", "rqworker", "dispatch")
        self.start(
            "scheduler", "reelhouse_scheduler", "--interval", "2", "--stale-after",
            str(stale_after),
        )

    def stop(self, prefix: str = "", *, kill: bool = False) -> None:
        chosen = {n: p for n, p in self.processes.items() if n.startswith(prefix)}
        for process in chosen.values():
            if process.poll() is not None:
                continue
            # A work horse runs in a process group of its own: killed with its worker, or a
            # dispatch lane of the lost system would go on sending creates.
            horses = children_of(process.pid) if kill else []
            os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            signal_each(horses, signal.SIGKILL)
        for name, process in chosen.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            del self.processes[name]

    def manage(self, *argv: str) -> str:
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *argv],
            env=self.env, capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"manage {' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1] if not url.startswith("sqlite") else url.split("///", 1)[1]


def run(args: argparse.Namespace) -> dict[str, object]:
    began = time.monotonic()
    var = ROOT / "var" / "bench-drill" / str(os.getpid())
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    sys.path.insert(0, str(ROOT))
    from workspace.core import embedded_redis

    source_url = scratch_database_url("drill_src", fresh=True)
    target_url = scratch_database_url("drill_dst", fresh=True)
    if target_url.startswith("sqlite"):  # another file beside the source's
        target_url = target_url.replace(".sqlite3", "-restored.sqlite3")
    for url in (source_url, target_url):
        if url.startswith("sqlite"):
            Path(database_name(url)).parent.mkdir(parents=True, exist_ok=True)
    redis_sockets = {side: var / f"redis-{side}" / "redis.sock" for side in ("src", "dst")}
    redis_source = embedded_redis.start(redis_sockets["src"])
    from workspace.simulator.server import SimulatorConfig, SimulatorServer

    sim = SimulatorServer(
        config=SimulatorConfig(
            time_scale=args.time_scale, render_seconds=args.render_seconds, seed=args.seed
        )
    ).start()
    common = {
        "DJANGO_SETTINGS_MODULE": "workspace.settings",
        "REELHOUSE_TIME_SCALE": str(args.time_scale),
        "REELHOUSE_SIMULATOR_URL": sim.url,
        "LOG_LEVEL": "INFO",
    }
    for name in ("OPENAI_API_KEY", "REDIS_URL"):
        os.environ.pop(name, None)
    source_env = {
        **os.environ,
        **common,
        "DATABASE_URL": source_url,
        "REDIS_URL": f"unix://{redis_sockets['src']}",
        "REELHOUSE_VAR_DIR": str(var / "var-src"),
        "REELHOUSE_MEDIA_ROOT": str(var / "media-src"),
    }
    target_env = {
        **source_env,
        "DATABASE_URL": target_url,
        "REDIS_URL": f"unix://{redis_sockets['dst']}",
        "REELHOUSE_VAR_DIR": str(var / "var-dst"),
        "REELHOUSE_MEDIA_ROOT": str(var / "media-dst"),
    }
    os.environ.update(source_env)
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import close_old_connections, connections

    call_command("migrate", interactive=False, verbosity=0)
    from workspace.generations.models import Generation
    from workspace.generations.submission import generation_submit
    from workspace.providers.models import SIMULATOR_KEY

    channel = simulator_channel(
        name="Drill provider",
        requests_per_minute=100_000,
        creates_per_minute=args.creates_per_minute,
        max_in_flight=100,
        member_max_in_flight=100,
    )
    # One member more than --members: the last sends only the ambiguous create.
    project, members = project_with_members(name="Drill", members=args.members + 1)

    def submit(user: User, prompt: str) -> None:
        generation_submit(
            project=project, user=user, channel=channel, model="sora-2", prompt=prompt,
            size="1280x720", seconds=4,
        )

    for n in range(args.stored_first):
        submit(members[n % args.members], f"drill video {n}")
    timings: dict[str, float] = {"setup_seconds": round(time.monotonic() - began, 2)}
    started = time.monotonic()
    source = System(source_env, var)
    target = System(target_env, var / "restored")
    (var / "restored").mkdir()
    backup_dir = var / "backups"
    http = httpx.Client(timeout=10, headers={"Authorization": f"Bearer {SIMULATOR_KEY}"})

    def statuses(alias: str = "default") -> Counter[str]:
        close_old_connections()
        return Counter(Generation.objects.using(alias).values_list("status", flat=True))

    def finished_at_provider() -> set[str]:
        sim.counters()  # commits every terminal transition that is due
        return {c["id"] for c in sim.creates() if c["status"] == "completed"}

    try:
        source.start_all(stale_after=15)
        if not wait_until(lambda: statuses()["completed"] >= args.stored_first, timeout=120):
            raise SystemExit(f"the lost system never stored {args.stored_first}: {statuses()}")
        timings["first_stored_seconds"] = round(time.monotonic() - started, 2)
        # From here no status check and no download runs: the lanes go on sending creates.
        source.stop("default-")
        source.stop("scheduler")
        for n in range(args.stored_first, args.generations):
            submit(members[n % args.members], f"drill video {n}")
        submit(members[args.members], "drill video sent ambiguously [reset_after_create]")

        def in_flight_mix() -> bool:
            counts = statuses()
            rendering = Generation.objects.filter(status="in_progress").values_list(
                "provider_job_id", flat=True
            )
            done = finished_at_provider()
            return (
                counts["queued"] >= 4
                and counts["submitting"] >= 1
                and sum(1 for job in rendering if job in done) >= 2
                and sum(1 for job in rendering if job not in done) >= 1
            )

        if not wait_until(in_flight_mix, timeout=120, every=0.2):
            raise SystemExit(f"never reached the in-flight mix: {statuses()}")
        at_dump = {
            str(pk): (status, job)
            for pk, status, job in Generation.objects.values_list(
                "pk", "status", "provider_job_id"
            )
        }
        done = finished_at_provider()
        mix = Counter(
            "in_progress, finished at the provider" if s == "in_progress" and j in done else s
            for s, j in at_dump.values()
        )
        backup_started = time.monotonic()
        source.manage("backup", "--to", str(backup_dir))  # hot: the dispatch lanes keep sending
        timings["backup_seconds"] = round(time.monotonic() - backup_started, 2)
        (folder,) = backup_dir.iterdir()
        manifest = json.loads((folder / "manifest.json").read_text())
        # The lost system carries on after the dump: creates of rows the dump shows queued.
        # Rows still queued once the backup is done were queued at the dump too, so their
        # creates from here on are certainly ones the dump never heard of.
        close_old_connections()
        queued_at_snapshot = set(
            Generation.objects.filter(status="queued").values_list("pk", flat=True)
        )

        def sent_after_snapshot() -> int:
            close_old_connections()
            return Generation.objects.filter(
                pk__in=queued_at_snapshot, provider_job_id__isnull=False
            ).count()

        if not wait_until(lambda: sent_after_snapshot() >= 2, timeout=120, every=0.2):
            raise SystemExit("the lost system sent nothing after the dump")
        source.stop(kill=True)  # the disaster: every process of the lost system at once
        timings["source_stopped_at"] = round(time.monotonic() - started, 2)
        jobs_at_the_end = {
            str(pk): job
            for pk, job in Generation.objects.exclude(provider_job_id=None).values_list(
                "pk", "provider_job_id"
            )
        }
        # The backup's media copy lacks two stored videos; the provider deleted one of them.
        stored = [
            (str(pk), job, video)
            for pk, job, video in Generation.objects.filter(status="completed")
            .order_by("completed_at")
            .values_list("pk", "provider_job_id", "video")
        ]
        (refetch_pk, _, refetch_video), (lost_pk, lost_job, lost_video) = stored[:2]
        for name in (refetch_video, lost_video):
            (folder / "media" / name).unlink()
        assert http.delete(f"{sim.url}/v1/videos/{lost_job}").status_code == 200
        billed_before = sim.counters()["billed_cents"]

        # --- The restore -------------------------------------------------------------------
        redis_target = embedded_redis.start(redis_sockets["dst"])
        import redis as redis_lib

        target_redis = redis_lib.Redis(unix_socket_path=str(redis_sockets["dst"]))
        redis_keys_before_restore = target_redis.dbsize()
        restore_started = time.monotonic()
        restore_output = target.manage(
            "restore", "--from", str(folder),
            *(["--stopped-before-dump"] if args.trust_the_dump else []),
        )
        timings["restore_seconds"] = round(time.monotonic() - restore_started, 2)
        redis_mark_after_restore = bool(target_redis.exists("reelhouse:redis-mark"))
        connections.settings["restored"] = {
            **connections.settings["default"],
            "NAME": database_name(target_url),
        }
        restored = Generation.objects.using("restored")
        # What the dump knew (read before anything ran on it, but after the restore moved its
        # queued rows to be checked): job ids it holds, and rows the lost system sent after it.
        in_dump = dict(restored.values_list("pk", "provider_job_id"))
        dump_jobs = {str(pk): job for pk, job in in_dump.items() if job}
        after_dump = {
            pk: job for pk, job in jobs_at_the_end.items() if pk not in dump_jobs
        }
        target.start_all(stale_after=15)
        resume_started = time.monotonic()

        def settled() -> bool:
            close_old_connections()
            if restored.filter(status__in=ACTIVE).exists():
                return False
            refetched = restored.filter(pk=refetch_pk).values_list("video", flat=True).first()
            marked = restored.filter(pk=lost_pk).values_list("video", flat=True).first()
            return bool(refetched) and (var / "media-dst" / refetched).exists() and marked == ""

        settled_in_time = wait_until(settled, timeout=args.settle_seconds, every=0.2)
        timings["settle_seconds"] = round(time.monotonic() - resume_started, 2)
        time.sleep(3)  # one more sweep of the scheduler for reservations closed under it
        redis_mark_rebuilt = bool(target_redis.exists("reelhouse:redis-mark"))
    finally:
        stopping = time.monotonic()
        source.stop(kill=True)
        target.stop()
        timings["teardown_seconds"] = round(time.monotonic() - stopping, 2)
    close_old_connections()
    creates = sim.creates()
    counters = sim.counters()
    (var / "simulator-creates.json").write_text(json.dumps(creates, indent=1))
    rows = {
        str(pk): (status, job, video, error)
        for pk, status, job, video, error in restored.values_list(
            "pk", "status", "provider_job_id", "video", "error_message"
        )
    }
    unowned = paid_duplicates(creates, using="restored")
    final = Counter(status for status, _, _, _ in rows.values())
    files_missing = [
        pk
        for pk, (status, _, video, _) in rows.items()
        if status == "completed" and video and not (var / "media-dst" / video).exists()
    ]
    report: dict[str, object] = {
        "generations": len(at_dump),
        "just_before_the_dump": dict(mix),
        "backup": {
            "database_bytes": manifest["database"]["bytes"],
            "media_files": manifest["media"]["files"],
        },
        "sent_by_the_lost_system_after_the_dump": len(after_dump),
        "adopted_after_dump": sum(1 for pk, job in after_dump.items() if rows[pk][1] == job),
        "dump_job_ids_kept": sum(1 for pk, job in dump_jobs.items() if rows[pk][1] == job),
        "dump_job_ids": len(dump_jobs),
        "lost": len(at_dump) - len(rows),
        "stuck_after_run": sum(final[s] for s in ACTIVE),
        "settled": settled_in_time,
        "final_states": dict(final),
        "duplicate_paid_creations": len(unowned),
        "duplicates": [
            {k: c.get(k) for k in ("id", "prompt", "created_at_real", "answer", "billed")}
            for c in unowned
        ],
        **ledger_against_bill(counters["billed_cents"], using="restored"),
        "simulator_billed_before_restore_cents": billed_before,
        "missing_file_fetched_again": bool(rows[refetch_pk][2])
        and (var / "media-dst" / rows[refetch_pk][2]).exists(),
        "missing_file_marked_lost": rows[lost_pk][2] == "" and "lost" in rows[lost_pk][3],
        "completed_without_their_file": len(files_missing),
        "redis_keys_before_restore": redis_keys_before_restore,
        "redis_mark_after_restore": redis_mark_after_restore,
        "redis_mark_rebuilt_by_scheduler": redis_mark_rebuilt,
        "restore_output": restore_output.strip().splitlines(),
        **timings,
        "logs": str(var),
    }
    sim.stop()
    for process in (redis_source, redis_target):
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
    connections.close_all()
    if not args.keep:
        drop_scratch_databases(source_url, target_url)
        if targets_met(report):
            shutil.rmtree(var, ignore_errors=True)
            with contextlib.suppress(OSError):
                var.parent.rmdir()
            report["logs"] = None
    return report


def drop_scratch_databases(*urls: str) -> None:
    for url in urls:
        if url.startswith("sqlite"):
            path = Path(database_name(url))
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the folder only when nothing else is in it
                path.parent.rmdir()
            continue
        from urllib.parse import urlparse, urlunparse

        import psycopg

        admin = urlunparse(urlparse(url)._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'drop database if exists "{database_name(url)}" with (force)')


def targets_met(report: dict[str, object]) -> bool:
    return (
        report["settled"] is True
        and nothing_lost_stuck_or_paid_twice(report)
        and report["adopted_after_dump"] == report["sent_by_the_lost_system_after_the_dump"]
        and report["dump_job_ids_kept"] == report["dump_job_ids"]
        and report["missing_file_fetched_again"] is True
        and report["missing_file_marked_lost"] is True
        and report["completed_without_their_file"] == 0
        and report["redis_keys_before_restore"] == 0
        and report["redis_mark_after_restore"] is False
        and report["redis_mark_rebuilt_by_scheduler"] is True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument(
        "--stored-first", type=int, default=4, help="of them, stored before the followers stop"
    )
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--render-seconds", type=float, default=60.0, help="simulated")
    parser.add_argument("--creates-per-minute", type=int, default=30, help="simulated")
    parser.add_argument("--settle-seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--trust-the-dump",
        action="store_true",
        help="restore with --stopped-before-dump (wrongly, the backup is hot): shows what "
        "sending the dump's queued rows without checking the provider costs",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch databases, logs and backup"
    )
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args()
    report_and_exit(run(args), targets_met=targets_met, json_path=args.json)


if __name__ == "__main__":
    main()
