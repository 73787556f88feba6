"""Characters: the service's refusals, the job's failures, and the two pages that show them."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from workspace.generations.characters import (
    MAX_ATTEMPTS,
    character_create,
    characters_mentioned,
)
from workspace.generations.models import Character, CharacterStatus, Generation, Status
from workspace.projects.services import project_create
from workspace.providers.models import Channel
from workspace.simulator.media import media_cache


def video(project, author, channel, **fields) -> Generation:  # type: ignore[no-untyped-def]
    generation = Generation.objects.create(
        project=project,
        created_by=author,
        channel=channel,
        model=fields.pop("model", "sora-2"),
        prompt="A dancer turns",
        size="1280x720",
        seconds=4,
        status=fields.pop("status", Status.COMPLETED),
        completed_at=timezone.now(),
        **fields,
    )
    if generation.status == Status.COMPLETED:
        generation.video.save(
            "video.mp4", ContentFile(media_cache().get("video", "1280x720", 4)), save=True
        )
    return generation


@pytest.mark.django_db
def test_what_cannot_become_a_character_is_refused_with_a_reason(
    project, owner, teammate, viewer, outsider, channel
) -> None:  # type: ignore[no-untyped-def]
    source = video(project, teammate, channel)
    with pytest.raises(PermissionDenied):
        character_create(project=project, user=viewer, name="Mira", source_generation=source)
    elsewhere = project_create(name="Other film", owner=outsider)
    with pytest.raises(Generation.DoesNotExist):
        character_create(
            project=project,
            user=teammate,
            name="Mira",
            source_generation=video(elsewhere, outsider, channel),
        )

    def refused(name: str, generation: Generation = source) -> dict[str, list[str]]:
        with pytest.raises(ValidationError) as caught:
            character_create(
                project=project, user=teammate, name=name, source_generation=generation
            )
        return caught.value.message_dict

    assert "Give the character a name" in refused("   ")["name"][0]
    assert "at most 80" in refused("M" * 81)["name"][0]
    assert "one line" in refused("Mi\nra")["name"][0]
    running = video(project, teammate, channel, status=Status.IN_PROGRESS)
    assert "finished video" in refused("Mira", running)["__all__"][0]
    runway = Channel.objects.create(slug="runway", name="Runway", protocol="runway")
    assert (
        "cannot make characters"
        in refused("Mira", video(project, teammate, runway, model="gen4.5"))["__all__"][0]
    )

    made = character_create(project=project, user=teammate, name=" Mira ", source_generation=source)
    assert (made.name, made.status, made.channel) == ("Mira", CharacterStatus.PENDING, channel)
    assert "already has a character named 'Mira'" in refused("Mira")["name"][0]


@pytest.mark.django_db(transaction=True)
def test_the_provider_refusing_or_failing_ends_the_character_as_failed(
    project, teammate, channel, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    source = video(project, teammate, channel)
    blocked = character_create(
        project=project, user=teammate, name="[moderation] Mira", source_generation=source
    )
    run_workers(lambda: Character.objects.get(pk=blocked.pk).status != CharacterStatus.PENDING)
    blocked.refresh_from_db()
    assert blocked.status == CharacterStatus.FAILED and not blocked.provider_character_id
    assert "blocked by our moderation system" in blocked.error_message

    # Provider trouble is retried, then given up with the provider's words.
    simulator.update_config(fail_5xx_rate=1.0)
    troubled = character_create(
        project=project, user=teammate, name="Ben", source_generation=source
    )
    run_workers(lambda: Character.objects.get(pk=troubled.pk).status != CharacterStatus.PENDING)
    troubled.refresh_from_db()
    assert troubled.status == CharacterStatus.FAILED
    assert simulator.counters()["errors_5xx_sent"] == MAX_ATTEMPTS
    # Neither is offered to prompts.
    assert characters_mentioned(project=project, channel=channel, prompt="Ben and Mira") == []


@pytest.mark.django_db
def test_names_are_matched_verbatim_on_whole_words_in_order_of_mention(
    project, teammate, channel
) -> None:  # type: ignore[no-untyped-def]
    source = video(project, teammate, channel)
    made = {}
    for name in ("Al", "Dr. Vega", "Mira"):
        made[name] = Character.objects.create(
            project=project,
            channel=channel,
            created_by=teammate,
            name=name,
            source_generation=source,
            status=CharacterStatus.READY,
            provider_character_id=f"char_{len(made)}",
        )
    Character.objects.create(
        project=project, channel=channel, created_by=teammate, name="Ben"
    )  # pending

    def mentioned(prompt: str) -> list[str]:
        return [
            c.name for c in characters_mentioned(project=project, channel=channel, prompt=prompt)
        ]

    assert mentioned("Mira meets Dr. Vega; Al waves") == ["Mira", "Dr. Vega", "Al"]
    assert mentioned("Always mira, Ben, Alan") == []


@pytest.mark.django_db
def test_the_pages_offer_the_form_and_list_characters_and_keep_refused_input(
    project, teammate, viewer, channel, signed_in
) -> None:  # type: ignore[no-untyped-def]
    source = video(project, teammate, channel)
    detail = reverse("generations:detail", args=[project.pk, source.pk])
    make = reverse("generations:character_create", args=[project.pk, source.pk])

    page = signed_in(viewer).get(detail)
    assert page.status_code == 200 and b"Make a character" not in page.content
    client = signed_in(teammate)
    assert b"Make a character from this video" in client.get(detail).content

    refused = client.post(make, {"name": "M" * 81})
    assert refused.status_code == 302 and refused["Location"].endswith("#character-title")
    again = client.get(detail).content.decode()
    assert "at most 80 characters" in again and f'value="{"M" * 81}"' in again
    assert "at most 80 characters" not in client.get(detail).content.decode()  # shown once

    assert client.post(make, {"name": "Mira"}).status_code == 302
    assert Character.objects.get().name == "Mira"
    panel = client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert "Characters" in panel and "Mira" in panel and "Being made" in panel
