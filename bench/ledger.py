"""Benchmark: the usage pages over a million ledger entries.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/reelhouse_bench_ledger \
        .venv/bin/python bench/ledger.py [--entries 1000000] [--runs 5] [--reuse] [--write-doc]

Fills a scratch PostgreSQL database (it is wiped) with one million ledger entries (and the
generations they belong to) across 200 members, 50 projects and 6 models over the last 12
months, written with COPY; rebuilds the daily rollups from the ledger; then times, through the
real views and templates, the admin usage panel for a 30-day and a 12-month range and the
heaviest member's usage page: the median of ``--runs`` requests after one warm-up, with the
number of queries per page (CaptureQueriesContext). Also times check-and-reserve submissions
against that ledger. ``--write-doc`` records the figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from _harness import ROOT, machine, setup_django

MODELS = {
    # id: (usd per second, share of jobs, sizes)
    "sora-2": (Decimal("0.10"), 0.34, ("1280x720", "720x1280")),
    "sora-2-pro": (Decimal("0.30"), 0.16, ("1280x720", "1792x1024")),
    "veo-3.1": (Decimal("0.40"), 0.10, ("1280x720",)),
    "veo-3.1-fast": (Decimal("0.15"), 0.18, ("1280x720",)),
    "gen4.5": (Decimal("0.12"), 0.12, ("1280x720",)),
    "seedance-2.0": (Decimal("0.15"), 0.10, ("1280x720",)),
}
# How generations end: (status, error class, ledger kind of the closing entry, share).
OUTCOMES = [
    ("completed", "", "settle", 0.86),
    ("failed", "moderation", "release", 0.05),
    ("failed", "provider_failed", "release", 0.03),
    ("failed", "overloaded", "release", 0.01),
    ("failed", "ambiguous_create", "settle", 0.002),
    ("canceled", "", "release", 0.048),
]
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Ledger and usage pages"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="Keep data from an earlier run.")
    parser.add_argument("--write-doc", action="store_true", help="Record in docs/benchmarks.md.")
    return parser.parse_args()


# --- Data -----------------------------------------------------------------------------------------


def _copy(table: str, columns: list[str], rows: Any) -> int:
    from django.db import connection

    count = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
    return count


def _model_columns(model: Any, overrides: set[str]) -> tuple[list[str], dict[str, Any]]:
    """Every concrete column of ``model`` and a default for those the benchmark does not set.

    Read from the model, so columns other engineers add keep the COPY valid.
    """
    from django.db import connection

    columns, defaults = [], {}
    for field in model._meta.concrete_fields:
        columns.append(field.column)
        if field.attname not in overrides:
            value = field.get_default()
            defaults[field.column] = field.get_db_prep_save(value, connection)
    return columns, defaults


def generate(args: argparse.Namespace) -> dict[str, float]:
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from workspace.billing.models import Budget, LedgerEntry, Price, Scope
    from workspace.core.models import AuditEvent, Notification
    from workspace.generations.models import Generation
    from workspace.projects.models import Membership, Project
    from workspace.providers.models import Channel

    rng = random.Random(args.seed)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    tables = [
        LedgerEntry._meta.db_table,
        "billing_dailyusage",
        "billing_budgetcounter",
        Budget._meta.db_table,
        Price._meta.db_table,
        Notification._meta.db_table,
        AuditEvent._meta.db_table,
        Generation._meta.db_table,
        Membership._meta.db_table,
        Project._meta.db_table,
        Channel._meta.db_table,
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        cursor.execute("DELETE FROM auth_user")

    with transaction.atomic():
        channel = Channel.objects.create(slug="openai", name="OpenAI Videos")
        admin = User.objects.create_user(
            "bench-admin", password="bench-admin", is_staff=True, is_superuser=True
        )
        members = User.objects.bulk_create(
            User(username=f"member{i:03d}", password="!") for i in range(args.members)
        )
        projects = Project.objects.bulk_create(
            Project(name=f"Project {i:02d}", created_by=members[i % len(members)])
            for i in range(args.projects)
        )
        homes: dict[int, list[Project]] = {}
        memberships = []
        for member in members:
            homes[member.pk] = rng.sample(projects, rng.randint(2, 5))
            memberships += [
                Membership(project=p, user=member, role="editor") for p in homes[member.pk]
            ]
        Membership.objects.bulk_create(memberships)
        prices = {
            model: Price.objects.create(
                channel=channel, model=model, size=size, usd_per_second=usd,
                effective_from=datetime(2000, 1, 1, tzinfo=UTC),
            )
            for model, (usd, _, sizes) in MODELS.items()
            for size in sizes[:1]
        }  # fmt: skip
        Budget.objects.create(scope=Scope.ORGANISATION, limit_cents=250_000_00)
        Budget.objects.create(scope=Scope.MEMBER, limit_cents=2_000_00)
        for member in members[:20]:
            Budget.objects.create(scope=Scope.MEMBER, user=member, limit_cents=5_000_00)
        for project in projects[:10]:
            Budget.objects.create(scope=Scope.PROJECT, project=project, limit_cents=20_000_00)
    timings["setup"] = time.perf_counter() - started

    # Members are not equally busy (a long tail), and each favours a few models.
    activity = [1 / (rank + 1) ** 0.8 for rank in range(len(members))]
    model_ids = list(MODELS)
    model_weights = [MODELS[m][1] for m in model_ids]
    outcome_weights = [o[3] for o in OUTCOMES]
    now = datetime.now(UTC)
    span = timedelta(days=30.4 * args.months).total_seconds()
    adjustments = args.entries // 500
    still_open = args.entries // 400  # reservations of generations still running
    generations = (args.entries - adjustments + still_open) // 2
    adjustments = args.entries - (2 * generations - still_open)

    gen_overrides = {
        "id", "project_id", "created_by_id", "channel_id", "model", "prompt", "size", "seconds",
        "estimated_cost_cents", "status", "progress", "error_class", "error_message",
        "created_at", "updated_at", "completed_at", "submitted_at", "provider_job_id",
    }  # fmt: skip
    gen_columns, gen_defaults = _model_columns(Generation, gen_overrides)
    ledger_columns = [
        "kind", "user_id", "project_id", "channel_id", "generation_id", "model", "size",
        "seconds", "price_id", "usd_per_second", "spent_cents", "reserved_cents",
        "spent_seconds", "reserved_seconds", "outcome", "error_class", "reason",
        "accounted_at", "created_at", "created_by_id",
    ]  # fmt: skip

    jobs: list[tuple[Any, ...]] = []
    member_picks = rng.choices(members, weights=activity, k=generations)
    for index, member in enumerate(member_picks):
        model = rng.choices(model_ids, weights=model_weights)[0]
        usd, _, sizes = MODELS[model]
        seconds = rng.choice((4, 8, 12))
        if index < still_open:
            at = now - timedelta(seconds=rng.uniform(0, 3600))
            outcome: tuple[str, str, str, float] = ("in_progress", "", "", 0)
        else:
            at = now - timedelta(seconds=span * rng.random() ** 1.15)
            outcome = rng.choices(OUTCOMES, weights=outcome_weights)[0]
        cost = int((usd * seconds * 100).to_integral_value())
        jobs.append(
            (uuid.uuid4(), member.pk, rng.choice(homes[member.pk]).pk, model, sizes[0], seconds,
             cost, at, outcome)
        )  # fmt: skip

    def generation_rows() -> Any:
        for gid, user_id, project_id, model, size, seconds, cost, at, outcome in jobs:
            status, error_class = outcome[0], outcome[1]
            done = at + timedelta(seconds=90) if status != "in_progress" else None
            values = {
                **gen_defaults,
                "id": gid, "project_id": project_id, "created_by_id": user_id,
                "channel_id": channel.pk, "model": model, "prompt": "A benchmark shot",
                "size": size, "seconds": seconds, "estimated_cost_cents": cost,
                "status": status, "progress": 100 if status == "completed" else 0,
                "error_class": error_class, "error_message": "",
                "created_at": at, "updated_at": done or at, "completed_at": done,
                "submitted_at": at, "provider_job_id": None,
            }  # fmt: skip
            yield [values[c] for c in gen_columns]

    def ledger_rows() -> Any:
        for gid, user_id, project_id, model, size, seconds, cost, at, outcome in jobs:
            price = prices[model]
            common = (user_id, project_id, channel.pk, gid, model, size, seconds, price.pk,
                      price.usd_per_second)  # fmt: skip
            yield ("reserve", *common, 0, cost, 0, seconds, "", "", "", at, at, None)
            status, error_class, closing = outcome[0], outcome[1], outcome[2]
            if closing:
                settle = closing == "settle"
                yield (
                    closing, *common, cost if settle else 0, -cost, seconds if settle else 0,
                    -seconds, status, error_class, "", at, at + timedelta(seconds=90), None,
                )  # fmt: skip
        for _ in range(adjustments):
            member = rng.choices(members, weights=activity)[0]
            at = now - timedelta(seconds=span * rng.random())
            amount = rng.choice((-120, -40, 40, 250))
            yield (
                "adjustment", member.pk, None, None, None, "", "", 0, None, None, amount, 0, 0,
                0, "", "", "Benchmark correction", at, at, admin.pk,
            )  # fmt: skip

    started = time.perf_counter()
    with transaction.atomic():
        written = _copy(Generation._meta.db_table, gen_columns, generation_rows())
    timings["generations_copy"] = time.perf_counter() - started
    timings["generations"] = written

    started = time.perf_counter()
    with transaction.atomic():
        written = _copy(LedgerEntry._meta.db_table, ledger_columns, ledger_rows())
    timings["ledger_copy"] = time.perf_counter() - started
    timings["entries"] = written
    return timings


def rebuild() -> dict[str, float]:
    from django.db import connection

    from workspace.billing.services import usage_rollups_rebuild

    started = time.perf_counter()
    rows = usage_rollups_rebuild()
    took = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {"rollup_rows": rows, "rollup_rebuild": took}


# --- Timing -----------------------------------------------------------------------------------------


def time_page(client: Any, url: str, runs: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)  # warm-up: connections, template loading
    assert response.status_code == 200, (url, response.status_code)
    totals, db_times, queries = [], [], []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            totals.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
        queries.append(len(captured))
        db_times.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
    return {
        "median_ms": statistics.median(totals),
        "min_ms": min(totals),
        "max_ms": max(totals),
        "db_ms": statistics.median(db_times),
        "queries": max(queries),
    }


def time_submissions(count: int) -> dict[str, float]:
    """Check-and-reserve through generation_submit against the full ledger, then cancel."""
    from django.db.models import Count

    from workspace.billing.models import BudgetCounter, LedgerEntry
    from workspace.generations.models import Generation
    from workspace.generations.submission import generation_cancel, generation_submit
    from workspace.projects.models import Membership

    membership = Membership.objects.select_related("user", "project").order_by("id")[5]
    BudgetCounter.objects.all().delete()  # the first submission builds counters from the ledger
    times = []
    made = []
    for _ in range(count):
        started = time.perf_counter()
        generation = generation_submit(
            project=membership.project, user=membership.user, model="sora-2",
            prompt="Benchmark submission", size="1280x720", seconds=4,
        )  # fmt: skip
        times.append((time.perf_counter() - started) * 1000)
        made.append(generation)
    for generation in made:
        generation_cancel(generation=generation, user=membership.user)
    assert LedgerEntry.objects.filter(generation_id__in=[g.pk for g in made]).count() == 2 * count
    Generation.objects.filter(pk__in=[g.pk for g in made]).aggregate(n=Count("id"))
    return {"first_ms": times[0], "median_ms": statistics.median(times[1:])}


def main() -> None:
    args = parse()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL to a scratch PostgreSQL database; the benchmark wipes it.")
    setup_django(name="ledger", time_scale=1)
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db.models import Count
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from workspace.billing.models import LedgerEntry

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    figures: dict[str, Any] = {}
    existing = LedgerEntry.objects.count() if args.reuse else 0
    if existing >= args.entries * 0.99:
        print(f"reusing {existing} ledger entries")
        figures["entries"] = existing
    else:
        print(f"generating {args.entries} ledger entries …", flush=True)
        figures.update(generate(args))
        print(
            f"  {figures['generations']:.0f} generations in {figures['generations_copy']:.1f} s, "
            f"{figures['entries']:.0f} ledger entries in {figures['ledger_copy']:.1f} s (COPY)"
        )
        figures.update(rebuild())
        print(
            f"  {figures['rollup_rows']:.0f} rollup rows rebuilt in {figures['rollup_rebuild']:.1f} s"
        )

    admin = User.objects.get(username="bench-admin")
    busiest = LedgerEntry.objects.values("user_id").annotate(n=Count("id")).order_by("-n").first()
    assert busiest is not None
    member = User.objects.get(pk=busiest["user_id"])
    today = timezone.localdate()
    panel = reverse("admin:billing_usagepanel_changelist")
    pages = {
        "Admin usage panel, 30 days": (
            admin, f"{panel}?first={today - timedelta(days=29)}&last={today}"
        ),
        "Admin usage panel, 12 months": (
            admin, f"{panel}?first={today - timedelta(days=364)}&last={today}"
        ),
        f"Member usage page ({member.username}, {busiest['n']} entries)": (
            member, reverse("billing:usage")
        ),
    }  # fmt: skip
    results = {}
    for label, (user, url) in pages.items():
        client = Client()
        client.force_login(user)
        results[label] = time_page(client, url, args.runs)
        r = results[label]
        print(
            f"{label}: median {r['median_ms']:.0f} ms (min {r['min_ms']:.0f}, max "
            f"{r['max_ms']:.0f}; database {r['db_ms']:.0f} ms), {r['queries']} queries"
        )
    submissions = time_submissions(20)
    print(
        f"Submit with 3 budgets (check + reserve): first of a period {submissions['first_ms']:.0f}"
        f" ms (builds counters from the ledger), then median {submissions['median_ms']:.1f} ms"
    )
    ok = all(r["median_ms"] < 500 for r in results.values())
    print("target (< 500 ms median each):", "met" if ok else "NOT met")
    if args.write_doc:
        write_doc(args, figures, results, submissions)


def write_doc(
    args: argparse.Namespace,
    figures: dict[str, Any],
    results: dict[str, dict[str, Any]],
    submissions: dict[str, float],
) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    command = (
        "DATABASE_URL=postgres://postgres@127.0.0.1:5432/reelhouse_bench_ledger "
        f".venv/bin/python bench/ledger.py --entries {args.entries} --runs {args.runs} --write-doc"
    )
    lines = [
        SECTION,
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {machine()}, PostgreSQL {server} (local, "
        f"default configuration); load average {os.getloadavg()[0]:.1f} at the end (the machine "
        "was shared with other work, so the spread between runs is wide).",
        "",
        "```sh",
        "psql -h 127.0.0.1 -U postgres -c 'create database reelhouse_bench_ledger'  # once",
        command,
        "```",
        "",
        f"Data: {args.members} members, {args.projects} projects, {len(MODELS)} models, "
        f"{args.months} months; {figures.get('entries', 0):,.0f} ledger entries "
        f"(reserve + settle/release per generation, some open reservations, admin adjustments) "
        f"for {figures.get('generations', 0):,.0f} generations.",
    ]
    if "ledger_copy" in figures:
        lines.append(
            f"Written with COPY in {figures['generations_copy']:.0f} s (generations) + "
            f"{figures['ledger_copy']:.0f} s (ledger, with its indexes); the daily rollups "
            f"({figures['rollup_rows']:,.0f} rows) rebuilt from the ledger in "
            f"{figures['rollup_rebuild']:.1f} s."
        )
    lines += [
        "",
        f"Each page through the real view and templates (Django test client), median of "
        f"{args.runs} after a warm-up; queries counted with `CaptureQueriesContext`.",
        "",
        "| Page | Median | Min / max | Database time | Queries |",
        "|---|---|---|---|---|",
    ]
    for label, r in results.items():
        lines.append(
            f"| {label} | **{r['median_ms']:.0f} ms** | {r['min_ms']:.0f} / {r['max_ms']:.0f} ms "
            f"| {r['db_ms']:.0f} ms | {r['queries']} |"
        )
    met = all(r["median_ms"] < 500 for r in results.values())
    lines += [
        "",
        f"Target: under 500 ms each with a bounded number of queries: **{'met' if met else 'not met'}**. "
        "The query count does not depend on the range or the size of the ledger.",
        "",
        f"Submitting (permission check, price lookup, budget check and reservation under row "
        f"locks, the generation row, the rollups) with an organisation, a member and a project "
        f"budget: {submissions['median_ms']:.1f} ms median; the first submission of a period "
        f"took {submissions['first_ms']:.0f} ms because it builds the period's counters from "
        "the ledger.",
        "",
        "Why it is fast: the pages never scan the ledger. Every ledger write also upserts "
        "`billing_dailyusage` in the same transaction: one row per local day and model, member, "
        "project and outcome, plus the member's own split by project and by model. The 12-month "
        "panel aggregates about "
        f"{math.ceil(365 * (len(MODELS) + args.members + args.projects + 8)):,} rollup rows at "
        "most (on the `(dimension, day, key)` unique index); budget status sums whole rollup days "
        "(periods start at local midnight); a member's page reads only their own rollup rows "
        "(partial index on `(member, dimension, day)`), a few thousand a year however many "
        "videos they make. The ledger's own indexes (`(user_id, accounted_at)`, "
        "`(project_id, accounted_at)`, `accounted_at`, `created_at`) serve counter creation and "
        "the CSV export.",
        "",
    ]
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if SECTION in text:
        # Replace our own section only, leaving every other section as it is.
        start = text.index(SECTION)
        rest = text[start + len(SECTION) :]
        following = rest.find("\n## ")
        end = start + len(SECTION) + following + 1 if following != -1 else len(text)
        text = text[:start] + "\n".join(lines) + "\n" + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines)
    DOC.write_text(text.rstrip("\n") + "\n")
    print(f"wrote {Path(DOC).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
