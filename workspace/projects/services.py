from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from workspace.projects.models import Membership, Project, Role


def project_create(*, name: str, owner: User, description: str = "") -> Project:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A project needs a name."})
    project = Project(name=name, description=description, created_by=owner)
    # The model's bounds hold for every caller, not only for the form (a 2 MB description).
    project.full_clean(exclude=["created_by"], validate_constraints=False)
    taken = ValidationError({"name": f"There is already a project called “{name}”."})
    if Project.objects.filter(name__iexact=name).exists():
        raise taken
    try:
        with transaction.atomic():
            project.save()
            Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    except IntegrityError as error:  # the same name created between the check and the insert
        if "project_name_unique_ignoring_case" in str(error):
            raise taken from error
        raise
    return project


def _require_owner(*, project: Project, actor: User | None) -> None:
    # actor=None means a trusted caller (an admin command or the Django admin).
    if actor is None:
        return
    if not Membership.objects.filter(project=project, user=actor, role=Role.OWNER).exists():
        raise PermissionDenied("Only a project owner can change its members.")


def _owners_left_after(*, project: Project, excluding_user_id: int) -> int:
    return (
        Membership.objects.select_for_update()
        .filter(project=project, role=Role.OWNER)
        .exclude(user_id=excluding_user_id)
        .count()
    )


def membership_add(*, project: Project, username: str, role: str, actor: User | None) -> Membership:
    _require_owner(project=project, actor=actor)
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of: {', '.join(Role.values)}."})
    user = get_user_model().objects.filter(username=username.strip()).first()
    if user is None:
        raise ValidationError({"username": f"There is no member called {username.strip()!r}."})
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            project=project, user=user, defaults={"role": role}
        )
        if not created:
            raise ValidationError({"username": f"{user.get_username()} is already a member."})
    return membership


def membership_set_role(*, membership: Membership, role: str, actor: User | None) -> None:
    _require_owner(project=membership.project, actor=actor)
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of: {', '.join(Role.values)}."})
    with transaction.atomic():
        if (
            role != Role.OWNER
            and membership.role == Role.OWNER
            and (
                _owners_left_after(project=membership.project, excluding_user_id=membership.user_id)
                == 0
            )
        ):
            raise ValidationError("A project must keep at least one owner.")
        membership.role = role
        membership.save(update_fields=["role"])  # save(), not update(): the audit log sees it


def membership_remove(*, membership: Membership, actor: User | None) -> None:
    _require_owner(project=membership.project, actor=actor)
    with transaction.atomic():
        if membership.role == Role.OWNER and (
            _owners_left_after(project=membership.project, excluding_user_id=membership.user_id)
            == 0
        ):
            raise ValidationError("A project must keep at least one owner.")
        membership.delete()
