"""Submission: a member's request checked, reserved against the budgets and queued; canceling
while it is still queued.

The web form and the ``generation_submit`` command come through here.
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from workspace.billing.services import reservation_create, reservation_release
from workspace.generations.lanes import channel_kick_on_commit
from workspace.generations.models import PROMPT_MAX_LENGTH, Generation, Status
from workspace.projects.models import Membership, Project
from workspace.providers.catalog import ModelSpec
from workspace.providers.models import Channel
from workspace.providers.services import channel_available, channel_get_default, route_alternative

logger = logging.getLogger(__name__)


def generation_submit(
    *,
    project: Project,
    user: User,
    model: str,
    prompt: str,
    size: str,
    seconds: int,
    channel: Channel | None = None,
) -> Generation:
    """Accept a generation request from a member and queue it for the workers."""
    membership = Membership.objects.filter(project=project, user_id=user.pk).first()
    if membership is None or not membership.can_generate:
        raise PermissionDenied("Only owners and editors of this project can generate videos.")
    if Project.objects.filter(pk=project.pk, archived_at__isnull=False).exists():
        raise ValidationError(
            {
                NON_FIELD_ERRORS: (
                    "This project is archived, so it takes no new videos: "
                    "an owner can unarchive it."
                )
            }
        )
    channel = channel or channel_get_default()
    if not channel_available(channel=channel):
        # Halted or failing: equivalent models on another channel take new work, if configured.
        alternative = route_alternative(channel=channel, model=model, size=size, seconds=seconds)
        if alternative is not None:
            channel, model = alternative
    spec = generation_validate(
        channel=channel, model=model, prompt=prompt, size=size, seconds=seconds
    )
    with transaction.atomic():
        generation = Generation.objects.create(
            project=project,
            created_by=user,
            channel=channel,
            model=spec.id,
            prompt=prompt.strip(),
            size=size,
            seconds=seconds,
            estimated_cost_cents=spec.cents_per_second.get(size, 0) * seconds,
        )
        # Checks every budget and reserves the cost atomically; refusing rolls back the row.
        reservation_create(generation=generation)
        channel_kick_on_commit(channel_id=channel.pk)
    logger.info("generation %s queued by user %s in project %s", generation.pk, user.pk, project.pk)
    return generation


def generation_validate(
    *, channel: Channel, model: str, prompt: str, size: str, seconds: int
) -> ModelSpec:
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
    if spec is None:
        names = ", ".join(m.id for m in channel.catalog.models)
        errors["model"] = f"{channel.name} has no model {model!r}; choose one of {names}."
    else:
        errors.update(spec.validate(size=size, seconds=seconds))
    if errors:
        raise ValidationError(errors)
    assert spec is not None
    return spec


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
