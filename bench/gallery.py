"""The gallery at size: a project page and its search with 10,000 videos in the project and
1,000,000 in the database, and the live-update request with 50 pages open.

    DATABASE_URL=postgres://… REDIS_URL=redis://… python bench/gallery.py [--total 1000000]

Fills a scratch database ``<name>_gallery`` (kept between runs: ``--fresh`` rebuilds it), then
times real requests through Django's full stack (middleware, views, templates) with the test
client, signed in as a member:

- the project page's first page, pages reached by following "older" links, searches for
  common and rare words, and filters (member, model, status, dates, combined);
- the live endpoint, asked by 50 open pages (each with its own cursor) at the pages' 3 s
  interval, from threads with their own database connections;
- the queries each request makes, in this project and in a project of 100 videos: the count
  must not grow with the data.

Prints the figures; docs/benchmarks.md keeps the latest with the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

WORDS = ["boat", "lighthouse", "fog", "dusk", "rain", "street", "paper", "drone", "city", "night", "neon", "forest", "river", "desert", "mountain", "snow", "ocean", "wave", "sunrise", "portrait", "close-up", "tracking", "dolly", "aerial", "slow", "motion", "cat", "dog", "horse", "bird", "robot", "dancer", "runner", "crowd", "market", "train", "station", "bridge", "tower", "garden", "storm", "lightning", "candle", "kitchen", "studio", "product", "bottle", "shoe", "watch", "car", "bicycle", "skate"]
RARE = "zeppelin"  # one video in a thousand mentions it
PAGE_INTERVAL = 3.0  # seconds between an open page's live requests
OPEN_PAGES = 50
CHURN = 3.0  # seconds between changes to one in-flight card during the live run


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def describe(name: str, millis: list[float], queries: list[int], cpu: list[float]) -> None:
    print(
        f"  {name:<34} n={len(millis):>4}  median {statistics.median(millis):6.1f} ms  "
        f"p95 {percentile(millis, 0.95):6.1f} ms  max {max(millis):6.1f} ms  "
        f"queries {min(queries)}-{max(queries)}  cpu median {statistics.median(cpu):5.1f} ms"
    )


def seed(*, total: int, in_project: int) -> None:
    """Insert the videos with one INSERT … SELECT per project (generate_series): minutes, not
    the hour ORM inserts would take. Columns this does not name get their model default, so a
    field added later does not break the benchmark."""
    from django.contrib.auth.models import User
    from django.db import connection

    from workspace.generations.models import Generation, Status
    from workspace.projects.models import Role
    from workspace.projects.services import membership_add, project_create
    from workspace.providers.services import channel_get_default

    channel = channel_get_default()
    members = [User.objects.create_user(f"member{n}") for n in range(5)]
    target = project_create(name="Big project", owner=members[0])
    small = project_create(name="Small project", owner=members[0])
    for member in members[1:]:
        for project in (target, small):
            membership_add(project=project, username=member.username, role=Role.EDITOR, actor=None)
    others = [project_create(name=f"Other {n}", owner=members[n % 5]) for n in range(99)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    span = int((datetime(2026, 11, 30, tzinfo=UTC) - start).total_seconds())

    def h(k: int) -> str:  # a per-row pseudo-random number, deterministic
        return f"abs(hashint4(n * 16 + {k}))"

    words = "ARRAY[" + ",".join(f"'{w}'" for w in WORDS) + "]"
    prompt = (
        "initcap(concat_ws(' ', "
        + ", ".join(f"({words})[1 + {h(k)} %% {len(WORDS)}]" for k in range(8))
        + f")) || CASE WHEN n %% 1000 = 0 THEN ' {RARE}' ELSE '' END"
    )
    # 90 % finished, 7 % failed, 3 % canceled: work in flight is added separately (live).
    status = (
        f"CASE WHEN {h(9)} %% 100 < 90 THEN '{Status.COMPLETED}' "
        f"WHEN {h(9)} %% 100 < 97 THEN '{Status.FAILED}' ELSE '{Status.CANCELED}' END"
    )
    created = f"%(start)s::timestamptz + ({h(10)} %% {span}) * interval '1 second'"
    expressions = {
        "id": "gid",
        "stack_id": "gid",
        "project_id": "%(project)s",
        "created_by_id": "(%(members)s::int[])[1 + n %% 5]",
        "channel_id": "%(channel)s",
        "model": f"(ARRAY['sora-2', 'sora-2-pro'])[1 + {h(11)} %% 2]",
        "prompt": prompt,
        "size": "'1280x720'",
        "seconds": "4",
        "estimated_cost_cents": "40",
        "status": status,
        "progress": "100",
        "created_at": created,
        "updated_at": created,
        "completed_at": created,
    }
    columns, values, params = [], [], {}
    for field in Generation._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in expressions:
            values.append(expressions[field.attname])
        else:
            name = f"default_{field.attname}"
            params[name] = field.get_db_prep_save(field.get_default(), connection)
            values.append(f"%({name})s")
    # Names come from the model's own metadata; every value is a parameter.
    table, names, exprs = Generation._meta.db_table, ", ".join(columns), ", ".join(values)
    rows = "SELECT n, gen_random_uuid() AS gid FROM generate_series(%(first)s, %(last)s) AS n"
    sql = f"INSERT INTO {table} ({names}) SELECT {exprs} FROM ({rows}) rows"  # noqa: S608
    plan = [(target.pk, in_project), (small.pk, 100)]
    rest = total - in_project - 100
    plan += [(other.pk, rest // len(others)) for other in others]
    made = 0
    began = time.monotonic()
    with connection.cursor() as cursor:
        for project_id, count in plan:
            cursor.execute(
                sql,
                {
                    **params,
                    "project": project_id,
                    "members": [m.pk for m in members],
                    "channel": channel.pk,
                    "start": start,
                    "first": made + 1,
                    "last": made + count,
                },
            )
            made += count
        cursor.execute("VACUUM ANALYZE generations_generation")
    print(f"  seeded {made:,} videos in {time.monotonic() - began:.0f} s", flush=True)
    # A few videos in flight in the big project, as a working team has.
    from workspace.generations.submission import generation_submit

    for n in range(12):
        generation_submit(
            project=target,
            user=members[n % 5],
            channel=channel,
            model="sora-2",
            prompt=f"A {rng_word(n)} in progress",
            size="1280x720",
            seconds=4,
        )


def seed_reviews(project_id: int, *, decider_id: int, starrer_id: int) -> None:
    """A third of the project's videos decided (half approved, half changes requested, each
    with an earlier decision in its history) and one in twenty starred by the member who
    browses: the review and favourite filters then read real semi-joins. Two INSERT … SELECTs;
    run once (kept with the scratch database)."""
    from django.db import connection

    from workspace.reviews.models import Favourite, ReviewDecision

    decisions, favourites = ReviewDecision._meta.db_table, Favourite._meta.db_table
    picked = "abs(hashtext(id::text))"
    with connection.cursor() as cursor:
        for current, approved_when in ((False, 1), (True, 0)):
            cursor.execute(
                f"INSERT INTO {decisions} (generation_id, state, decided_by_id, decided_at, "  # noqa: S608
                f"is_current) SELECT id, CASE WHEN {picked} %% 2 = %(approved_when)s "
                "THEN 'approved' ELSE 'changes' END, %(decider)s, "
                "created_at + interval '1 hour' * (1 + %(current)s::int), %(current)s "
                f"FROM generations_generation WHERE project_id = %(project)s AND {picked} %% 3 = 0",
                {
                    "approved_when": approved_when,
                    "decider": decider_id,
                    "current": current,
                    "project": project_id,
                },
            )
        cursor.execute(
            f"INSERT INTO {favourites} (user_id, generation_id, created_at) "  # noqa: S608
            "SELECT %(user)s, id, now() FROM generations_generation "
            "WHERE project_id = %(project)s AND abs(hashtext(id::text || 'star')) %% 20 = 0",
            {"user": starrer_id, "project": project_id},
        )
        _review_states_kept(cursor)
        cursor.execute(f"ANALYZE {decisions}")
        cursor.execute(f"ANALYZE {favourites}")


def _review_states_kept(cursor) -> int:  # type: ignore[no-untyped-def]
    """Each video's row keeps its current decision's state, as ``review_decide`` writes it
    (the review filter and the cards read it there). Seeds made before this wrote decisions
    only: their rows said "none", so the review filters found no video. Returns rows fixed."""
    from workspace.generations.models import Generation
    from workspace.reviews.models import ReviewDecision

    videos, decisions = Generation._meta.db_table, ReviewDecision._meta.db_table
    cursor.execute(
        f"UPDATE {videos} v SET review_state = d.state FROM {decisions} d "  # noqa: S608
        "WHERE d.generation_id = v.id AND d.is_current AND v.review_state <> d.state"
    )
    return cursor.rowcount


def rng_word(n: int) -> str:
    return WORDS[n * 7 % len(WORDS)]


HELD_SECONDS = 20  # as static/js/app.js: how long a page remembers the versions it got


def live_query(cursor: str, held: dict[str, int]) -> str:
    """The live request's query as the page's script builds it: the cursor and the versions of
    the cards it got lately (older ones forgotten)."""
    floor = (float(cursor) - HELD_SECONDS) * 1e6
    for card_id in [k for k, v in held.items() if v < floor]:
        del held[card_id]
    have = ",".join(f"{k}:{v}" for k, v in held.items())
    return f"?since={cursor}" + (f"&have={have}" if have else "")


def timed(client, url: str) -> tuple[float, int, str, float]:  # type: ignore[no-untyped-def]
    """Wall time, queries, body, and the CPU time this thread spent on the request (the
    server's own work, whatever else the machine is doing; PostgreSQL's is not in it)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        began, cpu = time.perf_counter(), time.thread_time()
        response = client.get(url)
        elapsed = (time.perf_counter() - began) * 1000
        cpu = (time.thread_time() - cpu) * 1000
    assert response.status_code == 200, (url, response.status_code)
    return elapsed, len(queries.captured_queries), response.content.decode(), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--in-project", type=int, default=10_000)
    parser.add_argument("--fresh", action="store_true", help="rebuild the scratch database")
    parser.add_argument("--repeat", type=int, default=40, help="requests per kind")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("The gallery benchmark measures PostgreSQL: set DATABASE_URL to one.")
    from _harness import machine, scratch_database_url, setup_django

    os.environ["DATABASE_URL"] = scratch_database_url("gallery", fresh=args.fresh)
    setup_django(name="gallery", time_scale=1.0)
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    from workspace.generations.models import ACTIVE_STATUSES, Generation
    from workspace.projects.models import Project

    settings.ALLOWED_HOSTS = ["*"]
    if not Generation.objects.exists():
        print(f"Seeding {args.total:,} videos ({args.in_project:,} in one project)…", flush=True)
        seed(total=args.total, in_project=args.in_project)
    total = Generation.objects.count()
    big = Project.objects.get(name="Big project")
    small = Project.objects.get(name="Small project")
    member = User.objects.get(username="member1")
    from workspace.reviews.models import ReviewDecision

    if not ReviewDecision.objects.exists():
        print("Seeding review decisions and favourites…", flush=True)
        for project in (big, small):
            seed_reviews(project.pk, decider_id=project.created_by_id, starrer_id=member.pk)
    from django.db import connection

    with connection.cursor() as cursor:
        fixed = _review_states_kept(cursor)
        if fixed:
            cursor.execute(f"ANALYZE {Generation._meta.db_table}")
            print(f"Review states written on {fixed:,} rows (the seed had left them 'none')")
    client = Client()
    client.force_login(member)
    print(
        f"Database: {total:,} videos; project: {big.generations.count():,}; "
        f"small project: {small.generations.count():,}"
    )
    rng = random.Random(11)

    def page_url(project: Project, **query: str) -> str:
        from urllib.parse import urlencode

        base = reverse("projects:detail", args=[project.pk])
        return f"{base}?{urlencode(query)}" if query else base

    # Warm the connection, templates and caches before timing anything.
    for _ in range(3):
        timed(client, page_url(big))
    kinds: dict[str, tuple[list[float], list[int], list[float]]] = {}

    def record(kind: str, url: str) -> str:
        millis, count, body, cpu = timed(client, url)
        kinds.setdefault(kind, ([], [], []))
        kinds[kind][0].append(millis)
        kinds[kind][1].append(count)
        kinds[kind][2].append(cpu)
        return body

    for project, label in ((big, "10k"), (small, "100")):
        for _ in range(args.repeat):
            record(f"first page ({label})", page_url(project))
        url = page_url(project)
        for _ in range(args.repeat):
            body = record(f"older pages ({label})", url)
            older = re.search(r'href="(\?[^"]*before=[^"]+)"', body)
            if older is None:
                url = page_url(project)
                continue
            url = page_url(project) + older.group(1).replace("&amp;", "&")
        for n in range(args.repeat):
            word = RARE if n % 4 == 0 else rng.choice(WORDS)
            record(f"search ({label})", page_url(project, q=word))
        for n in range(args.repeat):
            query = [
                {"member": f"member{n % 5}"},
                {"model": "sora-2-pro"},
                {"status": "failed"},
                {"first_day": "2026-03-01", "last_day": "2026-03-31"},
                {"q": rng.choice(WORDS), "member": "member2", "status": "completed"},
                {"review": "approved"},
                {"review": "changes"},
                {"review": "none"},
                {"favourite": "on"},
                {"favourite": "on", "review": "approved", "q": rng.choice(WORDS)},
            ][n % 10]
            record(f"filters ({label})", page_url(project, **query))
    print(f"{machine()}; load average {os.getloadavg()[0]:.2f}")
    print("Project page and search, one request at a time:")
    for kind, (millis, queries, cpu) in kinds.items():
        describe(kind, millis, queries, cpu)

    # The live endpoint: 50 open pages, each asking every 3 s with its own cursor.
    live_url = reverse("generations:live", args=[big.pk])
    live_millis: list[float] = []
    live_queries: list[int] = []
    live_cpu: list[float] = []
    live_cards: list[int] = []
    lock = threading.Lock()
    duration = max(30.0, PAGE_INTERVAL * 10)
    began = time.monotonic()

    def page(index: int) -> None:
        from django.db import connection

        own = Client()
        own.force_login(member)
        cursor = f"{time.time() - 30:.6f}"
        held: dict[str, int] = {}
        time.sleep(PAGE_INTERVAL * index / OPEN_PAGES)  # pages opened at different moments
        try:
            while time.monotonic() - began < duration:
                asked = time.monotonic()
                millis, count, body, cpu = timed(own, live_url + live_query(cursor, held))
                answer = json.loads(body)
                cursor = answer["cursor"]
                held.update({card["id"]: card["version"] for card in answer["cards"]})
                with lock:
                    live_millis.append(millis)
                    live_queries.append(count)
                    live_cpu.append(cpu)
                    live_cards.append(len(answer["cards"]))
                time.sleep(max(0.0, PAGE_INTERVAL - (time.monotonic() - asked)))
        finally:
            connection.close()

    # One in-flight card changes every CHURN seconds (its row touched, as a status check
    # does), so answers carry re-rendered cards as well as the others' moving state.
    in_flight = list(
        Generation.objects.filter(project=big, status__in=ACTIVE_STATUSES).values_list(
            "pk", flat=True
        )
    )
    stop = threading.Event()

    def churn() -> None:
        from django.db import connection
        from django.utils import timezone

        n = 0
        while in_flight and not stop.wait(CHURN):
            Generation.objects.filter(pk=in_flight[n % len(in_flight)]).update(
                updated_at=timezone.now()
            )
            n += 1
        connection.close()

    threads = [threading.Thread(target=page, args=(n,)) for n in range(OPEN_PAGES)]
    churner = threading.Thread(target=churn)
    churner.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    churner.join()
    rate = len(live_millis) / (time.monotonic() - began)
    print(
        f"Live updates, {OPEN_PAGES} open pages every {PAGE_INTERVAL:.0f} s as threads of this "
        f"process ({rate:.1f} requests/s; {len(in_flight)} cards in flight, one changing every "
        f"{CHURN:g} s; cards re-rendered per answer {min(live_cards)}-{max(live_cards)}):"
    )
    describe("live request", live_millis, live_queries, live_cpu)


if __name__ == "__main__":
    main()
