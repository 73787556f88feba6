"""Read-side access checks: every project URL resolves its membership here or answers 404."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.http import Http404

from workspace.projects.models import Membership, Project


def projects_for_user(*, user: User | AnonymousUser) -> QuerySet[Project]:
    return Project.objects.filter(memberships__user_id=user.pk or 0).distinct()


def membership_get_or_404(*, user: User | AnonymousUser, project_id: int) -> Membership:
    """The caller's membership of a project; a non-member cannot tell the project exists."""
    membership = (
        Membership.objects.select_related("project")
        .filter(user_id=user.pk or 0, project_id=project_id)
        .first()
    )
    if membership is None:
        raise Http404("No such project.")
    return membership
