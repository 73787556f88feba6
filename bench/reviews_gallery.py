"""Gallery filters by review state and favourite at size (issue 13, part 3).

Builds a scratch database with one project of ``--project-videos`` finished videos among
``--total-videos`` (the rest in other projects), a third of the project's videos decided
(approved or changes requested, each with an earlier decision in its history) and one in
twenty starred by the member, then times the project page as that member for each filter
(Django's test client, the whole view and template) and counts its queries. Prints a table.

    DATABASE_URL=postgres://… python bench/reviews_gallery.py --total-videos 1000000
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import timedelta

from _harness import machine, scratch_database_url, setup_django

BATCH = 5000


def build(project_videos: int, total_videos: int) -> tuple[int, str]:
    from django.contrib.auth.models import User
    from django.utils import timezone

    from workspace.billing.services import prices_seed
    from workspace.generations.models import Generation, Status
    from workspace.projects.services import membership_add, project_create
    from workspace.providers.models import Channel
    from workspace.reviews.models import Favourite, ReviewDecision, ReviewState

    owner = User.objects.create_user("bench-owner", password=None)
    member = User.objects.create_user("bench-member", password="bench-password-123")
    channel = Channel.objects.create(slug="openai", name="OpenAI Videos")
    prices_seed(channel=channel)
    project = project_create(name="Bench film", owner=owner)
    membership_add(project=project, username=member.username, role="editor", actor=owner)
    others = [project_create(name=f"Other {n}", owner=owner) for n in range(10)]
    start = timezone.now() - timedelta(days=400)
    made = 0
    while made < total_videos:
        rows = []
        for n in range(made, min(made + BATCH, total_videos)):
            target = project if n % max(1, total_videos // project_videos) == 0 else None
            rows.append(
                Generation(
                    id=uuid.uuid4(),
                    project=target or others[n % len(others)],
                    created_by=owner,
                    channel=channel,
                    model="sora-2",
                    prompt=f"Take {n}: a paper boat drifting down a rainy street at dusk",
                    size="1280x720",
                    seconds=4,
                    status=Status.COMPLETED,
                    progress=100,
                    created_at=start + timedelta(seconds=30 * n),
                    completed_at=start + timedelta(seconds=30 * n + 60),
                )
            )
        Generation.objects.bulk_create(rows)
        made += len(rows)
    ids = list(
        Generation.objects.filter(project=project)
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    decisions, stars = [], []
    for index, pk in enumerate(ids):
        if index % 3 == 0:
            first, last = (
                (ReviewState.CHANGES_REQUESTED, ReviewState.APPROVED)
                if index % 2
                else (ReviewState.APPROVED, ReviewState.CHANGES_REQUESTED)
            )
            decisions.append(
                ReviewDecision(generation_id=pk, state=first, decided_by=owner, is_current=False)
            )
            decisions.append(
                ReviewDecision(generation_id=pk, state=last, decided_by=owner, is_current=True)
            )
        if index % 20 == 0:
            stars.append(Favourite(generation_id=pk, user=member))
    ReviewDecision.objects.bulk_create(decisions, batch_size=BATCH)
    # review_decide keeps the current state on the video's row; bulk_create does not.
    for state in (ReviewState.APPROVED, ReviewState.CHANGES_REQUESTED):
        decided = [d.generation_id for d in decisions if d.is_current and d.state == state]
        for start in range(0, len(decided), BATCH):
            Generation.objects.filter(pk__in=decided[start : start + BATCH]).update(
                review_state=state
            )
    Favourite.objects.bulk_create(stars, batch_size=BATCH)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("analyze")
    return project.pk, member.username


def measure(project_id: int, username: str, runs: int) -> None:
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    assert client.login(username=username, password="bench-password-123")
    cases = {
        "no filter": "",
        "review=approved": "?review=approved",
        "review=changes": "?review=changes",
        "review=none": "?review=none",
        "favourite=on": "?favourite=on",
        "favourite + approved": "?favourite=on&review=approved",
        "search + approved": "?q=boat&review=approved",
    }
    print("| filter | p50 ms | p95 ms | queries |\n|---|---|---|---|")
    for label, query in cases.items():
        path = f"/projects/{project_id}/{query}"
        assert client.get(path).status_code == 200  # warm
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            answer = client.get(path)
            times.append((time.perf_counter() - began) * 1000)
            assert answer.status_code == 200
        # Counted by a wrapper: the debug log of queries is reset when a request starts.
        queries: list[str] = []

        def count(run, sql, *rest, seen=queries):  # type: ignore[no-untyped-def]
            seen.append(sql)
            return run(sql, *rest)

        with connection.execute_wrapper(count):
            client.get(path)
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(f"| {label} | {statistics.median(times):.1f} | {p95:.1f} | {len(queries)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project-videos", type=int, default=10_000)
    parser.add_argument("--total-videos", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    import os

    os.environ["DATABASE_URL"] = scratch_database_url("reviews", fresh=True)
    setup_django(name="reviews", time_scale=1)
    began = time.monotonic()
    project_id, username = build(args.project_videos, args.total_videos)
    print(
        f"built {args.total_videos:,} videos ({args.project_videos:,} in the project) "
        f"in {time.monotonic() - began:.0f} s; {machine()}"
    )
    measure(project_id, username, args.runs)


if __name__ == "__main__":
    main()
