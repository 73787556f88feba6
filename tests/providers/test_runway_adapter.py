"""The Runway adapter end to end against the simulator over real HTTP, plus its edge rules."""

from __future__ import annotations

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
from workspace.providers.integrations.runway.adapter import (
    RunwayAdapter,
    classify_failure,
    parse_task,
)
from workspace.simulator.server import SimulatorServer

REQUEST = VideoRequest(model="gen4.5", prompt="a paper boat", size="1280x720", seconds=5)


@pytest.fixture
def runway(simulator: SimulatorServer) -> Iterator[RunwayAdapter]:
    simulator.update_config(api_keys=[KEY])
    adapter = build(RunwayAdapter, simulator, "runway")
    assert isinstance(adapter, RunwayAdapter)
    yield adapter
    adapter.close()


def test_text_to_video_runs_to_an_mp4(runway, simulator, caplog) -> None:  # type: ignore[no-untyped-def]
    keep_logs(caplog)
    job = runway.create(REQUEST)
    assert job.status is JobStatus.QUEUED and (job.model, job.seconds) == ("gen4.5", 5)
    done = wait(runway, job.id)
    assert (done.status, done.progress, done.error) == (JobStatus.COMPLETED, 100, None)
    content_type, data = download(runway, job.id)
    assert content_type == "video/mp4" and data[4:8] == b"ftyp"
    [entry] = simulator.creates()
    assert (entry["protocol"], entry["model"], entry["size"], entry["seconds"]) == (
        "runway", "gen4.5", "1280x720", 5,
    )
    assert entry["prompt"] == "a paper boat" and entry["ratio"] == "1280:720"
    counters = simulator.counters()
    assert counters["billed_cents"] == 12 * 5 and counters["jobs_completed"] == 1
    # The output came from the CDN without the key; the key never reached a log line.
    assert media_host(simulator).credentialed_requests == 0
    assert_key_never_leaked(caplog)


def test_running_tasks_report_progress_in_percent(runway, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(time_scale=8.0)
    job = runway.create(REQUEST)
    seen = set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        current = runway.retrieve(job.id)
        seen.add((current.status, current.progress))
        if current.status is JobStatus.COMPLETED:
            break
        time.sleep(0.003)
    progresses = [p for s, p in seen if s is JobStatus.IN_PROGRESS]
    assert (JobStatus.QUEUED, 0) in seen and progresses
    assert all(0 <= p <= 99 for p in progresses) and max(progresses) > 1


def test_a_wrong_key_is_an_auth_failure_that_names_no_key(simulator, caplog) -> None:  # type: ignore[no-untyped-def]
    keep_logs(caplog)
    simulator.update_config(api_keys=[KEY])
    adapter = build(RunwayAdapter, simulator, "runway", key=WRONG_KEY)
    error = raises(lambda: adapter.create(REQUEST), ErrorClass.AUTH)
    assert error.create_outcome is CreateOutcome.NOT_CREATED and error.http_status == 401
    # The key check the admin runs: an unknown task with a good key is "not found".
    raises(lambda: adapter.retrieve("reelhouse-key-check"), ErrorClass.AUTH)
    good = build(RunwayAdapter, simulator, "runway")
    raises(lambda: good.retrieve("reelhouse-key-check"), ErrorClass.NOT_FOUND)
    assert_key_never_leaked(caplog, error.message)


def test_rate_limit_carries_the_retry_hint_and_pauses_the_pacer(simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(rpm_limit=1, time_scale=1.0)
    pacer = RecordingPacer()
    adapter = build(RunwayAdapter, simulator, "runway", pacer=pacer)
    adapter.create(REQUEST)
    error = raises(lambda: adapter.create(REQUEST), ErrorClass.RATE_LIMITED)
    assert error.retry_after is not None and 1 <= error.retry_after <= 60
    assert pacer.calls == ["create", "create"] and pacer.pushbacks == [error.retry_after]


def test_no_credit_is_quota_exhausted(runway, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(insufficient_quota=True)
    error = raises(lambda: runway.create(REQUEST), ErrorClass.QUOTA_EXHAUSTED)
    assert "credits" in error.message


def test_invalid_requests_come_back_in_runways_words(runway) -> None:  # type: ignore[no-untyped-def]
    bad = VideoRequest(model="gen4.5", prompt="x", size="1920x1080", seconds=5)
    error = raises(lambda: runway.create(bad), ErrorClass.INVALID_REQUEST)
    assert "ratio" in error.message and "1280:720" in error.message
    error = raises(lambda: runway.create(VideoRequest(model="gen4.5", prompt="x",
                                                      size="1280x720", seconds=11)),
                   ErrorClass.INVALID_REQUEST)
    assert "duration" in error.message


@pytest.mark.parametrize(
    ("marker", "error_class", "code"),
    [
        ("[moderation]", ErrorClass.MODERATION, "SAFETY.INPUT.TEXT"),
        ("[processing_error]", ErrorClass.OVERLOADED, "INPUT_PREPROCESSING.INTERNAL"),
        ("[fail]", ErrorClass.PROVIDER_FAILED, "INTERNAL.BAD_OUTPUT.CODE01"),
    ],
)
def test_failed_tasks_are_classified_by_failure_code(runway, simulator, marker, error_class,
                                                     code) -> None:  # type: ignore[no-untyped-def]
    job = runway.create(VideoRequest(model="gen4.5", prompt=f"boat {marker}", size="720x1280",
                                     seconds=4))
    done = wait(runway, job.id)
    assert done.status is JobStatus.FAILED and done.error is not None
    assert (done.error.error_class, done.error.code) == (error_class, code)
    assert simulator.counters()["jobs_billed"] == 0
    raises(lambda: download(runway, job.id), error_class)


def test_overload_and_resets_are_ambiguous_creates(runway, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(fail_5xx_rate=1.0, seed=3)
    error = raises(lambda: runway.create(REQUEST), ErrorClass.OVERLOADED)
    assert error.create_outcome is CreateOutcome.AMBIGUOUS and error.http_status in (502, 503)
    simulator.update_config(fail_5xx_rate=0.0, reset_rate=1.0)
    error = raises(lambda: runway.create(REQUEST), ErrorClass.NETWORK)
    assert error.create_outcome is CreateOutcome.AMBIGUOUS
    simulator.update_config(reset_rate=0.0)
    error = raises(lambda: runway.create(
        VideoRequest(model="gen4.5", prompt="[reset_after_create]", size="1280x720", seconds=5)),
        ErrorClass.NETWORK)
    assert [e["answer"] for e in simulator.creates()] == ["connection_reset"]


def test_outputs_expire(runway, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(content_ttl_seconds=1.0)
    job = runway.create(REQUEST)
    assert wait(runway, job.id).status is JobStatus.COMPLETED
    time.sleep(0.05)  # 10 simulated seconds
    error = raises(lambda: download(runway, job.id), ErrorClass.EXPIRED)
    assert "expired" in error.message


def test_runway_cannot_list(runway) -> None:  # type: ignore[no-untyped-def]
    assert runway.can_list is False
    error = raises(lambda: runway.list_recent(limit=5), ErrorClass.PROVIDER_FAILED)
    assert "cannot list" in error.message


def test_every_call_goes_through_the_pacer_and_the_circuit(simulator) -> None:  # type: ignore[no-untyped-def]
    pacer, circuit = RecordingPacer(), RecordingCircuit()
    adapter = build(RunwayAdapter, simulator, "runway", pacer=pacer, circuit=circuit)
    job = adapter.create(REQUEST)
    wait(adapter, job.id)
    pacer.calls.clear()
    circuit.outcomes.clear()
    download(adapter, job.id)
    # One retrieve for a fresh URL, one CDN download: both paced, both recorded.
    assert pacer.calls == ["other", "other"] and circuit.outcomes == [True, True]


# ---- at the HTTP edge: production hosts, MockTransport ---------------------------------------


def test_the_key_goes_to_runway_only_never_to_the_cdn() -> None:
    cdn = "https://dnznrvs05pmza.cloudfront.net/out/task.mp4?_jwt=signed"

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.dev.runwayml.com":
            assert request.headers["x-runway-version"] == "2024-11-06"
            return httpx.Response(200, json={"id": "t1", "status": "SUCCEEDED",
                                             "createdAt": "2026-11-25T10:00:00.000Z",
                                             "output": [cdn]})
        return httpx.Response(200, content=b"\x00\x00\x00\x18ftypmp42",
                              headers={"content-type": "video/mp4"})

    edge = EdgeRecorder(answer)
    adapter = RunwayAdapter(base_url="https://api.dev.runwayml.com", api_key=KEY,
                            connect_timeout=1, read_timeout=1, download_timeout=1,
                            transport=edge.transport)
    assert download(adapter, "t1") == ("video/mp4", b"\x00\x00\x00\x18ftypmp42")
    [api] = edge.to_host("api.dev.runwayml.com")
    [file] = edge.to_host("dnznrvs05pmza.cloudfront.net")
    assert api.headers["authorization"] == f"Bearer {KEY}"
    assert "authorization" not in file.headers and not carries_key(file)


def test_parse_task_maps_every_status() -> None:
    base = {"id": "t", "createdAt": "2026-11-25T10:00:00.000Z"}
    assert parse_task({**base, "status": "THROTTLED"}).status is JobStatus.QUEUED
    assert parse_task({**base, "status": "PENDING"}).status is JobStatus.QUEUED
    running = parse_task({**base, "status": "RUNNING", "progress": 0.425})
    assert (running.status, running.progress) == (JobStatus.IN_PROGRESS, 42)
    assert parse_task({**base, "status": "CANCELLED"}).status is JobStatus.CANCELED
    odd = parse_task({**base, "status": "EXPLODED"})
    assert odd.status is JobStatus.FAILED and odd.error is not None
    empty = parse_task({**base, "status": "SUCCEEDED", "output": []})
    assert empty.status is JobStatus.FAILED
    assert parse_task(base | {"status": "PENDING"}).created_at is not None
    assert classify_failure("SAFETY.OUTPUT.VIDEO", None).error_class is ErrorClass.MODERATION
    assert classify_failure("INPUT_PREPROCESSING.SAFETY.TEXT", "x").error_class is (
        ErrorClass.MODERATION)
    assert classify_failure("ASSET.INVALID", "x").error_class is ErrorClass.INVALID_REQUEST
    assert classify_failure(None, None).error_class is ErrorClass.PROVIDER_FAILED



@pytest.mark.parametrize(
    ("body", "cents"),
    [
        ({"status": "SUCCEEDED", "output": ["https://cdn/x.mp4"], "cost": {"credits": 60}}, 60),
        ({"status": "FAILED", "failure": "no", "cost": {"credits": 0}}, 0),
        ({"status": "CANCELLED", "cost": {"credits": 120}}, 120),
        # Only a finished task's cost is final; an estimate is not a charge.
        ({"status": "RUNNING", "progress": 0.5, "estimatedCost": {"credits": 60.0}}, None),
        ({"status": "SUCCEEDED", "output": ["https://cdn/x.mp4"]}, None),
        ({"status": "SUCCEEDED", "output": ["https://cdn/x.mp4"], "cost": {"credits": -5}}, None),
        ({"status": "SUCCEEDED", "output": ["https://cdn/x.mp4"], "cost": {"credits": 1.5}}, None),
        ({"status": "SUCCEEDED", "output": ["https://cdn/x.mp4"], "cost": {"credits": True}}, None),
        ({"status": "SUCCEEDED", "output": ["https://cdn/x.mp4"], "cost": "60"}, None),
        ({"status": "SUCCEEDED", "output": ["https://cdn/x.mp4"], "cost": {"credits": 10**12}},
         None),
    ],
)
def test_parse_task_reads_the_final_cost_in_cents(body: dict[str, object],
                                                  cents: int | None) -> None:
    job = parse_task({"id": "t", "createdAt": "2026-01-01T00:00:00Z", **body})
    assert job.reported_cost_cents == cents


def test_a_task_canceled_at_runway_is_a_provider_failure() -> None:
    job = parse_task({"id": "t", "status": "CANCELLED", "cost": {"credits": 0}})
    assert job.status is JobStatus.CANCELED
    assert job.error is not None and job.error.error_class is ErrorClass.PROVIDER_FAILED
