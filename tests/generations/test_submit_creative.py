"""generation_submit's creative side: options, takes, changing a video, the queue cap and prices.

Every refusal happens before anything is reserved: no row, no ledger entry.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone

from workspace.billing.models import LedgerEntry, PriceVariant
from workspace.billing.services import price_current, price_set, price_table
from workspace.generations.images import PreparedImage
from workspace.generations.models import Generation, InputRole, Operation, Status
from workspace.generations.submission import QueueFull, generation_submit
from workspace.projects.services import project_create
from workspace.providers.models import Channel


@pytest.fixture
def fal_channel(db: None) -> Channel:
    return Channel.objects.create(
        slug="fal", name="fal", protocol="fal", requests_per_minute=60_000, max_in_flight=50
    )


def submit(project, user, **overrides):  # type: ignore[no-untyped-def]
    fields = {"model": "sora-2", "prompt": "A lighthouse in fog", "size": "1280x720", "seconds": 4}
    fields.update(overrides)
    return generation_submit(project=project, user=user, **fields)


def veo(project, user, channel, **overrides):  # type: ignore[no-untyped-def]
    fields = {"model": "fal-ai/veo3.1", "size": "1280x720", "seconds": 8, "channel": channel}
    return submit(project, user, **{**fields, **overrides})


def refused(call) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    before = (Generation.objects.count(), LedgerEntry.objects.count())
    with pytest.raises(ValidationError) as caught:
        call()
    assert (Generation.objects.count(), LedgerEntry.objects.count()) == before
    return caught.value.message_dict


def png(role: str = InputRole.FIRST_FRAME) -> PreparedImage:
    return PreparedImage(
        role=role, content=b"\x89PNG fitted", content_type="image/png", width=1280, height=720
    )


def test_options_are_taken_only_where_the_model_takes_them(
    project, teammate, fal_channel, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    errors = refused(lambda: submit(project, teammate, options={"seed": 7}))
    assert errors["seed"] == ["Sora 2 takes no seed."]
    errors = refused(lambda: submit(project, teammate, options={"audio": False}))
    assert errors["audio"] == ["Sora 2 always makes sound."]
    errors = refused(lambda: submit(project, teammate, options={"negative_prompt": "rain"}))
    assert "takes no negative prompt" in errors["negative_prompt"][0]
    errors = refused(lambda: submit(project, teammate, options={"style": "noir"}))
    assert errors["options"] == ["Unknown options: style."]
    errors = refused(lambda: veo(project, teammate, fal_channel, options={"seed": -1}))
    assert "0 to 4,294,967,295" in errors["seed"][0]
    errors = refused(lambda: veo(project, teammate, fal_channel, options={"seed": True}))
    assert "whole number" in errors["seed"][0]

    made = veo(
        project,
        teammate,
        fal_channel,
        options={"seed": 4_294_967_295, "negative_prompt": "rain", "audio": True},
    )
    assert made.options == {"seed": 4_294_967_295, "negative_prompt": "rain", "audio": True}


def test_sound_off_is_charged_at_the_silent_price_from_the_price_table(
    project, teammate, channel, fal_channel, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    loud = veo(project, teammate, fal_channel)
    silent = veo(project, teammate, fal_channel, options={"audio": False})
    assert (loud.estimated_cost_cents, silent.estimated_cost_cents) == (320, 160)
    # An admin's new silent price is what the next request is charged, and what forms show.
    price_set(
        channel=fal_channel,
        model="fal-ai/veo3.1",
        size="1280x720",
        variant=PriceVariant.SILENT,
        usd_per_second=price_current(
            channel=fal_channel, model="fal-ai/veo3.1", size="1280x720", variant="silent"
        ).usd_per_second
        / 2,
        effective_from=timezone.now(),
    )
    cheaper = veo(project, teammate, fal_channel, options={"audio": False})
    assert cheaper.estimated_cost_cents == 80
    table = price_table(channel=fal_channel)
    assert table["fal-ai/veo3.1"]["1280x720"] == {"": 40.0, "silent": 10.0}
    # A variant without a row of its own is charged at the standard price.
    assert price_current(
        channel=channel,
        model="sora-2",
        size="1280x720",
        variant="silent",
    ).variant == ""


def test_takes_share_a_request_and_are_refused_whole_past_the_channel_maximum(
    project, teammate, channel, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    errors = refused(lambda: submit(project, teammate, takes=channel.max_takes + 1))
    assert errors["takes"] == [f"Ask for 1 to {channel.max_takes} takes, not 5."]
    first = submit(project, teammate, takes=3)
    takes = list(Generation.objects.filter(take_set=first.take_set).order_by("created_at"))
    assert len(takes) == 3 and first.take_set is not None
    assert {t.stack_id for t in takes} == {first.stack_id}
    assert {t.take_count for t in takes} == {3}
    reserved = LedgerEntry.objects.filter(generation_id__in=[t.pk for t in takes], kind="reserve")
    assert reserved.count() == 3


def test_the_member_queue_cap_counts_every_take(project, teammate, channel, redis_conn) -> None:  # type: ignore[no-untyped-def]
    channel.member_max_queued = 4
    channel.save()
    submit(project, teammate, takes=3)
    with pytest.raises(QueueFull) as caught:
        submit(project, teammate, takes=2)
    assert "You already have 3 videos waiting" in caught.value.message_dict[NON_FIELD_ERRORS][0]
    assert Generation.objects.count() == 3
    submit(project, teammate)


def test_images_are_taken_only_in_the_roles_the_model_has(
    project, teammate, fal_channel, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    errors = refused(
        lambda: veo(project, teammate, fal_channel, images=[png(InputRole.REFERENCE)])
    )
    assert "takes no reference images" in errors["references"][0]
    errors = refused(
        lambda: veo(project, teammate, fal_channel, images=[png(InputRole.LAST_FRAME)])
    )
    assert errors["last_frame"]
    errors = refused(lambda: veo(project, teammate, fal_channel, images=[png(), png()]))
    assert errors["first_frame"] == ["Give one first frame."]
    made = veo(project, teammate, fal_channel, images=[png()])
    stored = made.inputs.get()
    assert (stored.role, stored.width, stored.byte_size) == ("first_frame", 1280, 11)
    assert stored.image.read() == b"\x89PNG fitted"


def _finished(project, user, **fields) -> Generation:  # type: ignore[no-untyped-def]
    generation = submit(project, user, **fields)
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.COMPLETED,
        provider_job_id=f"video_{generation.pk.hex}",
        provider_expires_at=timezone.now() + timedelta(hours=1),
    )
    generation.refresh_from_db()
    return generation


def test_changing_a_video_checks_the_source_before_reserving_anything(
    project, teammate, outsider, owner, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    source = _finished(project, teammate)
    errors = refused(
        lambda: submit(project, teammate, operation=Operation.EXTEND, parent=source, seconds=5)
    )
    assert "can add 4, 8, 12 seconds, not 5 (at most 120 seconds in all)" in errors["seconds"][0]

    running = submit(project, teammate)
    errors = refused(lambda: submit(project, teammate, operation=Operation.EDIT, parent=running))
    assert "Only a finished video" in errors["parent"][0]

    Generation.objects.filter(pk=source.pk).update(
        provider_expires_at=timezone.now() - timedelta(minutes=1)
    )
    source.refresh_from_db()
    errors = refused(lambda: submit(project, teammate, operation=Operation.EDIT, parent=source))
    assert "expired" in errors["parent"][0] and "frames" in errors["parent"][0]

    # A video in a project the member cannot see does not exist for them.
    elsewhere = project_create(name="Elsewhere", owner=outsider)
    hidden = _finished(elsewhere, outsider)
    with pytest.raises(Generation.DoesNotExist):
        submit(project, owner, operation=Operation.EDIT, parent=hidden)


def test_an_unanswered_remix_is_matched_only_to_a_job_made_from_its_source(
    project, teammate, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    from workspace.generations.sending import _match_candidate
    from workspace.providers.adapters.base import JobStatus, ProviderJob

    source = _finished(project, teammate)
    other = _finished(project, teammate)
    remix = submit(project, teammate, prompt="Same words")
    Generation.objects.filter(pk=remix.pk).update(
        operation=Operation.REMIX,
        parent=source,
        status=Status.SUBMITTING,
        submit_started_at=timezone.now(),
    )
    remix.refresh_from_db()

    def job(job_id: str, made_from: str) -> ProviderJob:
        return ProviderJob(
            id=job_id,
            status=JobStatus.QUEUED,
            model="sora-2",
            prompt="Same words",
            size="1280x720",
            seconds=4,
            created_at=timezone.now(),
            source_id=made_from,
        )

    wrong = job("video_other", other.provider_job_id)
    right = job("video_right", source.provider_job_id)
    assert _match_candidate(remix, [wrong]) is None
    assert _match_candidate(remix, [wrong, right]) is right


def test_a_video_is_extended_at_most_as_often_as_the_provider_allows(
    project, teammate, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    video = _finished(project, teammate)
    for _ in range(6):
        extension = submit(project, teammate, operation=Operation.EXTEND, parent=video, seconds=4)
        Generation.objects.filter(pk=extension.pk).update(
            status=Status.COMPLETED,
            provider_job_id=f"video_{extension.pk.hex}",
            provider_expires_at=timezone.now() + timedelta(hours=1),
        )
        extension.refresh_from_db()
        assert extension.total_seconds == video.total_seconds + 4
        video = extension
    errors = refused(
        lambda: submit(project, teammate, operation=Operation.EXTEND, parent=video, seconds=4)
    )
    assert "extended 6 times already" in errors["seconds"][0]
