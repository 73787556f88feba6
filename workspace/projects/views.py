from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from workspace.generations.selectors import generation_get_or_404
from workspace.generations.versions import stack_heads_repair
from workspace.generations.views import (
    gallery_context,
    generation_form_for_page,
    refused_form_pop,
)
from workspace.projects.forms import (
    GenerationCopyForm,
    GenerationMoveForm,
    MemberAddForm,
    MemberRoleForm,
    ProjectDeleteForm,
    ProjectForm,
    ProjectRenameForm,
)
from workspace.projects.models import Membership, Project, Role
from workspace.projects.selectors import (
    membership_get_or_404,
    projects_for_user,
    projects_recently_deleted,
)
from workspace.projects.services import (
    generation_copy,
    generation_move,
    membership_add,
    membership_remove,
    membership_set_role,
    project_archive,
    project_create,
    project_delete,
    project_purge_at,
    project_rename,
    project_restore,
    project_unarchive,
    projects_to_move_into,
)
from workspace.providers.services import channel_get_default
from workspace.sharing.views import share_links_context


def _form_errors(
    form: ProjectForm
    | MemberAddForm
    | MemberRoleForm
    | ProjectRenameForm
    | GenerationMoveForm
    | GenerationCopyForm
    | ProjectDeleteForm,
    error: ValidationError,
) -> None:
    if hasattr(error, "error_dict"):
        for field, field_errors in error.error_dict.items():
            for item in field_errors:
                form.add_error(field if field in form.fields else None, item)
    else:
        for message in error.messages:
            form.add_error(None, message)


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = project_create(
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                owner=request.user,  # type: ignore[arg-type]
            )
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Project “{project.name}” created.")
            return redirect("projects:detail", project_id=project.pk)
    show_archived = request.GET.get("archived") == "1"
    projects = projects_for_user(user=request.user).prefetch_related("memberships")
    archived_count = projects.filter(archived_at__isnull=False).count()
    if not show_archived:
        projects = projects.filter(archived_at__isnull=True)
    roles = dict(
        Membership.objects.filter(user_id=request.user.pk or 0).values_list("project_id", "role")
    )
    return render(
        request,
        "projects/list.html",
        {
            "projects": [(p, roles.get(p.pk)) for p in projects],
            "form": form,
            "show_archived": show_archived,
            "archived_count": archived_count,
            "recently_deleted": [
                (p, project_purge_at(p)) for p in projects_recently_deleted(user=request.user)
            ],
        },
    )


@login_required
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    channel = channel_get_default()
    form = None
    if membership.can_generate:
        if membership.project.is_archived:
            # No form to fill in only to be refused; the page's banner says why.
            refused_form_pop(request, project_id=membership.project.pk)
        else:
            form = generation_form_for_page(request, project=membership.project, channel=channel)
    return render(
        request,
        "projects/detail.html",
        {
            "project": membership.project,
            "membership": membership,
            "channel": channel,
            "form": form,
            # Taken before the query: the page's first live request starts from here.
            "live_cursor": f"{timezone.now().timestamp():.6f}",
            **gallery_context(request, membership=membership, channel=channel),
        },
    )


@login_required
def project_members(request: HttpRequest, project_id: int) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    project = membership.project
    form = MemberAddForm(request.POST or None)
    if request.method == "POST":
        if not membership.can_manage:
            raise PermissionDenied("Only a project owner can change its members.")
        if form.is_valid():
            try:
                added = membership_add(
                    project=project,
                    username=form.cleaned_data["username"],
                    role=form.cleaned_data["role"],
                    actor=request.user,  # type: ignore[arg-type]
                )
            except ValidationError as error:
                _form_errors(form, error)
            else:
                messages.success(request, f"{added.user.get_username()} joined as {added.role}.")
                return redirect("projects:members", project_id=project.pk)
    members = project.memberships.select_related("user").order_by("user__username")
    return render(
        request,
        "projects/members.html",
        {
            "project": project,
            "membership": membership,
            "members": members,
            "form": form,
            "roles": Role.choices,
        },
    )


@login_required
@require_POST
def project_member_change(request: HttpRequest, project_id: int, member_id: int) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    target = get_object_or_404(Membership, pk=member_id, project_id=project_id)
    if not membership.can_manage:
        raise Http404("No such member.")
    left = False
    try:
        if request.POST.get("action") == "remove":
            membership_remove(membership=target, actor=request.user)  # type: ignore[arg-type]
            left = target.user_id == request.user.pk
            messages.success(request, f"{target.user.get_username()} was removed.")
        else:
            form = MemberRoleForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Choose owner, editor or viewer.")
            else:
                membership_set_role(
                    membership=target,
                    role=form.cleaned_data["role"],
                    actor=request.user,  # type: ignore[arg-type]
                )
                messages.success(request, f"{target.user.get_username()} is now {target.role}.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    if left:  # a refused leave (the sole owner) stays on the members page with the reason
        return redirect("projects:list")
    return redirect("projects:members", project_id=project_id)


@login_required
def project_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    """Rename, archive, unarchive and delete (owners); share links (owners and editors)."""
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    project = membership.project
    action = request.POST.get("action", "rename")
    rename_form = ProjectRenameForm(
        request.POST if request.method == "POST" and action == "rename" else None,
        initial={"name": project.name},
    )
    delete_form = ProjectDeleteForm(
        request.POST if request.method == "POST" and action == "delete" else None
    )
    if request.method == "POST":
        if not membership.can_manage:
            raise PermissionDenied("Only a project owner can rename, archive or delete it.")
        actor: User = request.user  # type: ignore[assignment]
        try:
            if action == "archive":
                project_archive(project=project, actor=actor)
                messages.success(request, f"“{project.name}” is archived and read-only.")
                return redirect("projects:settings", project_id=project.pk)
            if action == "unarchive":
                project_unarchive(project=project, actor=actor)
                messages.success(request, f"“{project.name}” is back in use.")
                return redirect("projects:settings", project_id=project.pk)
            if action == "delete":
                if delete_form.is_valid():
                    project_delete(
                        project=project,
                        actor=actor,
                        confirm_name=delete_form.cleaned_data["confirm_name"],
                    )
                    messages.success(
                        request,
                        f"“{project.name}” is deleted. An owner can restore it from "
                        f"“Recently deleted” below until {project_purge_at(project):%-d %b %Y}.",
                    )
                    return redirect("projects:list")
            elif rename_form.is_valid():
                project_rename(project=project, name=rename_form.cleaned_data["name"], actor=actor)
                messages.success(request, f"The project is now called “{project.name}”.")
                return redirect("projects:settings", project_id=project.pk)
        except ValidationError as error:
            _form_errors(delete_form if action == "delete" else rename_form, error)
    return render(
        request,
        "projects/settings.html",
        {
            "project": project,
            "membership": membership,
            "rename_form": rename_form,
            "delete_form": delete_form,
            "grace_days": settings.REELHOUSE_PROJECT_DELETE_GRACE_DAYS,
            **share_links_context(request, membership=membership),
        },
    )


@login_required
@require_POST
def project_restore_view(request: HttpRequest, project_id: int) -> HttpResponse:
    """Bring back a deleted project (owners); its members see it again at once."""
    membership = (
        Membership.objects.select_related("project")
        .filter(user_id=request.user.pk or 0, project_id=project_id)
        .first()
    )
    if membership is None:
        raise Http404("No such project.")
    if not membership.can_manage:
        raise PermissionDenied("Only a project owner can restore it.")
    project = membership.project
    if project.is_deleted:
        project_restore(project=project, actor=request.user)  # type: ignore[arg-type]
        messages.success(request, f"“{project.name}” is restored.")
    else:
        messages.info(request, f"“{project.name}” is not deleted.")
    return redirect("projects:detail", project_id=project.pk)


@login_required
def generation_move_view(request: HttpRequest, project_id: int, generation_id: str) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    generation = generation_get_or_404(project=membership.project, generation_id=generation_id)
    actor: User = request.user  # type: ignore[assignment]
    targets = projects_to_move_into(user=actor, source=membership.project)
    form = GenerationMoveForm(
        request.POST if request.method == "POST" else None,
        choices=[(p.pk, p.name) for p in targets],
    )
    if request.method == "POST":
        if not membership.can_generate:
            raise PermissionDenied("Only owners and editors can move videos.")
        if form.is_valid():
            target = Project.objects.get(pk=form.cleaned_data["to_project"])
            try:
                generation_move(generation=generation, to_project=target, actor=actor)
            except ValidationError as error:
                _form_errors(form, error)
            else:
                # Its stack's gallery card in each project: the one it left, the one it joined.
                stack_heads_repair(stack_id=generation.stack_id)
                messages.success(request, f"Moved to “{target.name}”.")
                return redirect(
                    "generations:detail", project_id=target.pk, generation_id=generation.pk
                )
    return render(
        request,
        "projects/generation_move.html",
        {
            "project": membership.project,
            "membership": membership,
            "generation": generation,
            "form": form,
            "targets": targets,
        },
    )


@login_required
def generation_copy_view(request: HttpRequest, project_id: int, generation_id: str) -> HttpResponse:
    """Copy a ready video into another project the member can edit (any member may copy out)."""
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    generation = generation_get_or_404(project=membership.project, generation_id=generation_id)
    actor: User = request.user  # type: ignore[assignment]
    targets = projects_to_move_into(user=actor, source=membership.project)
    form = GenerationCopyForm(
        request.POST if request.method == "POST" else None,
        choices=[(p.pk, p.name) for p in targets],
    )
    if request.method == "POST" and form.is_valid():
        target = Project.objects.get(pk=form.cleaned_data["to_project"])
        try:
            copy = generation_copy(generation=generation, to_project=target, actor=actor)
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Copied to “{target.name}”: nothing was charged.")
            return redirect("generations:detail", project_id=target.pk, generation_id=copy.pk)
    return render(
        request,
        "projects/generation_copy.html",
        {
            "project": membership.project,
            "membership": membership,
            "generation": generation,
            "form": form,
            "targets": targets,
        },
    )
