import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from workspace.projects.models import Membership, Role
from workspace.projects.selectors import membership_get_or_404, projects_for_user
from workspace.projects.services import (
    membership_add,
    membership_remove,
    membership_set_role,
    project_create,
)


def test_the_creator_owns_a_new_project(owner) -> None:  # type: ignore[no-untyped-def]
    project = project_create(name="  Spring campaign ", owner=owner)
    assert project.name == "Spring campaign"
    assert Membership.objects.get(project=project).role == Role.OWNER


def test_a_project_needs_a_name(owner) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError):
        project_create(name="   ", owner=owner)


def test_members_see_only_their_projects(project, teammate, outsider) -> None:  # type: ignore[no-untyped-def]
    assert list(projects_for_user(user=teammate)) == [project]
    assert list(projects_for_user(user=outsider)) == []
    from django.http import Http404

    with pytest.raises(Http404):
        membership_get_or_404(user=outsider, project_id=project.pk)


def test_only_owners_manage_members(project, owner, teammate, outsider) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDenied):
        membership_add(
            project=project, username=outsider.username, role=Role.VIEWER, actor=teammate
        )
    membership_add(project=project, username=outsider.username, role=Role.VIEWER, actor=owner)
    with pytest.raises(ValidationError, match="already a member"):
        membership_add(project=project, username=outsider.username, role=Role.VIEWER, actor=owner)
    with pytest.raises(ValidationError, match="no member called"):
        membership_add(project=project, username="nobody", role=Role.VIEWER, actor=owner)


def test_the_last_owner_cannot_leave_or_be_demoted(project, owner, teammate) -> None:  # type: ignore[no-untyped-def]
    own = Membership.objects.get(project=project, user=owner)
    with pytest.raises(ValidationError, match="at least one owner"):
        membership_set_role(membership=own, role=Role.EDITOR, actor=owner)
    with pytest.raises(ValidationError, match="at least one owner"):
        membership_remove(membership=own, actor=owner)
    promoted = Membership.objects.get(project=project, user=teammate)
    membership_set_role(membership=promoted, role=Role.OWNER, actor=owner)
    membership_remove(membership=own, actor=owner)
    assert not Membership.objects.filter(project=project, user=owner).exists()
