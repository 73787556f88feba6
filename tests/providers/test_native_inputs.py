"""Runway, fal, Gemini and Luma adapters send images, options and extensions as each API takes
them, against the simulator over real HTTP; what a model cannot take is refused before any call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from tests.providers.adapter_helpers import build, download, raises, wait
from tests.simulator.helpers import make_png, mp4_seconds
from workspace.providers.adapters.base import (
    HTTPAdapter,
    InputImage,
    JobStatus,
    Operation,
    VideoRequest,
)
from workspace.providers.errors import CreateOutcome, ErrorClass
from workspace.providers.integrations.fal.adapter import FalQueueAdapter
from workspace.providers.integrations.gemini.adapter import GeminiVeoAdapter
from workspace.providers.integrations.luma.adapter import LumaAdapter
from workspace.providers.integrations.runway.adapter import RunwayAdapter
from workspace.simulator.server import SimulatorServer

WIDE = make_png(128, 72)
TALL = make_png(72, 128)


def image(role: str, content: bytes = WIDE, width: int = 128, height: int = 72) -> InputImage:
    return InputImage(role=role, content=content, content_type="image/png", width=width,
                      height=height)


FIRST, LAST, REFERENCE = image("first_frame"), image("last_frame"), image("reference")


@pytest.fixture
def adapters(simulator: SimulatorServer) -> Iterator[dict[str, HTTPAdapter]]:
    from tests.providers.adapter_helpers import KEY

    simulator.update_config(api_keys=[KEY])
    built = {
        "runway": build(RunwayAdapter, simulator, "runway"),
        "fal": build(FalQueueAdapter, simulator, "fal"),
        "gemini": build(GeminiVeoAdapter, simulator, "gemini"),
        "luma": build(LumaAdapter, simulator, "luma"),
    }
    yield built  # type: ignore[misc]
    for adapter in built.values():
        adapter.close()


def roles(entry: dict[str, object]) -> list[tuple[object, ...]]:
    images = entry["images"]
    assert isinstance(images, list)
    return [(i["role"], i["width"], i["height"]) for i in images]


# ---- Runway ---------------------------------------------------------------------------------

def test_runway_sends_a_first_frame_to_image_to_video(adapters, simulator) -> None:  # type: ignore[no-untyped-def]
    runway = adapters["runway"]
    request = VideoRequest(model="gen4.5", prompt="a kite", size="1280x720", seconds=5,
                           images=(FIRST,), seed=99)
    job = runway.create(request)
    assert wait(runway, job.id).status is JobStatus.COMPLETED
    assert download(runway, job.id)[1][4:8] == b"ftyp"
    [entry] = simulator.creates()
    assert (entry["endpoint"], entry["seed"]) == ("image_to_video", 99)
    assert roles(entry) == [("first", 128, 72)]


def test_runway_veo_ends_on_a_last_frame_without_sound(adapters, simulator) -> None:  # type: ignore[no-untyped-def]
    runway = adapters["runway"]
    request = VideoRequest(model="veo3.1_fast", prompt="a kite", size="1280x720", seconds=4,
                           images=(FIRST, image("last_frame", TALL, 72, 128)), audio=False,
                           negative_prompt="rain")
    job = runway.create(request)
    assert wait(runway, job.id).status is JobStatus.COMPLETED
    [entry] = simulator.creates()
    assert roles(entry) == [("first", 128, 72), ("last", 72, 128)]
    assert (entry["audio"], entry["negative_prompt"]) == (False, "rain")
    assert simulator.counters()["billed_cents"] == 10 * 4  # the silent price


@pytest.mark.parametrize("change", [
    {"model": "gen4.5", "seconds": 5, "images": (FIRST, LAST)},
    {"images": (FIRST, REFERENCE)},
    {"seed": 1},
    {"model": "gen4.5", "seconds": 5, "audio": True},
    {"model": "gen4.5", "seconds": 5, "negative_prompt": "rain"},
    {"operation": Operation.EXTEND, "source_job_id": "task"},
    {"images": (image("first_frame", b"\x89PNG" + bytes(5 * 1024 * 1024)),)},
])
def test_runway_refuses_what_the_model_cannot_take_before_calling(adapters, simulator,  # type: ignore[no-untyped-def]
                                                                 change) -> None:
    request = dataclasses.replace(
        VideoRequest(model="veo3.1", prompt="a kite", size="1280x720", seconds=4), **change)
    raises(lambda: adapters["runway"].create(request), ErrorClass.INVALID_REQUEST)
    assert simulator.creates() == []


# ---- fal ------------------------------------------------------------------------------------

def test_fal_sends_a_first_frame_to_the_image_to_video_endpoint(adapters, simulator) -> None:  # type: ignore[no-untyped-def]
    fal = adapters["fal"]
    request = VideoRequest(model="fal-ai/veo3.1", prompt="a kite", size="1280x720", seconds=6,
                           images=(FIRST,), audio=False, seed=5, negative_prompt="rain")
    job = fal.create(request)
    assert job.id.startswith("fal-ai/veo3.1/image-to-video/requests/")
    done = wait(fal, job.id)
    assert (done.status, done.model) == (JobStatus.COMPLETED, "fal-ai/veo3.1")
    assert download(fal, job.id)[1][4:8] == b"ftyp"
    [entry] = simulator.creates()
    assert entry["endpoint"] == "fal-ai/veo3.1/image-to-video"
    assert roles(entry) == [("first_frame", 128, 72)]
    assert (entry["audio"], entry["seed"], entry["negative_prompt"]) == (False, 5, "rain")
    assert simulator.counters()["billed_cents"] == 20 * 6


@pytest.mark.parametrize("change", [
    {"images": (FIRST, LAST)},
    {"images": (REFERENCE,)},
    {"operation": Operation.EXTEND, "source_job_id": "fal-ai/veo3.1/requests/x"},
    {"characters": ("char_1",)},
])
def test_fal_refuses_what_it_does_not_offer(adapters, simulator, change) -> None:  # type: ignore[no-untyped-def]
    request = dataclasses.replace(
        VideoRequest(model="fal-ai/veo3.1", prompt="a kite", size="1280x720", seconds=8),
        **change)
    raises(lambda: adapters["fal"].create(request), ErrorClass.INVALID_REQUEST)
    assert simulator.creates() == []


# ---- Gemini ---------------------------------------------------------------------------------

VEO = "veo-3.1-generate-preview"


def test_gemini_sends_frames_and_references_inline(adapters, simulator) -> None:  # type: ignore[no-untyped-def]
    gemini = adapters["gemini"]
    request = VideoRequest(model=VEO, prompt="a kite", size="1280x720", seconds=8,
                           images=(FIRST, image("last_frame", TALL, 72, 128), REFERENCE,
                                   REFERENCE),
                           negative_prompt="rain")
    job = gemini.create(request)
    assert wait(gemini, job.id).status is JobStatus.COMPLETED
    [entry] = simulator.creates()
    assert roles(entry) == [("first_frame", 128, 72), ("last_frame", 72, 128),
                            ("reference", 128, 72), ("reference", 128, 72)]
    assert (entry["reference_images"], entry["negative_prompt"]) == (2, "rain")


def test_gemini_extends_its_parent_operation_video(adapters, simulator) -> None:  # type: ignore[no-untyped-def]
    gemini = adapters["gemini"]
    parent = gemini.create(VideoRequest(model=VEO, prompt="a kite", size="720x1280", seconds=8))
    assert wait(gemini, parent.id).status is JobStatus.COMPLETED
    extension = VideoRequest(model=VEO, prompt="it flies higher", size="720x1280", seconds=7,
                             operation=Operation.EXTEND, source_job_id=parent.id,
                             source_seconds=8)
    job = gemini.create(extension)
    assert job.seconds == 7
    assert wait(gemini, job.id).status is JobStatus.COMPLETED
    assert round(mp4_seconds(download(gemini, job.id)[1])) == 15
    _, second = simulator.creates()
    assert (second["operation"], second["source_id"], second["seconds"]) == (
        "extend", parent.id, 7)
    assert (second["size"], second["resolution"]) == ("720x1280", "720p")
    assert simulator.counters()["billed_cents"] == 40 * 8 + 40 * 7


def test_gemini_extension_of_a_missing_operation_creates_nothing(adapters, simulator) -> None:  # type: ignore[no-untyped-def]
    request = VideoRequest(model=VEO, prompt="more", size="1280x720", seconds=7,
                           operation=Operation.EXTEND,
                           source_job_id=f"models/{VEO}/operations/gone")
    error = raises(lambda: adapters["gemini"].create(request), ErrorClass.NOT_FOUND)
    assert error.create_outcome is CreateOutcome.NOT_CREATED
    assert simulator.creates() == []


@pytest.mark.parametrize(("model", "change"), [
    (VEO, {"seed": 3}),
    (VEO, {"audio": False}),
    (VEO, {"images": (REFERENCE,) * 4}),
    (VEO, {"images": (LAST,)}),
    ("veo-3.1-lite-generate-preview", {"images": (REFERENCE,)}),
    ("veo-3.1-lite-generate-preview", {"images": (FIRST, LAST)}),
    ("veo-3.1-lite-generate-preview", {"operation": Operation.EXTEND, "source_job_id": "x"}),
    (VEO, {"operation": Operation.EDIT, "source_job_id": "x"}),
])
def test_gemini_refuses_what_the_model_cannot_take(adapters, simulator, model, change) -> None:  # type: ignore[no-untyped-def]
    request = dataclasses.replace(
        VideoRequest(model=model, prompt="a kite", size="1280x720", seconds=8), **change)
    raises(lambda: adapters["gemini"].create(request), ErrorClass.INVALID_REQUEST)
    assert simulator.creates() == []


# ---- Luma -----------------------------------------------------------------------------------

def test_luma_sends_start_and_end_frames(adapters, simulator) -> None:  # type: ignore[no-untyped-def]
    luma = adapters["luma"]
    job = luma.create(VideoRequest(model="ray-3.2", prompt="a kite", size="1280x720", seconds=5,
                                   images=(FIRST, LAST)))
    assert wait(luma, job.id).status is JobStatus.COMPLETED
    [entry] = simulator.creates()
    assert roles(entry) == [("first_frame", 128, 72), ("last_frame", 128, 72)]


def test_luma_extends_a_generation(adapters, simulator) -> None:  # type: ignore[no-untyped-def]
    luma = adapters["luma"]
    parent = luma.create(VideoRequest(model="ray-3.2", prompt="a kite", size="1280x720",
                                      seconds=5))
    assert wait(luma, parent.id).status is JobStatus.COMPLETED
    job = luma.create(VideoRequest(model="ray-3.2", prompt="on", size="1280x720", seconds=5,
                                   operation=Operation.EXTEND, source_job_id=parent.id,
                                   source_seconds=5))
    assert wait(luma, job.id).status is JobStatus.COMPLETED
    assert round(mp4_seconds(download(luma, job.id)[1])) == 10
    assert simulator.creates()[1]["source_id"] == parent.id
    assert simulator.counters()["billed_cents"] == 6 * 5 * 2


@pytest.mark.parametrize("change", [
    {"seconds": 10, "images": (FIRST,)},
    {"images": (REFERENCE,)},
    {"seed": 1},
    {"audio": True},
    {"operation": Operation.REMIX, "source_job_id": "x"},
])
def test_luma_refuses_what_ray_cannot_take(adapters, simulator, change) -> None:  # type: ignore[no-untyped-def]
    request = dataclasses.replace(
        VideoRequest(model="ray-3.2", prompt="a kite", size="1280x720", seconds=5), **change)
    raises(lambda: adapters["luma"].create(request), ErrorClass.INVALID_REQUEST)
    assert simulator.creates() == []


@pytest.mark.parametrize("kind", ["runway", "fal", "gemini", "luma"])
def test_catalog_facts_about_inputs_hang_together(kind: str) -> None:
    from workspace.providers.registry import provider

    for spec in provider(kind).catalog.models:
        assert not spec.supports_last_frame or spec.supports_input_reference, spec.id
        for role, lengths in spec.seconds_with_images.items():
            assert role in ("first_frame", "last_frame", "reference"), spec.id
            assert set(lengths) <= set(spec.seconds), spec.id
        assert set(spec.extend_sizes) <= set(spec.sizes), spec.id
        assert not spec.extend_seconds or spec.max_total_seconds > max(spec.seconds), spec.id
        assert not spec.audio_toggle or spec.silent_cents_per_second_by_resolution, spec.id


def test_the_reference_facts_are_in_the_catalogs() -> None:
    from workspace.providers.registry import provider

    gemini = {spec.id: spec for spec in provider("gemini").catalog.models}
    veo, lite = gemini["veo-3.1-generate-preview"], gemini["veo-3.1-lite-generate-preview"]
    assert (veo.max_reference_images, veo.supports_last_frame) == (3, True)
    assert (veo.extend_seconds, veo.max_total_seconds) == ((7,), 148)
    assert veo.extendable(size="1280x720", total_seconds=141) == (7,)
    assert veo.extendable(size="1280x720", total_seconds=142) == ()
    assert veo.extendable(size="1920x1080", total_seconds=8) == ()
    assert (lite.max_reference_images, lite.can_extend) == (0, False)
    gen45 = provider("runway").catalog.get("gen4.5")
    assert gen45 is not None and not gen45.supports_last_frame and gen45.supports_seed
