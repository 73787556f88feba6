from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from workspace.projects.models import Project
from workspace.sharing.models import ShareLink


def share_links_active(*, project: Project) -> QuerySet[ShareLink]:
    """Links still open: not revoked, not expired (the settings page lists these)."""
    return (
        ShareLink.objects.filter(
            project=project, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
        .select_related("created_by")
        .prefetch_related("generations")
    )
