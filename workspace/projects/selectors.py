"""Read-side access checks: every project URL resolves its membership here or answers 404."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.http import Http404

from workspace.projects.models import Membership, Project, Role


def projects_for_user(*, user: User | AnonymousUser) -> QuerySet[Project]:
    # A deleted project is gone for everyone at once; only its owners see it, on the
    # "recently deleted" list (projects_recently_deleted).
    return Project.objects.filter(
        memberships__user_id=user.pk or 0, deleted_at__isnull=True
    ).distinct()


def projects_recently_deleted(*, user: User | AnonymousUser) -> QuerySet[Project]:
    """Deleted projects ``user`` owns and may still restore (not purged yet)."""
    return Project.objects.filter(
        memberships__user_id=user.pk or 0,
        memberships__role=Role.OWNER,
        deleted_at__isnull=False,
    ).order_by("-deleted_at")


def membership_get_or_404(*, user: User | AnonymousUser, project_id: int) -> Membership:
    """The caller's membership of a project; a non-member cannot tell the project exists."""
    membership = (
        Membership.objects.select_related("project")
        .filter(user_id=user.pk or 0, project_id=project_id, project__deleted_at__isnull=True)
        .first()
    )
    if membership is None:
        raise Http404("No such project.")
    return membership
