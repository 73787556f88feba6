from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from workspace.core.models import AuditEvent
from workspace.generations.models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    Character,
    Generation,
    GenerationInput,
    Status,
)
from workspace.projects.models import Membership, Project, Role

logger = logging.getLogger(__name__)


def _name_taken(name: str, *, excluding: int | None = None) -> ValidationError:
    """The refusal for a name in use; a deleted project keeps its name until it is purged."""
    holder = Project.objects.filter(name__iexact=name).exclude(pk=excluding or 0).first()
    if holder is not None and holder.is_deleted:
        return ValidationError(
            {
                "name": f"A recently deleted project is called “{holder.name}”: an owner can "
                "restore it, or the name is free once it is purged."
            }
        )
    return ValidationError({"name": f"There is already a project called “{name}”."})


def project_create(*, name: str, owner: User, description: str = "") -> Project:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A project needs a name."})
    project = Project(name=name, description=description, created_by=owner)
    # The model's bounds hold for every caller, not only for the form (a 2 MB description).
    project.full_clean(exclude=["created_by"], validate_constraints=False)
    taken = _name_taken(name)
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


def _require_owner(
    *,
    project: Project,
    actor: User | None,
    refusal: str = "Only a project owner can change its members.",
) -> None:
    # actor=None means a trusted caller (an admin command or the Django admin).
    if actor is None:
        return
    if not Membership.objects.filter(project=project, user=actor, role=Role.OWNER).exists():
        raise PermissionDenied(refusal)


ARCHIVED_REFUSAL = "This project is archived and read-only: an owner can unarchive it."


def _require_not_archived(*, project: Project) -> None:
    # Read under the row lock the caller holds, not from a copy loaded before someone archived it.
    if Project.objects.filter(pk=project.pk, archived_at__isnull=False).exists():
        raise ValidationError(ARCHIVED_REFUSAL)


def _locked(project: Project) -> Project:
    return Project.objects.select_for_update().get(pk=project.pk)


def project_rename(*, project: Project, name: str, actor: User | None) -> Project:
    _require_owner(project=project, actor=actor, refusal="Only a project owner can rename it.")
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A project needs a name."})
    taken = _name_taken(name, excluding=project.pk)
    try:
        with transaction.atomic():
            locked = _locked(project)
            if locked.is_archived:
                raise ValidationError(ARCHIVED_REFUSAL)
            if locked.name == name:
                return locked
            if Project.objects.filter(name__iexact=name).exclude(pk=locked.pk).exists():
                raise taken
            locked.name = name
            locked.full_clean(exclude=["created_by"], validate_constraints=False)
            # save(), not update(): the audit log records the old and the new name.
            locked.save(update_fields=["name"])
    except IntegrityError as error:  # the same name taken between the check and the update
        if "project_name_unique_ignoring_case" in str(error):
            raise taken from error
        raise
    project.name = locked.name
    return locked


def _set_archived(*, project: Project, archived: bool, actor: User | None) -> Project:
    verb = "archive" if archived else "unarchive"
    _require_owner(project=project, actor=actor, refusal=f"Only a project owner can {verb} it.")
    with transaction.atomic():
        locked = _locked(project)
        if locked.is_archived != archived:  # twice in a row is a no-op, not a second audit entry
            locked.archived_at = timezone.now() if archived else None
            locked.save(update_fields=["archived_at"])
    project.archived_at = locked.archived_at
    return locked


def project_archive(*, project: Project, actor: User | None) -> Project:
    """Make a project read-only and take it off the project list (until unarchived)."""
    return _set_archived(project=project, archived=True, actor=actor)


def project_unarchive(*, project: Project, actor: User | None) -> Project:
    return _set_archived(project=project, archived=False, actor=actor)


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
        _locked(project)
        _require_not_archived(project=project)
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
        _locked(membership.project)
        _require_not_archived(project=membership.project)
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
        _locked(membership.project)
        _require_not_archived(project=membership.project)
        if membership.role == Role.OWNER and (
            _owners_left_after(project=membership.project, excluding_user_id=membership.user_id)
            == 0
        ):
            raise ValidationError("A project must keep at least one owner.")
        membership.delete()


def projects_to_move_into(*, user: User, source: Project) -> list[Project]:
    """Projects in use where ``user`` may add videos, other than ``source``."""
    return list(
        Project.objects.filter(
            memberships__user_id=user.pk,
            memberships__role__in=(Role.OWNER, Role.EDITOR),
            archived_at__isnull=True,
            deleted_at__isnull=True,
        )
        .exclude(pk=source.pk)
        .order_by("name", "id")
    )


def generation_move(*, generation: Generation, to_project: Project, actor: User) -> Generation:
    """Move a finished video to another project the actor can edit.

    Only finished ones: an unfinished generation holds a reservation against its project's
    budget, which would then be settled against a project that did not reserve it. The ledger
    keeps the project that paid, so moving never rewrites spend already accounted.
    """
    source_id = generation.project_id
    editable = set(
        Membership.objects.filter(
            user_id=actor.pk,
            project_id__in=(source_id, to_project.pk),
            role__in=(Role.OWNER, Role.EDITOR),
        ).values_list("project_id", flat=True)
    )
    if editable != {source_id, to_project.pk}:
        raise PermissionDenied("You can move videos only between projects you can edit.")
    if to_project.pk == source_id:
        raise ValidationError({"to_project": "The video is already in this project."})
    with transaction.atomic():
        locked = {
            p.pk: p
            for p in Project.objects.select_for_update()
            .filter(pk__in=(source_id, to_project.pk))
            .order_by("pk")  # one lock order for every mover: no deadlock between two moves
        }
        if any(p.is_archived for p in locked.values()):
            raise ValidationError(ARCHIVED_REFUSAL)
        # Conditional: a video moved or still running meanwhile is left alone.
        moved = Generation.objects.filter(
            pk=generation.pk, project_id=source_id, status__in=TERMINAL_STATUSES
        ).update(project=to_project)
        if not moved:
            raise ValidationError(
                "Only a finished video (ready, failed or canceled) can be moved, "
                "and this one is not in that project any more or not finished yet."
            )
        AuditEvent.record(
            actor=actor,
            action=AuditEvent.Action.CHANGED,
            target_type=str(Generation._meta.verbose_name),
            target_id=generation.pk,
            target_repr=generation.prompt,
            changes={"project_id": [source_id, to_project.pk]},
        )
    generation.project = to_project
    return generation


def _require_member(*, project: Project, actor: User) -> Membership:
    membership = Membership.objects.filter(project=project, user_id=actor.pk).first()
    if membership is None:
        raise PermissionDenied("You are not a member of this project.")
    return membership


DELETE_REFUSAL_ACTIVE = (
    "{count} video{s} of this project {are} still being generated. Nothing is deleted while a "
    "provider may be working (and charging) for it: wait for {them} to finish, or cancel the "
    "queued ones, then delete the project."
)


def project_delete(*, project: Project, actor: User, confirm_name: str) -> Project:
    """Hide a project at once; an owner can restore it until the sweep purges it.

    Refused while any of its generations is in flight (queued, sending, rendering, saving or
    held): deleting would strand a reservation or a job the provider bills, so the owner waits
    or cancels first. Audited through the Project's save signals (``deleted_at``).
    """
    _require_owner(project=project, actor=actor, refusal="Only a project owner can delete it.")
    if confirm_name.strip() != project.name:
        raise ValidationError(
            {"confirm_name": "Type the project's name exactly as shown to confirm."}
        )
    with transaction.atomic():
        locked = _locked(project)
        if locked.is_deleted:
            return locked
        active = Generation.objects.filter(project=locked, status__in=ACTIVE_STATUSES).count()
        if active:
            raise ValidationError(
                DELETE_REFUSAL_ACTIVE.format(
                    count=active,
                    s="" if active == 1 else "s",
                    are="is" if active == 1 else "are",
                    them="it" if active == 1 else "them",
                )
            )
        locked.deleted_at = timezone.now()
        locked.deleted_by = actor
        locked.save(update_fields=["deleted_at", "deleted_by"])
    project.deleted_at, project.deleted_by = locked.deleted_at, actor
    return locked


def project_restore(*, project: Project, actor: User) -> Project:
    _require_owner(project=project, actor=actor, refusal="Only a project owner can restore it.")
    with transaction.atomic():
        locked = _locked(project)
        if locked.is_deleted:
            locked.deleted_at = None
            locked.deleted_by = None
            locked.save(update_fields=["deleted_at", "deleted_by"])
    project.deleted_at = project.deleted_by = None
    return locked


def project_purge_at(project: Project) -> datetime | None:
    """When the sweep may purge a deleted project (None for one in use)."""
    if project.deleted_at is None:
        return None
    return project.deleted_at + timedelta(days=settings.REELHOUSE_PROJECT_DELETE_GRACE_DAYS)


def _stored_names(rows: Iterable[models.Model]) -> list[str]:
    names: list[str] = []
    for row in rows:
        for field in row._meta.fields:
            if isinstance(field, models.FileField):
                value = getattr(row, field.attname)
                if value:
                    names.append(str(value))
    return names


def projects_purge_due(*, now: datetime | None = None) -> int:
    """Purge projects deleted longer ago than the grace period, rows and files; the count.

    The rows go in one transaction per project; the files after it commits (a crash in
    between leaves unreferenced files, never rows pointing at missing ones). A project that
    somehow has work in flight again is left for a later sweep. The ledger keeps its entries
    (they name the project by id, with no constraint), so spend already accounted stays.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.REELHOUSE_PROJECT_DELETE_GRACE_DAYS)
    purged = 0
    for project_id in Project.objects.filter(deleted_at__lte=cutoff).values_list("pk", flat=True):
        with transaction.atomic():
            project = (
                Project.objects.select_for_update(skip_locked=True)
                .filter(pk=project_id, deleted_at__lte=cutoff)
                .first()
            )
            if project is None:
                continue
            generations = Generation.objects.filter(project=project)
            if generations.filter(status__in=ACTIVE_STATUSES).exists():
                continue
            names = _stored_names(generations)
            names += _stored_names(GenerationInput.objects.filter(generation__project=project))
            names += _stored_names(Character.objects.filter(project=project))
            project.delete()
            transaction.on_commit(lambda names=names: _delete_files(names))  # type: ignore[misc]
        purged += 1
    return purged


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete %s of a purged project; left in storage", name)


def generation_copy(*, generation: Generation, to_project: Project, actor: User) -> Generation:
    """Copy a finished video into another project the actor can edit.

    The copy is a new row (``copied_from`` the original) with its own copy of the files, not a
    reference: each project's purge deletes its own rows' files, so a shared file would vanish
    from the other project. Nothing is sent to a provider and nothing is charged (no ledger
    entry): the video already exists.
    """
    _require_member(project=generation.project, actor=actor)
    target = Membership.objects.filter(
        project=to_project, user_id=actor.pk, role__in=(Role.OWNER, Role.EDITOR)
    ).first()
    if target is None:
        raise PermissionDenied("You can copy videos only into projects you can edit.")
    if generation.files_removed_at is not None:
        raise ValidationError(
            "This video's files were removed by the retention policy, so there is nothing to copy."
        )
    if generation.status != Status.COMPLETED or not generation.video:
        raise ValidationError("Only a ready video can be copied.")
    now = timezone.now()
    copy = Generation(
        project=to_project,
        created_by=actor,
        channel_id=generation.channel_id,
        model=generation.model,
        prompt=generation.prompt,
        size=generation.size,
        seconds=generation.seconds,
        source_seconds=generation.source_seconds,
        options=dict(generation.options),
        status=Status.COMPLETED,
        progress=100,
        created_at=now,
        completed_at=now,
        copied_from=generation,
    )
    written: list[str] = []
    try:
        for field in ("video", "thumbnail", "spritesheet"):
            source = getattr(generation, field)
            if not source:
                continue
            filename = source.name.rsplit("/", 1)[-1]
            with source.open("rb") as handle:
                name = default_storage.save(copy.storage_name(filename), handle)
            written.append(name)
            getattr(copy, field).name = name
            copy.stored_bytes += default_storage.size(name)
        with transaction.atomic():
            locked = _locked(to_project)
            if locked.is_archived or locked.is_deleted:
                raise ValidationError(
                    ARCHIVED_REFUSAL if locked.is_archived else "That project was deleted."
                )
            copy.save(force_insert=True)
            AuditEvent.record(
                actor=actor,
                action=AuditEvent.Action.CREATED,
                target_type=str(Generation._meta.verbose_name),
                target_id=copy.pk,
                target_repr=generation.prompt,
                changes={
                    "copied_from": [None, str(generation.pk)],
                    "project_id": [generation.project_id, to_project.pk],
                },
            )
    except BaseException:
        _delete_files(written)
        raise
    return copy
