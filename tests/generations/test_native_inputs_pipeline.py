"""One generation per protocol with an image (and a Veo and a Luma extension) through the whole
pipeline: submit, the real RQ workers, the simulated provider, settlement. The ledger charges
exactly what the simulator billed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from tests.simulator.helpers import make_png, mp4_seconds
from workspace.billing.models import Kind, LedgerEntry
from workspace.generations.images import PreparedImage
from workspace.generations.models import Generation, Operation, Status
from workspace.generations.submission import generation_submit
from workspace.projects.models import Project
from workspace.providers.models import Channel
from workspace.providers.registry import provider
from workspace.simulator.server import SimulatorServer

pytestmark = pytest.mark.django_db(transaction=True)


def prepared(role: str, width: int, height: int, position: int = 0) -> PreparedImage:
    return PreparedImage(role=role, content=make_png(width, height), content_type="image/png",
                         width=width, height=height, position=position)


def only_channel(channel: Channel, protocol: str) -> Channel:
    # The default channel steps aside so nothing is routed anywhere else.
    channel.is_active = False
    channel.save(update_fields=["is_active"])
    return Channel.objects.create(
        slug=protocol, name=protocol.title(), protocol=protocol,
        api_key_env=provider(protocol).api_key_env, requests_per_minute=60_000,
        max_in_flight=50, member_max_in_flight=50)


def finish(run_workers: Callable[..., None], generation: Generation) -> Generation:
    run_workers(lambda: Generation.objects.get(pk=generation.pk).is_terminal)
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED, generation.error_message
    return generation


def spent(generation: Generation) -> int:
    [settle] = LedgerEntry.objects.filter(generation=generation, kind=Kind.SETTLE)
    return int(settle.spent_cents)


def video_seconds(generation: Generation) -> float:
    with generation.video.open("rb") as handle:
        return mp4_seconds(handle.read())


# Runway names frames by position.
RUNWAY_POSITIONS = {"first": "first_frame", "last": "last_frame"}
CASES: list[tuple[str, dict[str, Any], list[tuple[str, int, int]], int]] = [
    # protocol, submit arguments, images sent (role, width, height), cents billed
    ("runway", {"model": "veo3.1_fast", "size": "1280x720", "seconds": 4,
                "options": {"audio": False, "negative_prompt": "rain"}},
     [("first_frame", 1280, 720), ("last_frame", 1280, 720)], 10 * 4),
    ("fal", {"model": "fal-ai/veo3.1", "size": "720x1280", "seconds": 6,
             "options": {"seed": 11}},
     [("first_frame", 720, 1280)], 40 * 6),
    ("gemini", {"model": "veo-3.1-fast-generate-preview", "size": "1280x720", "seconds": 8},
     [("first_frame", 1280, 720), ("reference", 1280, 720), ("reference", 1280, 720)], 10 * 8),
    ("luma", {"model": "ray-3.2", "size": "1280x720", "seconds": 5},
     [("first_frame", 1280, 720), ("last_frame", 1280, 720)], 6 * 5),
    # The Agent Platform answers with the video's bytes inline: no file host is involved.
    ("vertex", {"model": "veo-3.1-generate-001", "size": "1280x720", "seconds": 8,
                "options": {"audio": False, "seed": 5, "negative_prompt": "rain"}},
     [("first_frame", 1280, 720), ("last_frame", 1280, 720)], 20 * 8),
]


@pytest.mark.parametrize(("protocol", "request_", "images", "cents"), CASES,
                         ids=[case[0] for case in CASES])
def test_an_image_to_video_generation_settles_at_the_simulators_bill(  # type: ignore[no-untyped-def]
        project: Project, teammate: User, channel: Channel, simulator: SimulatorServer,
        run_workers, protocol: str, request_: dict[str, Any], images: list[tuple[str, int, int]],
        cents: int) -> None:
    chosen = only_channel(channel, protocol)
    generation = generation_submit(
        project=project, user=teammate, prompt="A paper boat drifting down a rainy street",
        images=[prepared(role, w, h, index) for index, (role, w, h) in enumerate(images)],
        **request_)
    assert generation.channel_id == chosen.pk and generation.estimated_cost_cents == cents
    finish(run_workers, generation)
    [create] = simulator.creates()
    assert (create["protocol"], create["size"], create["seconds"]) == (
        protocol, request_["size"], request_["seconds"])
    sent = [(RUNWAY_POSITIONS.get(i["role"], i["role"]), i["width"], i["height"])
            for i in create["images"]]
    assert sent == images
    assert spent(generation) == simulator.counters()["billed_cents"] == cents


@pytest.mark.parametrize(("protocol", "model", "first", "added", "cents"), [
    ("gemini", "veo-3.1-generate-preview", 8, 7, 40),
    ("luma", "ray-3.2", 5, 5, 6),
], ids=["gemini", "luma"])
def test_an_extension_settles_the_added_seconds_and_plays_the_whole_clip(  # type: ignore[no-untyped-def]
        project: Project, teammate: User, channel: Channel, simulator: SimulatorServer,
        run_workers, protocol: str, model: str, first: int, added: int, cents: int) -> None:
    only_channel(channel, protocol)
    parent = finish(run_workers, generation_submit(
        project=project, user=teammate, model=model, prompt="A paper boat", size="1280x720",
        seconds=first, images=[prepared("first_frame", 1280, 720)]))
    extension = generation_submit(
        project=project, user=teammate, model=model, prompt="It sails out to sea",
        size="1280x720", seconds=added, operation=Operation.EXTEND, parent=parent)
    assert (extension.source_seconds, extension.seconds) == (first, added)
    assert extension.estimated_cost_cents == cents * added
    finish(run_workers, extension)
    _, create = simulator.creates()
    assert (create["operation"], create["source_id"]) == ("extend", parent.provider_job_id)
    assert round(video_seconds(extension)) == first + added
    assert spent(parent) + spent(extension) == simulator.counters()["billed_cents"] == (
        cents * (first + added))


@pytest.mark.parametrize(("protocol", "model", "seconds", "role", "words"), [
    ("gemini", "veo-3.1-generate-preview", 6, "reference", "8 seconds only when given a "
     "reference image"),
    ("luma", "ray-3.2", 10, "first_frame", "5 seconds only when given a first frame"),
], ids=["gemini", "luma"])
def test_lengths_a_model_cannot_make_with_an_image_are_refused_before_reserving(  # type: ignore[no-untyped-def]
        project: Project, teammate: User, channel: Channel, simulator: SimulatorServer,
        protocol: str, model: str, seconds: int, role: str, words: str) -> None:
    only_channel(channel, protocol)
    images = [prepared("first_frame", 1280, 720)] if role == "reference" else []
    with pytest.raises(ValidationError) as refused:
        generation_submit(project=project, user=teammate, model=model, prompt="A paper boat",
                          size="1280x720", seconds=seconds,
                          images=[*images, prepared(role, 1280, 720, 1)])
    assert words in refused.value.message_dict["seconds"][0]
    assert not Generation.objects.exists() and not LedgerEntry.objects.exists()
    assert simulator.creates() == []
