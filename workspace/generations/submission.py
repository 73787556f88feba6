"""Submission: a member's request checked, reserved against the budgets and queued; canceling
while it is still queued.

The web form and the ``generation_submit`` command come through here.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone

from workspace.billing.services import reservation_create, reservation_release
from workspace.generations.images import PreparedImage
from workspace.generations.lanes import channel_kick_on_commit
from workspace.generations.models import (
    CHANGING_OPERATIONS,
    INPUT_NAME_MAX_LENGTH,
    PROMPT_MAX_LENGTH,
    Character,
    CharacterStatus,
    Generation,
    GenerationInput,
    InputRole,
    Operation,
    Status,
)
from workspace.generations.versions import stack_head_claim
from workspace.projects.models import Membership, Project
from workspace.providers.catalog import ModelSpec
from workspace.providers.models import Channel
from workspace.providers.services import channel_available, channel_get_default, route_alternative

logger = logging.getLogger(__name__)


class QueueFull(ValidationError):
    """The member already has as many videos waiting on the channel as one member may."""


def generation_submit(
    *,
    project: Project,
    user: User,
    model: str,
    prompt: str,
    size: str,
    seconds: int,
    channel: Channel | None = None,
    operation: str = Operation.GENERATE,
    parent: Generation | None = None,
    images: Sequence[PreparedImage] = (),
    options: dict[str, Any] | None = None,
    characters: Sequence[Character] = (),
    takes: int = 1,
) -> Generation:
    """Accept a generation request from a member and queue it for the workers.

    ``takes`` > 1 makes that many generations of one request, reserved together: all of them
    fit the member's budgets, or none is queued. Edits, remixes and extensions change
    ``parent`` (a finished video the member can see) at its provider, so they go to its channel
    and keep its size; an edit or remix also keeps its length. Returns the first take.
    """
    membership = Membership.objects.filter(project=project, user_id=user.pk).first()
    if membership is None or not membership.can_generate:
        raise PermissionDenied("Only owners and editors of this project can generate videos.")
    _check_project_open(project=project, lock=False)
    options = dict(options or {})
    if operation in CHANGING_OPERATIONS:
        source = generation_source_check(parent=parent, user=user, operation=operation)
        # The provider's copy lives at the source's channel: only that channel can change it.
        channel = source.channel
        model, size = source.model, source.size
        if operation != Operation.EXTEND:
            seconds = source.total_seconds
    else:
        source = None
        channel = channel or channel_get_default()
        if not channel_available(channel=channel) and not images and not characters:
            # Halted or failing: equivalent models on another channel take new work, if
            # configured (not with inputs, which were checked against this channel's model).
            alternative = route_alternative(
                channel=channel, model=model, size=size, seconds=seconds
            )
            if alternative is not None:
                channel, model = alternative
    spec = generation_validate(
        channel=channel,
        model=model,
        prompt=prompt,
        size=size,
        seconds=seconds,
        operation=operation,
        source=source,
        images=images,
        options=options,
        characters=characters,
        takes=takes,
    )
    take_set = uuid.uuid4() if takes > 1 else None
    made: list[Generation] = []
    with transaction.atomic():
        # Again under a share lock: an archive or delete that began after the first check waits
        # for this submission to commit, or this one sees it and refuses.
        _check_project_open(project=project, lock=True)
        _check_queue_room(user=user, channel=channel, adding=takes)
        for _ in range(takes):
            generation = Generation(
                project=project,
                created_by=user,
                channel=channel,
                model=spec.id,
                prompt=prompt.strip(),
                size=size,
                seconds=seconds,
                estimated_cost_cents=spec.cents_per_second.get(size, 0) * seconds,
                operation=operation,
                parent=source,
                source_seconds=source.total_seconds
                if operation == Operation.EXTEND and source
                else None,
                take_set=take_set,
                take_count=takes,
                options=options,
            )
            generation.stack_id = (
                source.stack_id
                if source is not None
                else (made[0].stack_id if made else generation.pk)
            )
            generation.save(force_insert=True)
            for image in images:
                _store_input(generation, image)
            if characters:
                generation.characters.set(characters)
            # Checks every budget and reserves the cost atomically; a refusal of any take rolls
            # back every row of the request.
            reservation_create(generation=generation)
            made.append(generation)
        stack_head_claim(made=made)
        channel_kick_on_commit(channel_id=channel.pk)
    first = made[0]
    logger.info(
        "generation %s (%s, %d take(s)) queued by user %s in project %s",
        first.pk,
        operation,
        takes,
        user.pk,
        project.pk,
    )
    return first


def _store_input(generation: Generation, image: PreparedImage) -> GenerationInput:
    item = GenerationInput(
        generation=generation,
        role=image.role,
        position=image.position,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        byte_size=len(image.content),
        fit=image.fit,
        original_name=image.original_name[:INPUT_NAME_MAX_LENGTH],
        source_generation_id=image.source_generation_id,
        source_time_ms=image.source_time_ms,
    )
    item.image.save(
        f"{image.role}-{image.position}.{image.extension}", ContentFile(image.content), save=False
    )
    item.save()
    return item


def _check_project_open(*, project: Project, lock: bool) -> None:
    """Refuse work for a project that was deleted or archived.

    With ``lock``, the row is read ``FOR SHARE``: submissions to one project do not wait for
    one another, but archiving or deleting it (``FOR UPDATE``) waits for them, and they for it.
    SQLite, which locks the whole database for a write, needs no row lock.
    """
    rows: Iterable[Project] = Project.objects.filter(pk=project.pk)
    if lock and connection.vendor == "postgresql":
        table = connection.ops.quote_name(Project._meta.db_table)
        rows = Project.objects.raw(
            f"SELECT id, archived_at, deleted_at FROM {table} WHERE id = %s FOR SHARE",  # noqa: S608 (our own table name, quoted)
            [project.pk],
        )
    current = next(iter(rows), None)
    if current is None or current.deleted_at is not None:
        raise ValidationError(
            {NON_FIELD_ERRORS: "This project was deleted: it takes no new videos."}
        )
    if current.archived_at is not None:
        raise ValidationError(
            {
                NON_FIELD_ERRORS: (
                    "This project is archived, so it takes no new videos: "
                    "an owner can unarchive it."
                )
            }
        )


def _check_queue_room(*, user: User, channel: Channel, adding: int) -> None:
    """Refuse work past the member's queue cap; the member's row lock makes concurrent
    submissions count one another."""
    # NO KEY UPDATE: submissions of one member wait for each other, but rows that merely point
    # at the member (a generation's author, a dispatch turn) do not wait, so a dispatcher that
    # holds its channel and records a member's turn cannot deadlock with this.
    User.objects.select_for_update(no_key=True).filter(pk=user.pk).first()
    queued = Generation.objects.filter(
        channel=channel, created_by_id=user.pk, status=Status.QUEUED
    ).count()
    if queued + adding > channel.member_max_queued:
        raise QueueFull(
            {
                NON_FIELD_ERRORS: (
                    f"You already have {queued} videos waiting on {channel.name}; one member may "
                    f"have {channel.member_max_queued}. Try again when some have started."
                )
            },
            code="queue_full",
        )


def generation_source_check(*, parent: Generation | None, user: User, operation: str) -> Generation:
    """The video an edit, remix or extension changes, if the member may and the provider can.

    Refused (before anything is reserved) when the member cannot see it (as if it did not
    exist), it is not finished, or its provider copy is gone, saying what can still be done.
    """
    if parent is None:
        raise ValidationError({"parent": "Choose the video to change."})
    if not Membership.objects.filter(project_id=parent.project_id, user_id=user.pk).exists():
        raise Generation.DoesNotExist("No such video.")
    verb = Operation(operation).label.lower()
    if parent.status != Status.COMPLETED:
        raise ValidationError(
            {
                "parent": f"Only a finished video can be the source of an {verb}; this one is "
                f"{parent.get_status_display().lower()}."
            }
        )
    expired = (
        parent.provider_expires_at is not None and parent.provider_expires_at <= timezone.now()
    )
    if not parent.provider_job_id or expired:
        when = (
            f" on {parent.provider_expires_at:%Y-%m-%d %H:%M} UTC"
            if parent.provider_expires_at
            else ""
        )
        raise ValidationError(
            {
                "parent": (
                    f"The provider's copy of this video expired{when}, and an {verb} can only be "
                    "made from that copy. You can still download the video, or start a new one "
                    "from one of its frames (image to video)."
                )
            },
            code="source_expired",
        )
    return parent


# The largest seed the providers take (Runway and fal: an unsigned 32-bit integer).
MAX_SEED = 4_294_967_295
NEGATIVE_PROMPT_MAX_LENGTH = 2000


def generation_validate(
    *,
    channel: Channel,
    model: str,
    prompt: str,
    size: str,
    seconds: int,
    operation: str = Operation.GENERATE,
    source: Generation | None = None,
    images: Sequence[PreparedImage] = (),
    options: dict[str, Any] | None = None,
    characters: Sequence[Character] = (),
    takes: int = 1,
) -> ModelSpec:
    """Everything about a request that the channel's catalog decides, with a message per field."""
    errors: dict[str, str] = {}
    prompt = prompt.strip()
    if not prompt:
        errors["prompt"] = "Describe the video you want: the prompt is empty."
    elif len(prompt) > PROMPT_MAX_LENGTH:
        errors["prompt"] = (
            f"The prompt is {len(prompt)} characters long; the limit is {PROMPT_MAX_LENGTH}."
        )
    elif "\x00" in prompt:
        # The form refuses it too; the database would refuse it with an error of its own.
        errors["prompt"] = "The prompt contains a NUL character; remove it."
    spec = channel.catalog.get(model)
    if spec is not None and "prompt" not in errors and (too_long := spec.prompt_too_long(prompt)):
        errors["prompt"] = too_long
    if spec is None:
        names = ", ".join(m.id for m in channel.catalog.models)
        errors["model"] = f"{channel.name} has no model {model!r}; choose one of {names}."
    elif operation == Operation.GENERATE:
        errors.update(spec.validate(size=size, seconds=seconds))
        errors.update(_images_errors(spec, images))
        errors.update(_image_seconds_errors(spec, images, seconds))
    else:
        errors.update(_change_errors(spec, operation, source, seconds))
        if images:
            errors["images"] = f"An {Operation(operation).label.lower()} takes no images."
    if spec is not None:
        errors.update(_options_errors(spec, options or {}))
        if characters and len(characters) > spec.max_characters:
            errors["characters"] = (
                f"{spec.label} takes no characters."
                if not spec.max_characters
                else f"{spec.label} takes at most {spec.max_characters} characters per video."
            )
        elif any(
            c.status != CharacterStatus.READY or c.channel_id != channel.pk for c in characters
        ):
            errors["characters"] = "Only characters that are ready on this channel can be used."
    if not 1 <= takes <= channel.max_takes:
        errors["takes"] = f"Ask for 1 to {channel.max_takes} takes, not {takes}."
    if errors:
        raise ValidationError(errors)
    assert spec is not None
    return spec


def _images_errors(spec: ModelSpec, images: Sequence[PreparedImage]) -> dict[str, str]:
    errors: dict[str, str] = {}
    roles = [image.role for image in images]
    if roles.count(InputRole.FIRST_FRAME) > 1:
        errors["first_frame"] = "Give one first frame."
    elif InputRole.FIRST_FRAME in roles and not spec.supports_input_reference:
        errors["first_frame"] = f"{spec.label} cannot start from an image."
    if InputRole.LAST_FRAME in roles:
        if not spec.supports_last_frame:
            errors["last_frame"] = f"{spec.label} cannot end on a given frame."
        elif InputRole.FIRST_FRAME not in roles:
            errors["last_frame"] = "A last frame needs a first frame too."
        elif roles.count(InputRole.LAST_FRAME) > 1:
            errors["last_frame"] = "Give one last frame."
    references = roles.count(InputRole.REFERENCE)
    if references > spec.max_reference_images:
        errors["references"] = (
            f"{spec.label} takes no reference images."
            if not spec.max_reference_images
            else f"{spec.label} takes at most {spec.max_reference_images} reference images, "
            f"not {references}."
        )
    return errors


def _image_seconds_errors(
    spec: ModelSpec, images: Sequence[PreparedImage], seconds: int
) -> dict[str, str]:
    for role in dict.fromkeys(image.role for image in images):
        allowed = spec.seconds_with_images.get(role)
        if allowed is not None and seconds not in allowed:
            label = InputRole(role).label.lower()
            lengths = ", ".join(str(s) for s in allowed)
            return {
                "seconds": f"{spec.label} makes clips of {lengths} seconds only when given a "
                f"{label}, not {seconds}."
            }
    return {}


def _change_errors(
    spec: ModelSpec, operation: str, source: Generation | None, seconds: int
) -> dict[str, str]:
    if source is None:
        return {"parent": "Choose the video to change."}
    if operation == Operation.EDIT and not spec.can_edit:
        return {"operation": f"{spec.label} videos cannot be edited at the provider."}
    if operation == Operation.REMIX and not spec.can_remix:
        return {"operation": f"{spec.label} videos cannot be remixed at the provider."}
    if operation == Operation.EXTEND:
        if not spec.can_extend:
            return {"operation": f"{spec.label} videos cannot be extended at the provider."}
        allowed = spec.extendable(size=source.size, total_seconds=source.total_seconds)
        done = _extensions_in_chain(source)
        if spec.max_extensions and done >= spec.max_extensions:
            return {
                "seconds": f"This video has been extended {done} times already, the most "
                f"{spec.label} allows; start a new video from its last frame instead."
            }
        if not allowed:
            if spec.extend_sizes and source.size not in spec.extend_sizes:
                return {
                    "seconds": f"{spec.label} extends {', '.join(spec.extend_sizes)} videos only; "
                    f"this one is {source.size}."
                }
            return {
                "seconds": f"This video is {source.total_seconds} seconds long, and "
                f"{spec.label} extends videos to {spec.max_total_seconds} seconds at most."
            }
        if seconds not in allowed:
            return {
                "seconds": f"An extension of this video can add "
                f"{', '.join(str(s) for s in allowed)} seconds, not {seconds} (at most "
                f"{spec.max_total_seconds} seconds in all)."
            }
    return {}


def _extensions_in_chain(source: Generation) -> int:
    """How many extensions made ``source`` (its chain of parents, each an extension)."""
    count, seen = 0, set()
    current: Generation | None = source
    while current is not None and current.operation == Operation.EXTEND and current.pk not in seen:
        seen.add(current.pk)
        count += 1
        current = current.parent
    return count


def _options_errors(spec: ModelSpec, options: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    unknown = set(options) - {"audio", "seed", "negative_prompt"}
    if unknown:
        errors["options"] = f"Unknown options: {', '.join(sorted(unknown))}."
    if "audio" in options:
        if not isinstance(options["audio"], bool):
            errors["audio"] = "Sound is on or off."
        elif not (spec.supports_audio and spec.audio_toggle) and options["audio"] is False:
            errors["audio"] = (
                f"{spec.label} always makes sound."
                if spec.supports_audio
                else f"{spec.label} makes silent videos."
            )
    if "seed" in options and options["seed"] is not None:
        seed = options["seed"]
        if not spec.supports_seed:
            errors["seed"] = f"{spec.label} takes no seed."
        elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            errors["seed"] = f"A seed is a whole number from 0 to {MAX_SEED:,}."
    if options.get("negative_prompt"):
        text = options["negative_prompt"]
        if not spec.supports_negative_prompt:
            errors["negative_prompt"] = f"{spec.label} takes no negative prompt."
        elif not isinstance(text, str) or len(text) > NEGATIVE_PROMPT_MAX_LENGTH or "\x00" in text:
            errors["negative_prompt"] = (
                f"A negative prompt is text of at most {NEGATIVE_PROMPT_MAX_LENGTH} characters."
            )
    return errors


def generation_cancel(*, generation: Generation, user: User) -> None:
    """Cancel a generation that has not reached the provider yet.

    Once a provider accepted a job it cannot be stopped (the OpenAI protocol has no cancel), so
    only queued work can be canceled and nothing paid is ever abandoned half-way.
    """
    membership = Membership.objects.filter(project=generation.project, user_id=user.pk).first()
    allowed = membership is not None and (
        membership.can_manage or (membership.can_generate and generation.created_by_id == user.pk)
    )
    if not allowed:
        raise PermissionDenied("Only its author or a project owner can cancel a generation.")
    if not generation.transition(Status.CANCELED, from_=Status.QUEUED, completed_at=timezone.now()):
        raise ValidationError(
            "It has already been sent to the provider and can no longer be canceled."
        )
    reservation_release(generation=generation, reason="Canceled before it was sent.")
