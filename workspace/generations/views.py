from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import (
    NON_FIELD_ERRORS,
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    ValidationError,
)
from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST, require_safe

from workspace.core.files import file_response
from workspace.generations.cards import cards_render
from workspace.generations.characters import character_create, characters_mentioned
from workspace.generations.drafts import DraftStash
from workspace.generations.following import VARIANT_FIELDS
from workspace.generations.forms import (
    ChangeForm,
    GalleryFilterForm,
    GenerationForm,
    RetentionPolicyForm,
)
from workspace.generations.images import MAX_IMAGE_BYTES
from workspace.generations.models import Generation, Operation
from workspace.generations.retention import retention_policy_set
from workspace.generations.selectors import (
    LIVE_LIMIT,
    GalleryCursor,
    GalleryFilters,
    frame_sources,
    gallery_page,
    generation_get_or_404,
    generations_changed_since,
    generations_for_project,
    live_version,
)
from workspace.generations.submission import generation_cancel, generation_submit
from workspace.generations.versions import change_offers, generation_pick, stack_for
from workspace.projects.models import Membership, Project
from workspace.projects.selectors import membership_get_or_404
from workspace.providers.models import Channel
from workspace.providers.services import channel_get_default
from workspace.reviews.selectors import favourites_attach, reviews_attach

FILENAME_PROMPT_CHARS = 48


def download_filename(*, generation: Generation, variant: str, extension: str) -> str:
    """A name that says what the file shows: the prompt's first words, then a short id.

    e.g. ``paper-boat-drifting-down-a-rainy-street-1a2b3c4d.mp4``; the id keeps two takes of
    one prompt apart in a downloads folder.
    """
    words = slugify(generation.prompt)[:FILENAME_PROMPT_CHARS].rstrip("-")
    if "-" in words and len(slugify(generation.prompt)) > FILENAME_PROMPT_CHARS:
        words = words.rsplit("-", 1)[0]  # no half word at the cut
    stem = f"{words or 'reelhouse'}-{str(generation.pk)[:8]}"
    suffix = "" if variant == "video" else f"-{variant}"
    return f"{stem}{suffix}.{extension}"


FORM_FIELDS = (
    "prompt",
    "model",
    "size",
    "seconds",
    "start",
    "frame_video",
    "frame_at",
    "fit",
    "audio",
    "seed",
    "negative_prompt",
    "takes",
)
# A first frame, a last frame and three references at the image limit, plus the text fields:
# anything larger is refused before its body is read.
MAX_FORM_BYTES = 5 * MAX_IMAGE_BYTES + 1024 * 1024
# Service errors about fields the form shows under another name.
SERVICE_FIELDS = {"images": "first_frame"}


def _refused_form_key(project_id: int) -> str:
    return f"generations:refused-form:{project_id}"


def refused_form_pop(
    request: HttpRequest, *, project_id: int
) -> tuple[dict[str, str], dict[str, list[str]]] | None:
    """The input and service errors of a refused submission, once, for the page it redirected to."""
    stored = request.session.pop(_refused_form_key(project_id), None)
    if not isinstance(stored, dict):
        return None
    return stored.get("data", {}), stored.get("errors", {})


def generation_form_for_page(
    request: HttpRequest, *, project: Project, channel: Channel
) -> GenerationForm:
    """The generate form on the project page: empty, or as the member last sent it with every
    error beside its field and the uploaded images kept."""
    stash = DraftStash(request.session, user_id=request.user.pk)  # type: ignore[arg-type]
    videos = frame_sources(project=project)
    refused = refused_form_pop(request, project_id=project.pk)
    if refused is None:
        form = GenerationForm(channel=channel, stash=stash, videos=videos)
    else:
        data, service_errors = refused
        # Images are not checked again here: their errors came with the refusal.
        form = GenerationForm(
            data, channel=channel, stash=stash, videos=videos, check_inputs=False
        )
        form.is_valid()  # the field errors again, beside the input as it was sent
        for field, field_errors in service_errors.items():
            for message in field_errors:
                form.add_error(None if field == NON_FIELD_ERRORS else field, message)
    # The frame picker's player plays the chosen video from its access-checked URL.
    form.fields["frame_video"].widget.attrs["data-sources"] = json.dumps(
        {
            str(video.pk): {
                "src": reverse("generations:file", args=[project.pk, video.pk, "video"]),
                "seconds": video.total_seconds,
            }
            for video in videos
        }
    )
    return form


def _frame_source(request: HttpRequest, *, project: Project) -> Generation | None:
    """The video a first frame is taken from; one the member cannot see is a 404."""
    if request.POST.get("start") != "frame" or not request.POST.get("frame_video"):
        return None
    try:
        generation_id = str(uuid.UUID(request.POST["frame_video"]))
    except ValueError as error:
        raise Http404("No such video.") from error
    return generation_get_or_404(project=project, generation_id=generation_id)


def _body_refusal(request: HttpRequest) -> str | None:
    """Why the request's body is refused before it is read, if it is."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_FORM_BYTES:
        return (
            f"The form sent {length / (1024 * 1024):.1f} MB; it takes at most "
            f"{MAX_FORM_BYTES // (1024 * 1024)} MB in all (each image up to "
            f"{MAX_IMAGE_BYTES // (1024 * 1024)} MB). Nothing was queued: choose smaller images."
        )
    try:
        request.POST  # noqa: B018 - parses the body, which may be refused
    except (RequestDataTooBig, TooManyFieldsSent):
        return "The form sent more text than it takes. Nothing was queued: shorten it."
    return None


@login_required
@require_POST
def generation_create(request: HttpRequest, project_id: int) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    project = membership.project
    if not membership.can_generate:
        raise PermissionDenied("Viewers can watch and download, but not generate.")
    back = f"{reverse('projects:detail', args=[project.pk])}#generate-title"
    refusal = _body_refusal(request)
    if refusal is not None:
        messages.error(request, refusal)
        return redirect(back)
    channel = channel_get_default()
    stash = DraftStash(request.session, user_id=request.user.pk)  # type: ignore[arg-type]
    form = GenerationForm(
        request.POST,
        request.FILES,
        channel=channel,
        stash=stash,
        frame_source=_frame_source(request, project=project),
    )
    service_errors: dict[str, list[str]] = {}
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
                images=form.images,
                options=form.options(),
                # A ready character named in the prompt goes with it (the provider's way).
                characters=characters_mentioned(
                    project=project, channel=channel, prompt=form.cleaned_data["prompt"]
                ),
                takes=form.cleaned_data["takes"],
            )
        except ValidationError as error:
            for field, messages_ in error.message_dict.items():
                field = SERVICE_FIELDS.get(field, field)
                key = field if field in form.fields else NON_FIELD_ERRORS
                service_errors.setdefault(key, []).extend(messages_)
        else:
            stash.discard([token for tokens in form.kept.values() for token in tokens])
            count = form.cleaned_data["takes"]
            messages.success(
                request,
                f"Queued {count} takes. Watch their progress below."
                if count > 1
                else "Queued. Watch its progress below.",
            )
            return redirect("projects:detail", project_id=project.pk)
    # Errors found only with the images (not recomputed on the page) travel with the refusal.
    for field, field_errors in form.input_errors.items():
        service_errors.setdefault(field, []).extend(field_errors)
    # Post/redirect/get even when refused: the page shows the member's input and the errors
    # beside the fields, and a reload does not send the form again.
    request.session[_refused_form_key(project.pk)] = {
        "data": {
            **{name: request.POST.get(name, "") for name in FORM_FIELDS},
            **form.kept_data(),
        },
        "errors": service_errors,
    }
    return redirect(back)


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
            "generations": reviews_attach(
                generations_for_project(project=membership.project), user=request.user
            ),
        },
    )


def gallery_filter_form(
    request: HttpRequest, *, project: Project, channel: Channel
) -> GalleryFilterForm:
    usernames = list(
        project.memberships.order_by("user__username").values_list("user__username", flat=True)
    )
    models = [(spec.id, spec.label) for spec in channel.catalog.models]
    return GalleryFilterForm(
        request.GET or None, usernames=usernames, models=models, user_id=request.user.pk
    )


def gallery_context(
    request: HttpRequest, *, membership: Membership, channel: Channel
) -> dict[str, Any]:
    """The gallery part of the project page: filters, one keyset page, and real URLs for the
    pages around it and for the live updates, every filter kept in each of them."""
    project = membership.project
    form = gallery_filter_form(request, project=project, channel=channel)
    filters = form.filters()
    before = (
        GalleryCursor.decode(request.GET.get("before", "")) if "before" in request.GET else None
    )
    after = GalleryCursor.decode(request.GET.get("after", "")) if "after" in request.GET else None
    page = gallery_page(project=project, filters=filters, before=before, after=after)
    reviews_attach(page.generations, user=request.user)
    kept = {name: request.GET[name] for name in GalleryFilterForm.FIELDS if request.GET.get(name)}

    def link(**cursor: str) -> str:
        return "?" + urlencode({**kept, **cursor}) if kept or cursor else "?"

    first_page = before is None and after is None
    live_url = reverse("generations:live", args=[project.pk])
    return {
        "filter_form": form,
        "filters": filters,
        "generations": page.generations,
        "older_url": link(before=page.older.encode()) if page.older else None,
        "newer_url": link(after=page.newer.encode()) if page.newer else None,
        "newest_url": None if first_page else link(),
        "clear_url": reverse("projects:detail", args=[project.pk]),
        "live_url": f"{live_url}?{urlencode(kept)}" if kept else live_url,
        "live_insert": first_page,
    }


def _live_since(value: str | None, *, now: datetime) -> datetime | None:
    """The page's cursor (unix seconds, as the last answer gave it); None if it is not one."""
    if value is None or value == "":
        return now
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    # A cursor from the future (a forged one) answers like one from now.
    if seconds > now.timestamp():
        return now
    return datetime.fromtimestamp(seconds, tz=UTC)


def _live_have(value: str) -> dict[uuid.UUID, int] | None:
    """The cards a page holds from recent answers, ``id:version,…``; None if it is not that."""
    have: dict[uuid.UUID, int] = {}
    for pair in value.split(",") if value else []:
        id_text, _, version = pair.partition(":")
        try:
            have[uuid.UUID(id_text)] = int(version)
        except ValueError:
            return None
    return have if len(have) <= LIVE_LIMIT else None


@login_required
@require_safe
def generation_live(request: HttpRequest, project_id: int) -> HttpResponse:
    """What changed in the project since the page's cursor.

    An open project page asks this once per interval, whoever it belongs to, and gets every
    card that is new or changed (anyone's) as ready-made HTML, the moving state (queue
    standing, progress clock) of those still in flight but unchanged, and the next cursor.
    ``render`` names cards the page wants whole again (it could not apply their state);
    ``have`` the versions of cards it got lately, which are not sent again.
    """
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    now = timezone.now()
    since = _live_since(request.GET.get("since"), now=now)
    if since is None:
        return JsonResponse({"error": "since must be the cursor of an earlier answer"}, status=400)
    generation_id = None
    if "generation" in request.GET:
        try:
            generation_id = uuid.UUID(request.GET["generation"])
        except ValueError:
            return JsonResponse({"error": "generation must be a video's id"}, status=400)
    try:
        # Cards the page could not update from their moving state alone: sent whole.
        render = frozenset(
            uuid.UUID(value) for value in request.GET.get("render", "").split(",") if value
        )
    except ValueError:
        return JsonResponse({"error": "render must be videos' ids, comma-separated"}, status=400)
    if len(render) > LIVE_LIMIT:
        return JsonResponse({"error": f"render takes at most {LIVE_LIMIT} ids"}, status=400)
    have = _live_have(request.GET.get("have", ""))
    if have is None:
        return JsonResponse(
            {"error": f"have must be at most {LIVE_LIMIT} id:version pairs, comma-separated"},
            status=400,
        )
    # The filter form reads the project's members: only a filtered page needs it.
    filters = (
        gallery_filter_form(request, project=membership.project, channel=channel_get_default())
        .filters()
        if any(request.GET.get(name) for name in GalleryFilterForm.FIELDS)
        else GalleryFilters()
    )
    live = generations_changed_since(
        project=membership.project,
        since=since,
        filters=filters,
        generation_id=generation_id,
        render=render,
        have=have,
    )
    favourites_attach(live.changed, user=request.user)  # their decisions come with them
    drawn = cards_render(
        live.changed, request=request, project=membership.project, membership=membership
    )
    cards = [
        {
            "id": str(generation.pk),
            "created": f"{generation.created_at.timestamp():.6f}",
            "version": live_version(generation),
            "html": html,
        }
        for generation, html in zip(live.changed, drawn, strict=True)
    ]
    # In-flight cards whose row did not change: what moves on them, not their markup.
    moving = [generation.live_state for generation in live.moving]  # type: ignore[attr-defined]
    # From a shared read of the rows: the next answer starts from that read.
    cursor = min(now, live.as_of) if live.as_of is not None else now
    response = JsonResponse(
        {"cursor": f"{cursor.timestamp():.6f}", "cards": cards, "moving": moving}
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def generation_detail(request: HttpRequest, project_id: int, generation_id: str) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    generation = generation_get_or_404(project=membership.project, generation_id=generation_id)
    refused = request.session.pop(_refused_change_key(generation.pk), None)
    if not isinstance(refused, dict):
        refused = None
    return render(
        request,
        "generations/detail.html",
        {
            "project": membership.project,
            "membership": membership,
            "generation": generation,
            "live_cursor": f"{timezone.now().timestamp():.6f}",
            "stack": stack_for(generation),
            "offers": change_offers(generation),
            # A refused change: which form, what was typed, and the errors by field.
            "refused": refused,
        },
    )


def _refused_change_key(generation_id: uuid.UUID) -> str:
    return f"generations:refused-change:{generation_id}"


@login_required
@require_POST
def generation_change(request: HttpRequest, project_id: int, generation_id: str) -> HttpResponse:
    """Edit, remix or extend a finished video: a new version in its stack."""
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    generation = generation_get_or_404(project=membership.project, generation_id=generation_id)
    if not membership.can_generate:
        raise PermissionDenied("Viewers can watch and download, but not change videos.")
    form = ChangeForm(request.POST)
    errors: dict[str, list[str]] = {}
    if form.is_valid():
        operation = form.cleaned_data["operation"]
        try:
            made = generation_submit(
                project=membership.project,
                user=request.user,  # type: ignore[arg-type]
                model=generation.model,
                prompt=form.cleaned_data["prompt"],
                size=generation.size,
                seconds=form.cleaned_data["seconds"] or generation.total_seconds,
                operation=operation,
                parent=generation,
            )
        except Generation.DoesNotExist as missing:
            raise Http404("No such video.") from missing
        except ValidationError as error:
            errors = {
                (field if field in ("prompt", "seconds") else NON_FIELD_ERRORS): list(found)
                for field, found in error.message_dict.items()
            }
        else:
            verb = Operation(operation).label.lower()
            messages.success(request, f"Queued: the {verb} is the newest version of this video.")
            return redirect("generations:detail", project_id=project_id, generation_id=made.pk)
    else:
        errors = {
            field if field in form.fields else NON_FIELD_ERRORS: [str(m) for m in found]
            for field, found in form.errors.items()
        }
    # Post/redirect/get, as the generate form: the page shows the input and errors once.
    request.session[_refused_change_key(generation.pk)] = {
        "operation": request.POST.get("operation", ""),
        "data": {name: request.POST.get(name, "") for name in ChangeForm.FIELDS},
        # "general": templates cannot read NON_FIELD_ERRORS' "__all__".
        "errors": {
            ("general" if field == NON_FIELD_ERRORS else field): found
            for field, found in errors.items()
        },
    }
    operation = request.POST.get("operation", "")
    anchor = f"change-{operation}" if operation in Operation.values else "change-title"
    url = reverse("generations:detail", args=[project_id, generation.pk])
    return redirect(f"{url}#{anchor}")


@login_required
@require_POST
def generation_pick_view(request: HttpRequest, project_id: int, generation_id: str) -> HttpResponse:
    """Mark this take as the pick of its set."""
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    generation = generation_get_or_404(project=membership.project, generation_id=generation_id)
    if not membership.can_generate:
        raise PermissionDenied("Viewers can watch and download, but not pick a take.")
    try:
        generation_pick(generation=generation, user=request.user)  # type: ignore[arg-type]
    except Generation.DoesNotExist as missing:
        raise Http404("No such video.") from missing
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Picked: the gallery shows this take for its set.")
    url = reverse("generations:detail", args=[project_id, generation.pk])
    return redirect(f"{url}#takes-title")


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
    if field and generation.files_removed_at is not None:
        # Gone for good, and said so: a bookmarked or shared-around file link explains itself
        # instead of looking like a broken address.
        return render(
            request,
            "generations/files_removed.html",
            {"project": membership.project, "generation": generation},
            status=410,
        )
    stored = getattr(generation, field) if field else None
    if not stored:
        raise Http404("No such file.")
    download = request.GET.get("download") == "1"
    extension = stored.name.rsplit(".", 1)[-1]
    filename = download_filename(generation=generation, variant=variant, extension=extension)
    response = file_response(request, stored, filename=filename, as_attachment=download)
    response.setdefault("Cache-Control", "private, max-age=3600")
    return response


def _refused_character_key(generation_id: object) -> str:
    return f"generations:refused-character:{generation_id}"


def refused_character_pop(request: HttpRequest, *, generation_id: object) -> dict[str, Any]:
    """The name and errors of a refused "make a character" form, once, for the page it
    redirected to (empty when there was none)."""
    stored = request.session.pop(_refused_character_key(generation_id), None)
    return stored if isinstance(stored, dict) else {}


@login_required
@require_POST
def character_create_view(
    request: HttpRequest, project_id: int, generation_id: str
) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    generation = generation_get_or_404(project=membership.project, generation_id=generation_id)
    if not membership.can_generate:
        raise PermissionDenied("Viewers can watch and download, but not make characters.")
    name = request.POST.get("name", "")
    detail = reverse("generations:detail", args=[membership.project.pk, generation.pk])
    try:
        character = character_create(
            project=membership.project,
            user=request.user,  # type: ignore[arg-type]
            name=name,
            source_generation=generation,
        )
    except ValidationError as error:
        # Post/redirect/get: the page shows the name as typed and why it was refused.
        request.session[_refused_character_key(generation.pk)] = {
            "name": name[:500],
            "errors": error.messages,
        }
        return redirect(f"{detail}#character-title")
    messages.success(
        request,
        f"{character.name} is being made. Once it is ready, mention {character.name} in a "
        "prompt to put them in the video.",
    )
    return redirect(f"{detail}#character-title")


@login_required
@require_safe
def generation_input_file(
    request: HttpRequest, project_id: int, generation_id: str, input_id: int
) -> HttpResponseBase:
    """An image a video was made from, to the project's members only."""
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    generation = generation_get_or_404(project=membership.project, generation_id=generation_id)
    item = generation.inputs.filter(pk=input_id).first()
    if item is None or not item.image:
        raise Http404("No such image.")
    extension = str(item.image.name).rsplit(".", 1)[-1]
    filename = download_filename(
        generation=generation, variant=f"{item.role}-{item.position}", extension=extension
    )
    response = file_response(request, item.image, filename=filename, as_attachment=False)
    response.setdefault("Cache-Control", "private, max-age=3600")
    return response


@login_required
@require_safe
def generation_draft_file(request: HttpRequest, project_id: int, token: str) -> HttpResponseBase:
    """An image kept from the member's refused form, to that member's session only."""
    membership_get_or_404(user=request.user, project_id=project_id)
    stash = DraftStash(request.session, user_id=request.user.pk)  # type: ignore[arg-type]
    name = stash.path_of(token)
    if name is None or not default_storage.exists(name):
        raise Http404("No such image.")
    stored = default_storage.open(name, "rb")
    response = file_response(
        request, stored, filename=name.rsplit("/", 1)[-1], as_attachment=False
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def retention_policy_view(request: HttpRequest, project_id: int) -> HttpResponse:
    """A project owner sets how long the project's files are kept (or follows the default)."""
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    if not membership.can_manage:
        raise PermissionDenied("Only a project owner can change how long files are kept.")
    form = RetentionPolicyForm(request.POST)
    back = f"{reverse('projects:settings', args=[project_id])}#retention-title"
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(back)
    data = form.cleaned_data
    try:
        retention_policy_set(
            project=membership.project,
            actor=request.user,  # type: ignore[arg-type]
            use_default=data["scope"] == "default",
            remove_after_days=data["remove_after_days"],
            keep_only_picked=data["keep_only_picked"],
            keep_approved_and_favourites=data["keep_approved_and_favourites"],
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Retention settings saved.")
    return redirect(back)
