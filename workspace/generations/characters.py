"""Characters: a named person or creature the provider makes from a finished video of the
project (the OpenAI protocol's ``/videos/characters``), reused by mentioning its name verbatim
in a prompt.

``character_create`` checks the request and inserts the row as ``pending``; after commit an RQ
job (``character_make``) sends the video's stored file through the channel's limiter and
adapter and marks the row ``ready`` or ``failed``, each by a conditional update, so a repeated
or duplicated job changes nothing. Characters cost nothing at the provider as far as any source
says, so nothing is reserved (docs/provider-assumptions.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from workspace.core.rq import enqueue_on_commit, get_redis
from workspace.generations import jobs
from workspace.generations.models import (
    CHARACTER_NAME_MAX_LENGTH,
    ERROR_MESSAGE_MAX_LENGTH,
    Character,
    CharacterStatus,
    Generation,
    Status,
)
from workspace.generations.outcomes import backoff, scaled_delay
from workspace.projects.models import Membership, Project
from workspace.providers.adapters.base import CharacterMaker
from workspace.providers.errors import ProviderError
from workspace.providers.limiter import Throttled
from workspace.providers.models import Channel
from workspace.providers.services import adapter_for_channel

logger = logging.getLogger(__name__)

# Transient provider trouble is retried this many times before the character is failed.
MAX_ATTEMPTS = 6
# One run at a time per character: a duplicated job waits its turn instead of making a second
# character at the provider. Longer than any upload may take (the HTTP layer's timeouts).
_LOCK_SECONDS = 300


def characters_supported(*, channel: Channel, model: str) -> bool:
    """Whether videos of ``model`` on ``channel`` can become characters (and take them)."""
    spec = channel.catalog.get(model)
    return spec is not None and spec.max_characters > 0


def channel_takes_characters(*, channel: Channel) -> bool:
    return any(spec.max_characters > 0 for spec in channel.catalog.models)


def characters_for_project(*, project: Project) -> QuerySet[Character]:
    return Character.objects.filter(project=project).select_related(
        "channel", "created_by", "source_generation"
    )


def characters_mentioned(*, project: Project, channel: Channel, prompt: str) -> list[Character]:
    """The project's ready characters on ``channel`` whose name the prompt mentions verbatim.

    The guide asks for the name verbatim, so matching is case-sensitive, on whole words (a
    character "Al" is not in "Always"), in the order the prompt first mentions them. The caller
    passes them to ``generation_submit(characters=...)``, which refuses more than the model takes.
    """
    found: list[tuple[int, Character]] = []
    ready = Character.objects.filter(project=project, channel=channel, status=CharacterStatus.READY)
    for character in ready:
        match = re.search(rf"(?<!\w){re.escape(character.name)}(?!\w)", prompt)
        if match:
            found.append((match.start(), character))
    found.sort(key=lambda item: (item[0], -len(item[1].name)))
    return [character for _, character in found]


def character_create(
    *, project: Project, user: User, name: str, source_generation: Generation
) -> Character:
    """Ask the provider to make a character named ``name`` from a finished video.

    Refused, with a message per field, when the member may not generate, the video is not a
    finished one of this project, its model cannot make characters, or the name is empty, too
    long or already taken in the project on that channel.
    """
    membership = Membership.objects.filter(project=project, user_id=user.pk).first()
    if membership is None or not membership.can_generate:
        raise PermissionDenied("Only owners and editors of this project can make characters.")
    if source_generation.project_id != project.pk:
        raise Generation.DoesNotExist("No such video.")
    if Project.objects.filter(pk=project.pk, archived_at__isnull=False).exists():
        raise ValidationError(
            {NON_FIELD_ERRORS: "This project is archived: an owner can unarchive it."}
        )
    name = name.strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Give the character a name: you will mention it in prompts."
    elif len(name) > CHARACTER_NAME_MAX_LENGTH:
        errors["name"] = (
            f"A character's name has at most {CHARACTER_NAME_MAX_LENGTH} characters; this one "
            f"has {len(name)}."
        )
    elif "\x00" in name or not name.isprintable():
        errors["name"] = "A character's name is plain text on one line."
    if source_generation.status != Status.COMPLETED or not source_generation.video:
        errors[NON_FIELD_ERRORS] = "Only a finished video with its file can become a character."
    elif not characters_supported(
        channel=source_generation.channel, model=source_generation.model
    ):
        errors[NON_FIELD_ERRORS] = (
            f"{source_generation.model} on {source_generation.channel.name} cannot make "
            "characters."
        )
    if "name" not in errors and Character.objects.filter(
        project=project, channel=source_generation.channel, name=name
    ).exists():
        errors["name"] = f"This project already has a character named {name!r}."
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            character = Character.objects.create(
                project=project,
                channel=source_generation.channel,
                created_by=user,
                name=name,
                source_generation=source_generation,
            )
            enqueue_on_commit(jobs.character_make_job, character.pk)
    except IntegrityError:
        # Two members chose the same name at the same moment.
        raise ValidationError(
            {"name": f"This project already has a character named {name!r}."}
        ) from None
    logger.info("character %s (%r) requested by user %s", character.pk, name, user.pk)
    return character


def character_make(*, character_id: int, attempt: int = 0) -> None:
    """Send a pending character's video to the provider; ready or failed, once."""
    lock = get_redis().lock(
        f"reelhouse:character-make:{character_id}", timeout=_LOCK_SECONDS, blocking=False
    )
    if not lock.acquire():
        return  # another run holds it; it ends the row either way
    try:
        _make(character_id=character_id, attempt=attempt)
    finally:
        lock.release()


def _make(*, character_id: int, attempt: int) -> None:
    character = (
        Character.objects.filter(pk=character_id, status=CharacterStatus.PENDING)
        .select_related("channel", "source_generation")
        .first()
    )
    if character is None:
        return  # already ready or failed (a duplicated or repeated job)
    source = character.source_generation
    if source is None or not source.video:
        _fail(character, "The video it was to be made from is gone, so nothing was sent.")
        return
    try:
        with source.video.open("rb") as handle:
            clip = handle.read()
    except (OSError, ValueError) as error:
        _fail(character, f"Its video could not be read ({error}); nothing was sent.")
        return
    adapter = adapter_for_channel(channel=character.channel)
    try:
        if not isinstance(adapter, CharacterMaker):
            _fail(character, f"{character.channel.name} cannot make characters.")
            return
        made = adapter.create_character(
            name=character.name,
            video=clip,
            filename=(source.video.name or "character.mp4").rsplit("/", 1)[-1],
        )
    except Throttled as throttled:
        # Nothing was sent: the channel is pacing or paused. Not an attempt.
        enqueue_on_commit(
            jobs.character_make_job, character_id, attempt, delay=scaled_delay(throttled.wait)
        )
        return
    except ProviderError as error:
        if error.transient and attempt + 1 < MAX_ATTEMPTS:
            # A character is not billed (as far as any source says), so sending again after an
            # unanswered create risks at most an unused character at the provider.
            wait = error.retry_after if error.retry_after is not None else backoff(attempt + 1)
            logger.warning("character %s: %r; trying again in %.1fs", character_id, error, wait)
            enqueue_on_commit(
                jobs.character_make_job, character_id, attempt + 1, delay=scaled_delay(wait)
            )
            return
        _fail(character, f"{error.member_message} The provider said: {error.message}")
        return
    finally:
        adapter.close()
    updated = Character.objects.filter(pk=character_id, status=CharacterStatus.PENDING).update(
        status=CharacterStatus.READY, provider_character_id=made.id, error_message=""
    )
    if updated:
        logger.info("character %s ready as %s", character_id, made.id)


def _fail(character: Character, message: str) -> None:
    Character.objects.filter(pk=character.pk, status=CharacterStatus.PENDING).update(
        status=CharacterStatus.FAILED, error_message=message[:ERROR_MESSAGE_MAX_LENGTH]
    )
    logger.warning("character %s failed: %s", character.pk, message)


def characters_named(characters: Sequence[Character]) -> str:
    """"Mira and Ben": for messages that list the characters a prompt picked up."""
    names = [c.name for c in characters]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
