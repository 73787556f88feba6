from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views.decorators.http import require_POST, require_safe

from workspace.core.files import file_response
from workspace.generations.models import Generation, Status
from workspace.generations.views import download_filename
from workspace.projects.models import Membership, Project
from workspace.projects.selectors import membership_get_or_404
from workspace.sharing.forms import ShareLinkForm
from workspace.sharing.models import MAX_VIDEOS_PER_LINK, ShareLink
from workspace.sharing.selectors import share_links_active
from workspace.sharing.services import (
    EDITORS_ONLY,
    share_link_create,
    share_link_record_open,
    share_link_resolve,
    share_link_revoke,
)
from workspace.sharing.zips import MAX_VIDEOS_PER_ZIP, zip_stream, zippable

_NEW_LINK_KEY = "sharing:new-link:{project_id}"
# A link's page must not leak its URL (the token) to anything it links to, nor be indexed.
_PUBLIC_HEADERS = {
    "X-Robots-Tag": "noindex, nofollow, noarchive",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}
_PUBLIC_VARIANTS = {"video": "video", "thumbnail": "thumbnail"}


def _selected_ids(request: HttpRequest) -> list[str]:
    """The ``g`` values that are UUIDs, in order, once each (anything else is ignored)."""
    ids: list[str] = []
    for value in request.GET.getlist("g") + request.POST.getlist("g"):
        try:
            ids.append(str(uuid.UUID(value)))
        except ValueError:
            continue
    return list(dict.fromkeys(ids))


def _refused(request: HttpRequest, project: Project, message: str, status: int) -> HttpResponse:
    return render(
        request, "sharing/refused.html", {"project": project, "message": message}, status=status
    )


@login_required
def share_create(request: HttpRequest, project_id: int) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    project = membership.project
    ids = _selected_ids(request)
    form = ShareLinkForm(request.POST if request.method == "POST" else None)
    errors: list[str] = []
    if request.method == "POST":
        if not membership.can_generate:
            raise PermissionDenied(EDITORS_ONLY)
        if form.is_valid():
            actor: User = request.user  # type: ignore[assignment]
            try:
                issued = share_link_create(
                    project=project,
                    generation_ids=ids,
                    actor=actor,
                    lifetime_days=form.cleaned_data["lifetime_days"],
                    show_prompt=form.cleaned_data["show_prompt"],
                )
            except ValidationError as error:
                errors = error.messages
            else:
                # Shown once on the settings page, then only its prefix: the URL is the secret.
                request.session[_NEW_LINK_KEY.format(project_id=project.pk)] = {
                    "id": issued.link.pk,
                    "url": request.build_absolute_uri(
                        reverse("sharing:public", args=[issued.token])
                    ),
                }
                messages.success(request, "Share link created: copy it now, it is shown once.")
                return redirect(reverse("projects:settings", args=[project.pk]) + "#share-links")
    videos = list(
        Generation.objects.filter(project=project, pk__in=ids, status=Status.COMPLETED)
        .exclude(video="")
        .order_by("-created_at")[: MAX_VIDEOS_PER_LINK + 1]
    )
    return render(
        request,
        "sharing/create.html",
        {
            "project": project,
            "membership": membership,
            "form": form,
            "videos": videos,
            "errors": errors,
            "too_many": len(ids) > MAX_VIDEOS_PER_LINK,
            "max_videos": MAX_VIDEOS_PER_LINK,
        },
    )


def share_links_context(request: HttpRequest, *, membership: Membership) -> dict[str, Any]:
    """The settings page's share-link section: active links and, once, a new link's URL."""
    project = membership.project
    new_link = request.session.pop(_NEW_LINK_KEY.format(project_id=project.pk), None)
    return {
        "share_links": list(share_links_active(project=project)),
        "new_share_link": new_link if membership.can_generate else None,
    }


@login_required
@require_POST
def share_revoke(request: HttpRequest, project_id: int, link_id: int) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    link = get_object_or_404(
        ShareLink.objects.select_related("project"), pk=link_id, project_id=project_id
    )
    if not membership.can_generate:
        raise PermissionDenied(EDITORS_ONLY)
    if share_link_revoke(link=link, actor=request.user):  # type: ignore[arg-type]
        messages.success(request, f"Link {link.prefix}… revoked: it no longer opens.")
    else:
        messages.info(request, f"Link {link.prefix}… was already revoked.")
    return redirect(reverse("projects:settings", args=[project_id]) + "#share-links")


@login_required
@require_safe
def selection_zip(request: HttpRequest, project_id: int) -> HttpResponseBase:
    """The chosen finished videos of one project the member belongs to, as one streamed ZIP."""
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    project = membership.project
    ids = _selected_ids(request)
    if not ids:
        return _refused(request, project, "Choose at least one video to download.", 400)
    if len(ids) > MAX_VIDEOS_PER_ZIP:
        return _refused(
            request,
            project,
            f"A ZIP holds at most {MAX_VIDEOS_PER_ZIP} videos; {len(ids)} were chosen. "
            "Choose fewer and download them in several ZIPs.",
            400,
        )
    chosen = Generation.objects.filter(project=project, pk__in=ids)
    removed = chosen.filter(files_removed_at__isnull=False).count()
    if removed:
        # A ZIP quietly missing some of what was chosen would look complete.
        return _refused(
            request,
            project,
            f"The files of {removed} of the chosen videos were removed by the retention "
            "policy, so they cannot be downloaded. Choose the others and download again.",
            410,
        )
    videos = zippable(chosen.order_by("created_at"))
    if not videos:
        return _refused(
            request,
            project,
            "None of the chosen videos is finished, so there is nothing to download.",
            400,
        )
    archive = zip_stream(generations=videos, project_name=project.name)
    stem = slugify(project.name)[:40] or "project"
    name = f"{stem}-{timezone.localdate():%Y-%m-%d}-{len(videos)}-videos.zip"
    response = StreamingHttpResponse(archive, content_type="application/zip")
    response["Content-Length"] = str(len(archive))
    response["Content-Disposition"] = content_disposition_header(True, name) or "attachment"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


def _public(response: HttpResponseBase) -> HttpResponseBase:
    for header, value in _PUBLIC_HEADERS.items():
        response[header] = value
    return response


def _closed_page(request: HttpRequest, link: ShareLink | None) -> HttpResponseBase:
    # 404 when no link has this token; 410 for one that existed and was closed.
    status = 404 if link is None else 410
    state = "unknown" if link is None else link.state
    response = render(request, "sharing/closed.html", {"state": state}, status=status)
    return _public(response)


def _shared_videos(link: ShareLink) -> list[Generation]:
    # A video moved out of the project since the link was made is no longer shared.
    return list(
        link.generations.filter(project_id=link.project_id, status=Status.COMPLETED)
        .exclude(video="")
        .order_by("created_at")
    )


@require_safe
def share_public(request: HttpRequest, share_token: str) -> HttpResponseBase:
    """What a link's holder sees: the shared videos, nothing of the app around them."""
    link = share_link_resolve(token=share_token)
    if link is None or link.state != "active":
        return _closed_page(request, link)
    if request.method == "GET":
        share_link_record_open(link=link)
    videos = _shared_videos(link)
    removed = link.generations.filter(
        project_id=link.project_id, files_removed_at__isnull=False
    ).count()
    return _public(
        render(
            request,
            "sharing/public.html",
            {"link": link, "token": share_token, "videos": videos, "removed": removed},
        )
    )


@require_safe
def share_file(
    request: HttpRequest, share_token: str, generation_id: uuid.UUID, variant: str
) -> HttpResponseBase:
    link = share_link_resolve(token=share_token)
    if link is None or link.state != "active":
        return _closed_page(request, link)
    field = _PUBLIC_VARIANTS.get(variant)
    if link.generations.filter(
        pk=generation_id, project_id=link.project_id, files_removed_at__isnull=False
    ).exists():
        return _public(
            render(request, "sharing/closed.html", {"state": "files_removed"}, status=410)
        )
    generation = next((g for g in _shared_videos(link) if g.pk == generation_id), None)
    stored = getattr(generation, field) if generation is not None and field else None
    if not stored or generation is None:
        raise Http404("No such file.")
    extension = stored.name.rsplit(".", 1)[-1]
    filename = download_filename(generation=generation, variant=variant, extension=extension)
    download = request.GET.get("download") == "1"
    response = file_response(request, stored, filename=filename, as_attachment=download)
    # Revalidated every time: a revoked link must stop serving at once, not after a cache hour.
    return _public(response)
