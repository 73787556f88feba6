"""The Luma adapter end to end against the simulator over real HTTP, plus its edge rules."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.providers.adapter_helpers import (
    KEY,
    WRONG_KEY,
    EdgeRecorder,
    RecordingCircuit,
    RecordingPacer,
    assert_key_never_leaked,
    build,
    carries_key,
    download,
    keep_logs,
    media_host,
    raises,
    wait,
)
from workspace.providers.adapters.base import JobStatus, VideoRequest
from workspace.providers.errors import CreateOutcome, ErrorClass
from workspace.providers.integrations.luma.adapter import (
    LumaAdapter,
    classify_failure,
    classify_response,
    parse_generation,
)
from workspace.providers.models import Channel
from workspace.providers.services import adapter_for_channel, channel_check_key
from workspace.simulator.server import SimulatorServer

REQUEST = VideoRequest(model="ray-3.2", prompt="a paper boat", size="1280x720", seconds=5)
OFFICIAL = "https://agents.lumalabs.ai/v1"


@pytest.fixture
def luma(simulator: SimulatorServer) -> Iterator[LumaAdapter]:
    simulator.update_config(api_keys=[KEY])
    adapter = build(LumaAdapter, simulator, "luma")
    assert isinstance(adapter, LumaAdapter)
    yield adapter
    adapter.close()


def test_text_to_video_runs_to_an_mp4(luma, simulator, caplog) -> None:  # type: ignore[no-untyped-def]
    keep_logs(caplog)
    job = luma.create(REQUEST)
    assert job.status is JobStatus.QUEUED and (job.model, job.size, job.seconds) == (
        "ray-3.2",
        "1280x720",
        5,
    )
    done = wait(luma, job.id)
    assert (done.status, done.progress, done.error) == (JobStatus.COMPLETED, 100, None)
    assert done.created_at is not None
    content_type, data = download(luma, job.id)
    assert content_type == "video/mp4" and data[4:8] == b"ftyp"
    [entry] = simulator.creates()
    assert (entry["protocol"], entry["model"], entry["size"], entry["seconds"]) == (
        "luma",
        "ray-3.2",
        "1280x720",
        5,
    )
    assert (entry["aspect_ratio"], entry["resolution"], entry["input_reference"]) == (
        "16:9",
        "720p",
        False,
    )
    assert simulator.counters()["billed_cents"] == 6 * 5
    assert media_host(simulator).credentialed_requests == 0
    assert_key_never_leaked(caplog)


def test_every_catalog_size_and_length_is_accepted_as_sent(luma, simulator) -> None:  # type: ignore[no-untyped-def]
    [spec] = LumaAdapter.catalog.models
    sent = [(size, seconds) for size in spec.sizes for seconds in spec.seconds_for(size)]
    jobs = [
        luma.create(VideoRequest(model=spec.id, prompt="rain", size=size, seconds=seconds))
        for size, seconds in sent
    ]
    assert all(wait(luma, job.id).status is JobStatus.COMPLETED for job in jobs)
    assert [(e["size"], e["seconds"]) for e in simulator.creates()] == sent
    assert simulator.creates()[-1]["aspect_ratio"] == "9:16"
    assert simulator.counters()["billed_cents"] == sum(
        spec.cents_per_second[size] * seconds for size, seconds in sent
    )


def test_a_wrong_key_is_an_auth_failure_that_names_no_key(simulator, caplog) -> None:  # type: ignore[no-untyped-def]
    keep_logs(caplog)
    simulator.update_config(api_keys=[KEY])
    adapter = build(LumaAdapter, simulator, "luma", key=WRONG_KEY)
    error = raises(lambda: adapter.create(REQUEST), ErrorClass.AUTH)
    assert error.create_outcome is CreateOutcome.NOT_CREATED and error.http_status == 401
    raises(lambda: adapter.retrieve("reelhouse-key-check"), ErrorClass.AUTH)
    good = build(LumaAdapter, simulator, "luma")
    raises(lambda: good.retrieve("reelhouse-key-check"), ErrorClass.NOT_FOUND)
    assert_key_never_leaked(caplog, error.message)


def test_rate_limit_carries_the_retry_hint_and_pauses_the_pacer(simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(rpm_limit=1, time_scale=1.0)
    pacer = RecordingPacer()
    adapter = build(LumaAdapter, simulator, "luma", pacer=pacer)
    adapter.create(REQUEST)
    error = raises(lambda: adapter.create(REQUEST), ErrorClass.RATE_LIMITED)
    assert error.retry_after is not None and 1 <= error.retry_after <= 60
    assert error.create_outcome is CreateOutcome.NOT_CREATED
    assert pacer.calls == ["create", "create"] and pacer.pushbacks == [error.retry_after]


def test_no_balance_is_quota_exhausted(luma, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(insufficient_quota=True)
    error = raises(lambda: luma.create(REQUEST), ErrorClass.QUOTA_EXHAUSTED)
    assert error.http_status == 402 and "balance" in error.message


@pytest.mark.parametrize(
    ("marker", "error_class", "code"),
    [
        ("[moderation]", ErrorClass.MODERATION, "content_moderated"),
        ("[processing_error]", ErrorClass.OVERLOADED, "generation_failed"),
        ("[fail]", ErrorClass.OVERLOADED, "output_not_found"),
    ],
)
def test_failed_generations_are_classified_by_failure_code(
    luma, simulator, marker, error_class, code
) -> None:  # type: ignore[no-untyped-def]
    job = luma.create(
        VideoRequest(model="ray-3.2", prompt=f"boat {marker}", size="720x1280", seconds=5)
    )
    done = wait(luma, job.id)
    assert done.status is JobStatus.FAILED and done.error is not None
    assert (done.error.error_class, done.error.code) == (error_class, code)
    assert done.error.message and simulator.counters()["jobs_billed"] == 0
    raises(lambda: download(luma, job.id), error_class)


def test_overload_and_resets_are_ambiguous_creates(luma, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(fail_5xx_rate=1.0, seed=3)
    error = raises(lambda: luma.create(REQUEST), ErrorClass.OVERLOADED)
    assert error.create_outcome is CreateOutcome.AMBIGUOUS and error.http_status in (502, 503)
    simulator.update_config(fail_5xx_rate=0.0, reset_rate=1.0)
    error = raises(lambda: luma.create(REQUEST), ErrorClass.NETWORK)
    assert error.create_outcome is CreateOutcome.AMBIGUOUS
    simulator.update_config(reset_rate=0.0)
    raises(
        lambda: luma.create(
            VideoRequest(model="ray-3.2", prompt="[reset_after_create]", size="1280x720", seconds=5)
        ),
        ErrorClass.NETWORK,
    )
    assert [e["answer"] for e in simulator.creates()] == ["connection_reset"]


def test_a_slow_answer_is_a_timeout(simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(slow_rate=1.0, slow_seconds=0.6)
    adapter = LumaAdapter(
        base_url=simulator.url + "/luma/v1",
        api_key=KEY,
        connect_timeout=2,
        read_timeout=0.2,
        download_timeout=10,
    )
    error = raises(lambda: adapter.create(REQUEST), ErrorClass.NETWORK)
    assert error.create_outcome is CreateOutcome.AMBIGUOUS
    adapter.close()


def test_outputs_expire(luma, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(content_ttl_seconds=1.0)
    job = luma.create(REQUEST)
    assert wait(luma, job.id).status is JobStatus.COMPLETED
    time.sleep(0.05)  # 10 simulated seconds
    error = raises(lambda: download(luma, job.id), ErrorClass.EXPIRED)
    assert "expired" in error.message


def test_luma_cannot_list(luma) -> None:  # type: ignore[no-untyped-def]
    assert luma.can_list is False
    error = raises(lambda: luma.list_recent(limit=5), ErrorClass.PROVIDER_FAILED)
    assert "Luma cannot list" in error.message


def test_every_call_goes_through_the_pacer_and_the_circuit(simulator) -> None:  # type: ignore[no-untyped-def]
    pacer, circuit = RecordingPacer(), RecordingCircuit()
    adapter = build(LumaAdapter, simulator, "luma", pacer=pacer, circuit=circuit)
    job = adapter.create(REQUEST)
    wait(adapter, job.id)
    pacer.calls.clear()
    circuit.outcomes.clear()
    download(adapter, job.id)
    # One retrieve for a fresh presigned URL, one CDN download: both paced, both recorded.
    assert pacer.calls == ["other", "other"] and circuit.outcomes == [True, True]
    # Handed the generation the poll just read, the download fetches the file and nothing else.
    done = adapter.retrieve(job.id)
    pacer.calls.clear()
    buffer = io.BytesIO()
    assert adapter.download(job.id, variant="video", destination=buffer, retrieved=done) == (
        "video/mp4"
    )
    assert pacer.calls == ["other"] and buffer.getvalue()[4:8] == b"ftyp"


def test_a_luma_channel_reaches_the_simulator_without_a_key(simulator, db) -> None:  # type: ignore[no-untyped-def]
    channel = Channel.objects.create(
        slug="luma", name="Luma", protocol="luma", api_key_env="LUMA_AGENTS_API_KEY"
    )
    assert channel.is_simulated and channel.catalog.default.id == "ray-3.2"
    adapter = adapter_for_channel(channel=channel)
    assert isinstance(adapter, LumaAdapter)
    job = adapter.create(REQUEST)
    assert wait(adapter, job.id).status is JobStatus.COMPLETED
    adapter.close()
    check = channel_check_key(channel=channel)
    assert check.verdict == "valid" and "simulator" in check.message


def test_a_keyed_channel_goes_to_lumas_address_or_its_sdk_variable(monkeypatch, db) -> None:  # type: ignore[no-untyped-def]
    channel = Channel.objects.create(
        slug="luma", name="Luma", protocol="luma", api_key_env="LUMA_AGENTS_API_KEY"
    )
    monkeypatch.setenv("LUMA_AGENTS_API_KEY", KEY)
    assert channel.connection().base_url == OFFICIAL
    monkeypatch.setenv("LUMA_BASE_URL", "https://gateway.example/luma/v1")
    assert channel.connection().base_url == "https://gateway.example/luma/v1"


# ---- at the HTTP edge: production hosts, MockTransport ---------------------------------------


def test_the_wire_request_and_the_key_goes_to_luma_only_never_to_the_cdn() -> None:
    cdn = "https://storage.cdn-luma.example/out/g1.mp4?X-Amz-Signature=signed"
    generation = {
        "id": "g1",
        "created_at": "2026-11-25T10:00:00Z",
        "model": "ray-3.2",
        "type": "video",
        "state": "completed",
        "output": [
            {"type": "image", "url": "https://storage.cdn-luma.example/t.jpg"},
            {"type": "video", "url": cdn},
        ],
    }

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "agents.lumalabs.ai" and request.method == "POST":
            return httpx.Response(201, json={**generation, "state": "queued", "output": None})
        if request.url.host == "agents.lumalabs.ai":
            return httpx.Response(200, json=generation)
        return httpx.Response(
            200, content=b"\x00\x00\x00\x18ftypmp42", headers={"content-type": "video/mp4"}
        )

    edge = EdgeRecorder(answer)
    adapter = LumaAdapter(
        base_url=OFFICIAL,
        api_key=KEY,
        connect_timeout=1,
        read_timeout=1,
        download_timeout=1,
        transport=edge.transport,
    )
    adapter.create(VideoRequest(model="ray-3.2", prompt="p", size="1080x1920", seconds=10))
    assert download(adapter, "g1") == ("video/mp4", b"\x00\x00\x00\x18ftypmp42")
    create, retrieve = edge.to_host("agents.lumalabs.ai")
    assert str(create.url) == f"{OFFICIAL}/generations"
    assert json.loads(create.content) == {
        "model": "ray-3.2",
        "type": "video",
        "prompt": "p",
        "aspect_ratio": "9:16",
        "video": {"resolution": "1080p", "duration": "10s"},
    }
    assert str(retrieve.url) == f"{OFFICIAL}/generations/g1"
    assert create.headers["authorization"] == f"Bearer {KEY}"
    [file] = edge.to_host("storage.cdn-luma.example")
    assert str(file.url) == cdn  # the video output, not the image beside it
    assert "authorization" not in file.headers and not carries_key(file)


@pytest.mark.parametrize(
    ("status", "body", "error_class"),
    [
        (400, {"detail": "Invalid request parameters"}, ErrorClass.INVALID_REQUEST),
        (401, {"detail": "Invalid API key"}, ErrorClass.AUTH),
        (402, {"detail": "Insufficient balance"}, ErrorClass.QUOTA_EXHAUSTED),
        (403, {"detail": "Client suspended"}, ErrorClass.AUTH),
        (404, {"detail": "Generation not found"}, ErrorClass.NOT_FOUND),
        (413, {"detail": "Input media exceeds size limit"}, ErrorClass.INVALID_REQUEST),
        (
            422,
            {"detail": [{"loc": ["body", "prompt"], "msg": "Field required"}]},
            ErrorClass.INVALID_REQUEST,
        ),
        (429, {"detail": "Concurrent job limit reached"}, ErrorClass.RATE_LIMITED),
        (502, {"detail": "Upstream service unavailable"}, ErrorClass.OVERLOADED),
        (503, "<html>busy</html>", ErrorClass.OVERLOADED),
    ],
)
def test_every_documented_status_is_classified(status, body, error_class) -> None:  # type: ignore[no-untyped-def]
    response = (
        httpx.Response(status, json=body, headers={"retry-after": "7"})
        if isinstance(body, dict)
        else httpx.Response(status, text=body)
    )
    error = classify_response(response)
    assert error.error_class is error_class and error.message
    if isinstance(body, dict) and isinstance(body["detail"], str):
        assert error.message == body["detail"] and error.retry_after == 7
    if status == 422:
        assert error.message == "Field required"


def test_untrusted_generations_never_leave_a_job_running_forever() -> None:
    base = {"id": "g", "created_at": "2026-11-25T10:00:00.123456Z"}
    assert parse_generation({**base, "state": "queued"}).status is JobStatus.QUEUED
    processing = parse_generation({**base, "state": "processing"})
    assert (processing.status, processing.progress) == (JobStatus.IN_PROGRESS, 0)
    assert processing.created_at is not None
    odd = parse_generation({**base, "state": "dreaming"})
    assert odd.status is JobStatus.FAILED and odd.error is not None
    empty = parse_generation({**base, "state": "completed", "output": []})
    assert empty.status is JobStatus.FAILED
    images_only = parse_generation(
        {**base, "state": "completed", "output": [{"type": "image", "url": "https://x/a.jpg"}]}
    )
    assert images_only.status is JobStatus.FAILED
    assert parse_generation({**base, "created_at": 5, "state": "queued"}).created_at is None
    for garbage in (None, [], {"state": "queued"}, {"id": ""}, {"id": 7}):
        with pytest.raises(Exception, match="not a generation"):
            parse_generation(garbage)
    assert classify_failure("budget_exhausted", "x").error_class is ErrorClass.QUOTA_EXHAUSTED
    assert classify_failure("corrupt_input", "x").error_class is ErrorClass.INVALID_REQUEST
    assert classify_failure("rate_limited", "x").error_class is ErrorClass.RATE_LIMITED
    unknown = classify_failure("new_code", None)
    assert unknown.error_class is ErrorClass.PROVIDER_FAILED and unknown.message


@pytest.mark.parametrize("answer", [b"<html>ok</html>", b'{"state": "queued"}', b"[]"])
def test_a_yes_to_a_create_that_names_no_generation_is_ambiguous(answer: bytes) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(201, content=answer))
    adapter = LumaAdapter(
        base_url=OFFICIAL,
        api_key=KEY,
        connect_timeout=1,
        read_timeout=1,
        download_timeout=1,
        transport=transport,
    )
    error = raises(lambda: adapter.create(REQUEST), ErrorClass.PROVIDER_FAILED)
    assert error.create_outcome is CreateOutcome.AMBIGUOUS
