from __future__ import annotations

from django.http import Http404

from workspace.generations.dispatch import queue_standings
from workspace.generations.models import Generation, Status
from workspace.projects.models import Project


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
