from __future__ import annotations

from django.http import Http404

from workspace.generations.models import Generation, Status
from workspace.generations.render_times import render_seconds_estimate
from workspace.generations.standings import queue_standings
from workspace.projects.models import Project


def _attach_progress_clock(generations: list[Generation]) -> None:
    """Give running generations what the card needs to move its bar between checks.

    ``progress_started`` (unix seconds) and ``progress_expected`` (seconds): the page
    interpolates from them and never shows 100 % before the video is stored.
    """
    expected: dict[tuple[int, str, int], float] = {}
    for generation in generations:
        generation.progress_shown = min(generation.progress, 99)  # type: ignore[attr-defined]
        generation.progress_started = None  # type: ignore[attr-defined]
        generation.progress_expected = None  # type: ignore[attr-defined]
        started = generation.submitted_at or generation.submit_started_at
        if generation.status not in (Status.SUBMITTING, Status.IN_PROGRESS) or started is None:
            continue
        key = (generation.channel_id, generation.model, generation.seconds)
        if key not in expected:
            expected[key] = render_seconds_estimate(
                channel=generation.channel, model=generation.model, seconds=generation.seconds
            )
        generation.progress_started = started.timestamp()  # type: ignore[attr-defined]
        generation.progress_expected = round(expected[key], 2)  # type: ignore[attr-defined]


def generations_for_project(*, project: Project, limit: int = 60) -> list[Generation]:
    """The project's latest generations; queued ones carry ``standing`` (position, reason, ETA)."""
    generations = list(
        Generation.objects.filter(project=project)
        .select_related("created_by", "channel")
        .order_by("-created_at")[:limit]
    )
    queued_by_channel: dict[int, list[Generation]] = {}
    for generation in generations:
        generation.standing = None  # type: ignore[attr-defined]
        if generation.status == Status.QUEUED:
            queued_by_channel.setdefault(generation.channel_id, []).append(generation)
    _attach_progress_clock(generations)
    for waiting in queued_by_channel.values():
        standings = queue_standings(
            channel=waiting[0].channel, generation_ids={str(g.pk) for g in waiting}
        )
        for generation in waiting:
            generation.standing = standings.get(str(generation.pk))  # type: ignore[attr-defined]
    return generations


def generation_get_or_404(*, project: Project, generation_id: str) -> Generation:
    generation = (
        Generation.objects.select_related("project", "created_by", "channel")
        .filter(project=project, pk=generation_id)
        .first()
    )
    if generation is None:
        raise Http404("No such generation.")
    return generation
