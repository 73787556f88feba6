from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from workspace.generations.models import Generation
from workspace.projects.models import Project


def generations_for_project(*, project: Project, limit: int = 60) -> QuerySet[Generation]:
    return (
        Generation.objects.filter(project=project)
        .select_related("created_by", "channel")
        .order_by("-created_at")[:limit]
    )


def generation_get_or_404(*, project: Project, generation_id: str) -> Generation:
    generation = (
        Generation.objects.select_related("project", "created_by", "channel")
        .filter(project=project, pk=generation_id)
        .first()
    )
    if generation is None:
        raise Http404("No such generation.")
    return generation
