from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST, require_safe

from workspace.core.files import file_response
from workspace.generations.forms import GenerationForm
from workspace.generations.selectors import generation_get_or_404, generations_for_project
from workspace.generations.submission import generation_cancel, generation_submit
from workspace.projects.selectors import membership_get_or_404
from workspace.providers.services import channel_get_default

VARIANT_FIELDS = {"video": "video", "thumbnail": "thumbnail", "spritesheet": "spritesheet"}


@login_required
@require_POST
def generation_create(request: HttpRequest, project_id: int) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    project = membership.project
    if not membership.can_generate:
        raise PermissionDenied("Viewers can watch and download, but not generate.")
    channel = channel_get_default()
    form = GenerationForm(request.POST, channel=channel)
    if form.is_valid():
        try:
            generation_submit(
                project=project,
                user=request.user,  # type: ignore[arg-type]
                channel=channel,
                model=form.cleaned_data["model"],
                prompt=form.cleaned_data["prompt"],
                size=form.cleaned_data["size"],
                seconds=form.cleaned_data["seconds"],
            )
        except ValidationError as error:
            for field, field_errors in error.message_dict.items():
                for message in field_errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, "Queued. Watch its progress below.")
            return redirect("projects:detail", project_id=project.pk)
    # Re-render with the member's input intact and the errors beside the fields.
    return render(
        request,
        "projects/detail.html",
        {
            "project": project,
            "membership": membership,
            "channel": channel,
            "form": form,
            "generations": generations_for_project(project=project),
        },
        status=400,
    )


@login_required
@require_GET
def generation_gallery(request: HttpRequest, project_id: int) -> HttpResponse:
    """The gallery fragment the project page re-fetches while anything is in flight."""
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    return render(
        request,
        "generations/_gallery.html",
        {
            "project": membership.project,
            "membership": membership,
            "generations": generations_for_project(project=membership.project),
        },
    )


@login_required
@require_GET
def generation_detail(request: HttpRequest, project_id: int, generation_id: str) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    generation = generation_get_or_404(project=membership.project, generation_id=generation_id)
    return render(
        request,
        "generations/detail.html",
        {"project": membership.project, "membership": membership, "generation": generation},
    )


@login_required
@require_POST
def generation_cancel_view(
    request: HttpRequest, project_id: int, generation_id: str
) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    generation = generation_get_or_404(project=membership.project, generation_id=generation_id)
    try:
        generation_cancel(generation=generation, user=request.user)  # type: ignore[arg-type]
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Canceled before it reached the provider: nothing was spent.")
    return redirect("projects:detail", project_id=project_id)


@login_required
@require_safe
def generation_file(
    request: HttpRequest, project_id: int, generation_id: str, variant: str
) -> HttpResponseBase:
    """Stream a stored file to a project member; there is no public URL for any of them."""
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    generation = generation_get_or_404(project=membership.project, generation_id=generation_id)
    field = VARIANT_FIELDS.get(variant)
    stored = getattr(generation, field) if field else None
    if not stored:
        raise Http404("No such file.")
    download = request.GET.get("download") == "1"
    extension = stored.name.rsplit(".", 1)[-1]
    filename = f"reelhouse-{str(generation.pk)[:8]}-{variant}.{extension}"
    response = file_response(request, stored, filename=filename, as_attachment=download)
    response["Cache-Control"] = "private, max-age=3600"
    return response
