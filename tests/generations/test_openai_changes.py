"""Edits, remixes, extensions, image-to-video and characters end to end on the OpenAI protocol:
generation_submit, the real workers (dispatch, send, poll, download) and the simulator, with the
ledger's settled spend equal to what the simulator billed."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from tests.billing.conftest import budget, submit
from tests.simulator.helpers import make_png
from workspace.billing.models import LedgerEntry
from workspace.generations.characters import (
    character_create,
    character_make,
    characters_mentioned,
)
from workspace.generations.images import PreparedImage
from workspace.generations.models import Character, CharacterStatus, Generation, Operation, Status
from workspace.simulator.media import media_cache

pytestmark = pytest.mark.django_db(transaction=True)


def finished(run_workers, generation: Generation) -> Generation:  # type: ignore[no-untyped-def]
    run_workers(lambda: Generation.objects.get(pk=generation.pk).is_terminal)
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED, (generation.error_class, generation.error_message)
    return generation


def spent() -> int:
    total = LedgerEntry.objects.filter(kind="settle").aggregate(total=Sum("spent_cents"))["total"]
    return int(total or 0)


def test_each_change_of_a_video_runs_and_the_ledger_equals_the_bill(
    project, teammate, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    budget(cents=100_000)
    source = finished(run_workers, submit(project, teammate, prompt="A paper boat", seconds=8))

    edit = finished(
        run_workers,
        submit(project, teammate, prompt="Make it snow", operation=Operation.EDIT, parent=source),
    )
    remix = finished(
        run_workers,
        submit(project, teammate, prompt="At night", operation=Operation.REMIX, parent=source),
    )
    extension = finished(
        run_workers,
        submit(
            project,
            teammate,
            prompt="It sails on",
            operation=Operation.EXTEND,
            parent=edit,
            seconds=4,
        ),
    )
    # Edits and remixes keep the source's length; an extension adds its segment to it.
    assert (edit.seconds, remix.seconds) == (8, 8)
    assert (extension.seconds, extension.source_seconds, extension.total_seconds) == (4, 8, 12)
    assert remix.parent == source and extension.stack_id == source.stack_id
    with extension.video.open("rb") as handle:
        assert handle.read() == media_cache().get("video", "1280x720", 12)

    log = {entry["id"]: entry for entry in simulator.creates()}
    assert log[edit.provider_job_id]["source_id"] == source.provider_job_id
    assert log[remix.provider_job_id]["operation"] == "remix"
    assert log[extension.provider_job_id]["billed_seconds"] == 4
    # Per second of output made: 8 + 8 (edit) + 8 (remix) + 4 (the extension's segment).
    assert spent() == 10 * (8 + 8 + 8 + 4) == simulator.counters()["billed_cents"]


def test_image_to_video_and_a_character_mentioned_by_name(
    project, teammate, channel, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    budget(cents=100_000)
    first_frame = PreparedImage(
        role="first_frame",
        content=make_png(1280, 720),
        content_type="image/png",
        width=1280,
        height=720,
        original_name="still.png",
    )
    still = finished(
        run_workers, submit(project, teammate, prompt="A dancer turns", images=[first_frame])
    )
    assert simulator.creates()[-1]["input_reference"] is True

    mira = character_create(project=project, user=teammate, name="Mira", source_generation=still)
    assert mira.status == CharacterStatus.PENDING
    run_workers(lambda: Character.objects.get(pk=mira.pk).status != CharacterStatus.PENDING)
    mira.refresh_from_db()
    assert mira.status == CharacterStatus.READY and mira.provider_character_id
    # A repeated job changes nothing (the row is no longer pending).
    character_make(character_id=mira.pk)
    assert Character.objects.get(pk=mira.pk).provider_character_id == mira.provider_character_id

    prompt = "Mira walks through a market; Miranda is not a character"
    mentioned = characters_mentioned(project=project, channel=channel, prompt=prompt)
    assert mentioned == [mira]
    with_mira = finished(
        run_workers, submit(project, teammate, prompt=prompt, characters=mentioned)
    )
    assert list(with_mira.characters.all()) == [mira]
    assert simulator.creates()[-1]["characters"] == [mira.provider_character_id]
    assert spent() == 10 * 4 * 2 == simulator.counters()["billed_cents"]
