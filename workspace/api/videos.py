"""The OpenAI Videos contract over Reelhouse's generations.

A ``Video`` is a ``Generation`` seen through a token: its id is the generation's, its project one
the token may see, and creating one goes through ``generation_submit`` like the web form, so the
budgets, the fair queue and the channel limits apply unchanged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from workspace.api.errors import ApiError, not_found
from workspace.api.models import ApiToken
from workspace.api.webhooks import video_link_token
from workspace.billing.selectors import BudgetStatus, budget_statuses
from workspace.billing.services import price_current
from workspace.core.converters import MAX_ID
from workspace.generations.images import CheckedImage, ImageRefused, PreparedImage, image_fit
from workspace.generations.models import (
    TERMINAL_STATUSES,
    Generation,
    InputRole,
    Operation,
    Status,
)
from workspace.generations.submission import QueueFull, generation_submit
from workspace.projects.models import Membership, Project
from workspace.providers.catalog import ModelSpec
from workspace.providers.models import Channel
from workspace.providers.services import channel_get_default

logger = logging.getLogger(__name__)

PROJECT_HEADER = "OpenAI-Project"
VARIANTS = ("video", "thumbnail", "spritesheet")
LIST_DEFAULT_LIMIT = 20
LIST_MAX_LIMIT = 100
# Reelhouse's states, as the four the contract knows.
_STATUS = {
    Status.QUEUED: "queued",
    Status.SUBMITTING: "queued",
    Status.HELD: "queued",
    Status.IN_PROGRESS: "in_progress",
    Status.DOWNLOADING: "in_progress",
    Status.COMPLETED: "completed",
    Status.FAILED: "failed",
    Status.CANCELED: "failed",
}


def _unix(moment: Any) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def video_payload(generation: Generation) -> dict[str, Any]:
    """A spec-valid ``Video`` object for ``generation``."""
    error = None
    if generation.status == Status.FAILED:
        error = {
            "code": generation.error_class or "failed",
            "message": generation.error_message or "The video could not be generated.",
        }
    elif generation.status == Status.CANCELED:
        error = {"code": "canceled", "message": "Canceled before it reached the provider."}
    return {
        "id": str(generation.pk),
        "object": "video",
        "model": generation.model,
        "status": _STATUS[generation.status],  # type: ignore[index]
        "progress": 100 if generation.status == Status.COMPLETED else generation.progress,
        "created_at": _unix(generation.created_at),
        "completed_at": _unix(generation.completed_at) if generation.is_terminal else None,
        # Reelhouse keeps its copies; they do not expire.
        "expires_at": None,
        "prompt": generation.prompt,
        "size": generation.size,
        # An extension's clip is the whole stitched video, not only the seconds it added.
        "seconds": str(generation.total_seconds),
        "remixed_from_video_id": str(generation.parent_id)
        if generation.operation == Operation.REMIX and generation.parent_id
        else None,
        "error": error,
    }


# --- Which project, which videos -----------------------------------------------------------------


def request_project(*, token: ApiToken, header: str | None) -> Project | None:
    """The project a request is about: the token's own, or the header's when the token spans
    all of its owner's projects; None for "all of them"."""
    if header is None or not header.strip():
        return token.project
    value = header.strip()
    try:
        project_id = int(value)
    except ValueError:
        project_id = None
    if token.project is not None:
        if project_id != token.project_id:
            raise ApiError(
                400,
                f"This API key is limited to project {token.project_id} "
                f"({token.project.name}); the {PROJECT_HEADER} header names another.",
                PROJECT_HEADER,
                "project_mismatch",
            )
        return token.project
    membership = (
        Membership.objects.select_related("project")
        .filter(
            user_id=token.owner_id, project_id=project_id or 0, project__deleted_at__isnull=True
        )
        .first()
        if project_id is not None and 0 < project_id <= MAX_ID
        else None
    )
    if membership is None:
        raise ApiError(
            400,
            f"The {PROJECT_HEADER} header must be the number of one of your projects "
            "(shown on your API tokens page).",
            PROJECT_HEADER,
            "project_not_found",
        )
    return membership.project


def videos_visible(*, token: ApiToken, project: Project | None) -> QuerySet[Generation]:
    """Every generation the token may see: in projects its owner belongs to, within its scope."""
    # A deleted project (in its grace period) is hidden here as in the app.
    generations = Generation.objects.filter(
        project__memberships__user_id=token.owner_id, project__deleted_at__isnull=True
    )
    if project is not None:
        generations = generations.filter(project=project)
    return generations


def video_get(*, token: ApiToken, project: Project | None, video_id: str) -> Generation:
    try:
        pk = UUID(video_id)
    except ValueError:
        raise not_found(video_id) from None
    generation = videos_visible(token=token, project=project).filter(pk=pk).first()
    if generation is None:
        raise not_found(video_id)
    return generation


@dataclass(frozen=True)
class Page:
    videos: list[Generation]
    has_more: bool


def videos_list(
    *, token: ApiToken, project: Project | None, after: Generation | None, limit: int, order: str
) -> Page:
    """One page of the visible videos, after ``after`` (a row the token may see) in ``order``."""
    generations = videos_visible(token=token, project=project)
    newest_first = order == "desc"
    if after is not None:
        cursor = after
        same_time = Q(created_at=cursor.created_at)
        if newest_first:
            generations = generations.filter(
                Q(created_at__lt=cursor.created_at) | (same_time & Q(pk__lt=cursor.pk))
            )
        else:
            generations = generations.filter(
                Q(created_at__gt=cursor.created_at) | (same_time & Q(pk__gt=cursor.pk))
            )
    ordering = ["-created_at", "-pk"] if newest_first else ["created_at", "pk"]
    rows = list(generations.order_by(*ordering)[: limit + 1])
    return Page(videos=rows[:limit], has_more=len(rows) > limit)


# --- Allowances: what the caller has left -------------------------------------------------------


@dataclass(frozen=True)
class Allowance:
    queue_limit: int
    queue_remaining: int
    cents: BudgetStatus | None  # the budget with the fewest cents left
    seconds: BudgetStatus | None  # the budget with the fewest seconds of video left

    def headers(self) -> dict[str, str]:
        headers = {
            # "-requests" is the key's request rate (api/ratelimit.py), as at OpenAI.
            "x-ratelimit-limit-queued": str(self.queue_limit),
            "x-ratelimit-remaining-queued": str(self.queue_remaining),
        }
        for unit, status, limit, remaining in (
            ("cents", self.cents, "limit_cents", "remaining_cents"),
            ("video-seconds", self.seconds, "limit_seconds", "remaining_seconds"),
        ):
            if status is None:
                continue
            headers[f"x-ratelimit-limit-{unit}"] = str(getattr(status, limit))
            headers[f"x-ratelimit-remaining-{unit}"] = str(getattr(status, remaining))
            reset = _seconds_until_reset(status)
            if reset is not None:
                headers[f"x-ratelimit-reset-{unit}"] = f"{reset}s"
        return headers


def _seconds_until_reset(status: BudgetStatus) -> int | None:
    if status.bounds.end is None:
        return None
    return max(1, math.ceil((status.bounds.end - timezone.now()).total_seconds()))


def _queued(*, token: ApiToken, channel: Channel) -> int:
    return Generation.objects.filter(
        created_by_id=token.owner_id, channel=channel, status=Status.QUEUED
    ).count()


def allowance_for(*, token: ApiToken, project: Project | None) -> Allowance:
    channel = channel_get_default()
    statuses = budget_statuses(user=token.owner, project=project)
    by_cents = [s for s in statuses if s.remaining_cents is not None]
    by_seconds = [s for s in statuses if s.remaining_seconds is not None]
    return Allowance(
        queue_limit=channel.member_max_queued,
        queue_remaining=max(0, channel.member_max_queued - _queued(token=token, channel=channel)),
        cents=min(by_cents, key=lambda s: s.remaining_cents or 0, default=None),
        seconds=min(by_seconds, key=lambda s: s.remaining_seconds or 0, default=None),
    )


# --- Creating and deleting ----------------------------------------------------------------------


def _project_for_create(*, token: ApiToken, project: Project | None) -> Project:
    if project is not None:
        return project
    writable = list(
        Membership.objects.select_related("project").filter(
            user_id=token.owner_id, role__in=("owner", "editor"), project__deleted_at__isnull=True
        )[:2]
    )
    if len(writable) == 1:
        return writable[0].project
    raise ApiError(
        400,
        f"This API key spans all your projects: name the one to generate in with the "
        f"{PROJECT_HEADER} header (the project's number, shown on your API tokens page; the "
        f"openai SDK sends it as OpenAI(project=...)).",
        PROJECT_HEADER,
        "project_required",
    )


def _budget_retry_after(
    *, token: ApiToken, project: Project, channel: Channel, model: str, size: str, seconds: int
) -> str | None:
    """Seconds until every budget that refused this video has reset; None if one never does."""
    try:
        cost = price_current(channel=channel, model=model, size=size).cents_for(seconds)
    except Exception:  # no price: the refusal's own message says why
        return None
    refusing = [
        s
        for s in budget_statuses(user=token.owner, project=project)
        if (s.remaining_cents is not None and s.remaining_cents < cost)
        or (s.remaining_seconds is not None and s.remaining_seconds < seconds)
    ]
    waits = [_seconds_until_reset(s) for s in refusing]
    if not waits or any(w is None for w in waits):
        return None
    return str(max(w for w in waits if w is not None))


# Where the service's field names point in the API's parameters.
_PARAMS = {"images": "input_reference", "parent": "video", "operation": "video"}


def video_create(
    *,
    token: ApiToken,
    project: Project | None,
    model: str | None,
    prompt: str,
    size: str | None,
    seconds: int | None,
    reference: CheckedImage | None = None,
) -> Generation:
    """Queue a video for the token's owner, exactly as the web form would; ``reference`` is
    its first frame, cropped to the video's size like the form's default."""
    if not token.can_write:
        raise ApiError(403, "This API key is read-only; creating videos needs a read-write key.")
    target = _project_for_create(token=token, project=project)
    channel = channel_get_default()
    catalog = channel.catalog
    spec = catalog.get(model) if model is not None else (catalog.get("sora-2") or catalog.default)
    model = model if model is not None else spec.id if spec else catalog.default.id
    if spec is not None:
        size = size if size is not None else spec.default_size
        seconds = seconds if seconds is not None else spec.default_seconds
    images: list[PreparedImage] = []
    # Fitting needs a size the model makes; without one the catalog's own refusal of the size
    # (or model) is the answer, so the image is not looked at.
    if reference is not None and spec is not None and size in spec.sizes:
        try:
            images.append(image_fit(reference, role=InputRole.FIRST_FRAME, size=size))
        except ImageRefused as refusal:
            raise ApiError(400, str(refusal), "input_reference", "invalid_image") from None
    return _submit(
        token=token,
        target=target,
        channel=channel,
        spec=spec,
        model=model,
        prompt=prompt,
        size=size or "",
        seconds=seconds or 0,
        images=images,
    )


def video_change(
    *,
    token: ApiToken,
    project: Project | None,
    operation: str,
    video_id: str,
    prompt: str,
    seconds: int | None = None,
    param: str = "video",
) -> Generation:
    """An edit, remix or extension of a video the token may see, at its channel and model;
    ``seconds`` is what an extension adds (an edit or remix keeps the source's length)."""
    try:
        source = video_get(token=token, project=project, video_id=video_id)
    except ApiError as missing:
        missing.param = param
        raise
    if not token.can_write:
        raise ApiError(403, "This API key is read-only; changing videos needs a read-write key.")
    spec = source.channel.catalog.get(source.model)
    return _submit(
        token=token,
        target=source.project,
        channel=source.channel,
        spec=spec,
        model=source.model,
        prompt=prompt,
        size=source.size,
        seconds=seconds if seconds is not None else source.seconds,
        operation=operation,
        parent=source,
        params={**_PARAMS, "parent": param, "operation": param},
    )


def _submit(
    *,
    token: ApiToken,
    target: Project,
    channel: Channel,
    spec: ModelSpec | None,
    model: str,
    prompt: str,
    size: str,
    seconds: int,
    images: list[PreparedImage] | None = None,
    operation: str = Operation.GENERATE,
    parent: Generation | None = None,
    params: dict[str, str] | None = None,
) -> Generation:
    try:
        # One transaction: the video is never queued (and so never ends) without the record of
        # the token that made it, which its webhook events go by.
        with transaction.atomic():
            generation = generation_submit(
                project=target,
                user=token.owner,
                channel=channel,
                model=model,
                prompt=prompt,
                size=size,
                seconds=seconds,
                operation=operation,
                parent=parent,
                images=images or (),
            )
            video_link_token(generation=generation, token=token)
        return generation
    except PermissionDenied as refusal:
        raise ApiError(403, str(refusal)) from None
    except Generation.DoesNotExist:
        raise not_found(str(parent.pk) if parent else "") from None
    except QueueFull as refusal:
        # Checked by generation_submit under the member's lock, so racing creates cannot pass it.
        raise ApiError(
            429,
            " ".join(refusal.messages),
            code="queue_full",
            headers={"Retry-After": str(spec.typical_render_seconds if spec else 60)},
        ) from None
    except ValidationError as refusal:
        errors = refusal.message_dict
        budget = errors.pop(NON_FIELD_ERRORS, None)
        if budget:
            retry = _budget_retry_after(
                token=token,
                project=target,
                channel=channel,
                model=model,
                size=size,
                seconds=seconds,
            )
            raise ApiError(
                429,
                " ".join(budget),
                code="budget_exceeded",
                headers={"Retry-After": retry} if retry else {},
            ) from None
        field, messages = next(iter(errors.items()))
        param = (params or _PARAMS).get(field, field)
        raise ApiError(400, " ".join(messages), param, "invalid_value") from None


def video_delete(*, token: ApiToken, project: Project | None, video_id: str) -> str:
    """Delete a finished video and its stored files; its ledger entries stay (no foreign key)."""
    generation = video_get(token=token, project=project, video_id=video_id)
    if not token.can_write:
        raise ApiError(403, "This API key is read-only; deleting videos needs a read-write key.")
    membership = Membership.objects.filter(
        project_id=generation.project_id, user_id=token.owner_id
    ).first()
    allowed = membership is not None and (
        membership.can_manage
        or (membership.can_generate and generation.created_by_id == token.owner_id)
    )
    if not allowed:
        raise ApiError(403, "Only its author or a project owner can delete a video.")
    if generation.status not in TERMINAL_STATUSES:
        raise ApiError(
            400,
            f"Video '{video_id}' is still {_STATUS[generation.status]}; "  # type: ignore[index]
            "only completed or failed videos can be deleted.",
            "video_id",
            "video_not_finished",
        )
    names = [
        str(f.name) for f in (generation.video, generation.thumbnail, generation.spritesheet) if f
    ]
    storage = generation.video.storage
    with transaction.atomic():
        # Conditional, like every state change: a second delete racing this one finds nothing.
        deleted, _ = Generation.objects.filter(
            pk=generation.pk, status__in=TERMINAL_STATUSES
        ).delete()
        if not deleted:
            raise not_found(video_id)
        transaction.on_commit(lambda: _delete_files(storage, names))
    logger.info("video %s deleted through the API by user %s", generation.pk, token.owner_id)
    return str(generation.pk)


def _delete_files(storage: Any, names: list[str]) -> None:
    for name in names:
        try:
            storage.delete(name)
        except OSError:  # already gone, or the disk refuses: the row is what matters
            logger.warning("could not delete stored file %s", name, exc_info=True)
