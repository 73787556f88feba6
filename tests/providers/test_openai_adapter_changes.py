"""The OpenAI Videos adapter's creative inputs against the simulator over real HTTP: a first
frame as a file upload, characters, edits, remixes and extensions, and each refusal classified."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from tests.providers.adapter_helpers import KEY, build, download, raises, wait
from tests.simulator.helpers import make_png
from workspace.providers.adapters.base import (
    CharacterMaker,
    InputImage,
    JobStatus,
    Operation,
    ProviderJob,
    VideoRequest,
)
from workspace.providers.errors import CreateOutcome, ErrorClass
from workspace.providers.integrations.openai_videos.adapter import OpenAIVideosAdapter
from workspace.simulator.media import media_cache
from workspace.simulator.server import SimulatorServer

REQUEST = VideoRequest(model="sora-2", prompt="a paper boat", size="1280x720", seconds=4)


@pytest.fixture
def openai(simulator: SimulatorServer) -> Iterator[OpenAIVideosAdapter]:
    simulator.update_config(api_keys=[KEY, "another-key-0123456789abcdef0123"])
    adapter = build(OpenAIVideosAdapter, simulator, "openai_videos")
    assert isinstance(adapter, OpenAIVideosAdapter)
    yield adapter
    adapter.close()


def finished(adapter: OpenAIVideosAdapter, request: VideoRequest = REQUEST) -> ProviderJob:
    done = wait(adapter, adapter.create(request).id)
    assert done.status is JobStatus.COMPLETED, done.error
    return done


def change(operation: Operation, source: ProviderJob, **fields: object) -> VideoRequest:
    return dataclasses.replace(
        REQUEST,
        operation=operation,
        source_job_id=source.id,
        prompt=str(fields.pop("prompt", f"{operation.value}: make it dusk")),
        **fields,  # type: ignore[arg-type]
    )


def frame(width: int = 1280, height: int = 720) -> InputImage:
    return InputImage(
        role="first_frame",
        content=make_png(width, height),
        content_type="image/png",
        width=width,
        height=height,
        filename="first_frame-0.png",
    )


def test_a_first_frame_travels_as_a_file_upload(openai, simulator) -> None:  # type: ignore[no-untyped-def]
    done = finished(openai, dataclasses.replace(REQUEST, images=(frame(),)))
    [entry] = simulator.creates()
    assert entry["input_reference"] is True and entry["operation"] == "generate"
    assert (done.size, done.seconds) == ("1280x720", 4)
    # The API wants the image at the video's size; the app fits it first, the guard is the API.
    error = raises(
        lambda: openai.create(dataclasses.replace(REQUEST, images=(frame(640, 360),))),
        ErrorClass.INVALID_REQUEST,
    )
    assert "must match the requested size" in error.message
    assert error.create_outcome is CreateOutcome.NOT_CREATED


def test_an_edit_keeps_the_source_model_size_and_length_and_bills_its_length(
    openai, simulator
) -> None:  # type: ignore[no-untyped-def]
    source = finished(openai, dataclasses.replace(REQUEST, model="sora-2-pro", seconds=8))
    edit = openai.create(change(Operation.EDIT, source))
    assert (edit.model, edit.size, edit.seconds) == ("sora-2-pro", "1280x720", 8)
    assert wait(openai, edit.id).status is JobStatus.COMPLETED
    entry = simulator.creates()[-1]
    assert (entry["operation"], entry["source_id"]) == ("edit", source.id)
    assert simulator.counters()["billed_cents"] == 30 * 8 * 2


def test_a_remix_says_what_it_was_remixed_from(openai, simulator) -> None:  # type: ignore[no-untyped-def]
    source = finished(openai)
    remix = openai.create(change(Operation.REMIX, source))
    assert remix.source_id == source.id and remix.seconds == 4
    done = wait(openai, remix.id)
    assert done.status is JobStatus.COMPLETED and done.source_id == source.id
    assert simulator.counters()["billed_cents"] == 10 * 4 * 2


def test_an_extension_reports_the_stitched_length_and_bills_the_added_segment(
    openai, simulator
) -> None:  # type: ignore[no-untyped-def]
    source = finished(openai)
    extension = openai.create(change(Operation.EXTEND, source, seconds=8, source_seconds=4))
    assert extension.seconds == 12  # the stitched total, as the protocol reports it
    assert wait(openai, extension.id).status is JobStatus.COMPLETED
    content_type, data = download(openai, extension.id)
    assert content_type == "video/mp4" and data == media_cache().get("video", "1280x720", 12)
    counters = simulator.counters()
    assert (counters["billed_seconds"], counters["billed_cents"]) == (4 + 8, 10 * (4 + 8))


def test_what_the_protocol_cannot_carry_is_refused_before_sending(openai, simulator) -> None:  # type: ignore[no-untyped-def]
    source = finished(openai)
    last = dataclasses.replace(frame(), role="last_frame")
    for request in (
        dataclasses.replace(REQUEST, seed=7),
        dataclasses.replace(REQUEST, negative_prompt="rain"),
        dataclasses.replace(REQUEST, audio=False),
        dataclasses.replace(REQUEST, images=(frame(), last)),
        dataclasses.replace(REQUEST, characters=("char_a", "char_b", "char_c")),
        change(Operation.EXTEND, source, seconds=4, characters=("char_a",)),
        change(Operation.EDIT, source, images=(frame(),)),
        dataclasses.replace(REQUEST, operation=Operation.REMIX),  # no source
    ):
        error = raises(lambda request=request: openai.create(request), ErrorClass.INVALID_REQUEST)
        assert error.create_outcome is None, request  # nothing went out
    assert len(simulator.creates()) == 1


def test_sources_that_cannot_be_changed_are_classified(openai, simulator) -> None:  # type: ignore[no-untyped-def]
    missing = raises(
        lambda: openai.create(
            change(Operation.EDIT, ProviderJob("video_nope", JobStatus.COMPLETED))
        ),
        ErrorClass.NOT_FOUND,
    )
    assert missing.create_outcome is CreateOutcome.NOT_CREATED
    simulator.update_config(time_scale=0.001)  # it stays queued until the clock speeds up
    running = openai.create(dataclasses.replace(REQUEST, prompt="still rendering"))
    error = raises(
        lambda: openai.create(change(Operation.REMIX, running)), ErrorClass.INVALID_REQUEST
    )
    assert "only a completed video" in error.message
    simulator.update_config(time_scale=200.0)
    source = finished(openai)
    # Another key (another project) cannot see it.
    other = build(
        OpenAIVideosAdapter, simulator, "openai_videos", key="another-key-0123456789abcdef0123"
    )
    raises(lambda: other.create(change(Operation.EXTEND, source, seconds=4)), ErrorClass.NOT_FOUND)
    other.close()
    simulator.update_config(content_ttl_seconds=0)
    gone = finished(openai)
    error = raises(lambda: openai.create(change(Operation.EDIT, gone)), ErrorClass.EXPIRED)
    assert "expired" in error.message


def test_faults_apply_to_changes_like_to_creates(openai, simulator) -> None:  # type: ignore[no-untyped-def]
    source = finished(openai)
    reset = raises(
        lambda: openai.create(
            change(Operation.EXTEND, source, seconds=4, prompt="[reset_after_create]")
        ),
        ErrorClass.NETWORK,
    )
    assert reset.create_outcome is CreateOutcome.AMBIGUOUS
    five = raises(
        lambda: openai.create(change(Operation.REMIX, source, prompt="[fail_5xx_after_create]")),
        ErrorClass.OVERLOADED,
    )
    assert five.create_outcome is CreateOutcome.AMBIGUOUS
    failed = wait(
        openai, openai.create(change(Operation.EDIT, source, prompt="[processing_error]")).id
    )
    assert failed.status is JobStatus.FAILED and failed.error is not None
    assert failed.error.error_class is ErrorClass.OVERLOADED
    moderated = wait(
        openai, openai.create(change(Operation.EDIT, source, prompt="[moderation]")).id
    )
    assert moderated.error is not None and moderated.error.error_class is ErrorClass.MODERATION
    simulator.update_config(rpm_limit=1, rpm_scope="create")
    openai.create(change(Operation.EDIT, source))
    limited = raises(lambda: openai.create(change(Operation.EDIT, source)), ErrorClass.RATE_LIMITED)
    assert limited.create_outcome is CreateOutcome.NOT_CREATED and limited.retry_after
    simulator.update_config(rpm_limit=None, insufficient_quota=True)
    raises(lambda: openai.create(change(Operation.REMIX, source)), ErrorClass.QUOTA_EXHAUSTED)


def test_characters_are_made_from_a_clip_and_used_in_a_create(openai, simulator) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(openai, CharacterMaker)
    clip = media_cache().get("video", "1280x720", 4)
    mira = openai.create_character(name="Mira", video=clip, filename="mira.mp4")
    assert mira.id.startswith("char_") and mira.name == "Mira" and mira.created_at
    assert openai.retrieve_character(mira.id) == mira
    raises(lambda: openai.retrieve_character("char_missing"), ErrorClass.NOT_FOUND)
    bad = raises(
        lambda: openai.create_character(name="Mira", video=make_png(8, 8), filename="x.png"),
        ErrorClass.INVALID_REQUEST,
    )
    assert "not a video" in bad.message
    raises(
        lambda: openai.create_character(name="M" * 81, video=clip, filename="m.mp4"),
        ErrorClass.INVALID_REQUEST,
    )
    raises(
        lambda: openai.create_character(name="[moderation] Mira", video=clip, filename="m.mp4"),
        ErrorClass.MODERATION,
    )
    # Used on a create, as JSON and as the multipart form beside a first frame.
    finished(openai, dataclasses.replace(REQUEST, prompt="Mira waves", characters=(mira.id,)))
    finished(
        openai,
        dataclasses.replace(REQUEST, prompt="Mira runs", characters=(mira.id,), images=(frame(),)),
    )
    assert [entry["characters"] for entry in simulator.creates()] == [[mira.id], [mira.id]]
    unknown = raises(
        lambda: openai.create(dataclasses.replace(REQUEST, characters=("char_nobody",))),
        ErrorClass.INVALID_REQUEST,
    )
    assert "no character" in unknown.message
