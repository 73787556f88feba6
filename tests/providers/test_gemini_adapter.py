"""The Gemini (Veo) adapter end to end against the simulator over real HTTP, plus its edge rules."""

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
from workspace.providers.integrations.gemini.adapter import (
    GeminiVeoAdapter,
    classify_operation_error,
    classify_response,
    parse_operation,
    parse_retry_delay,
)
from workspace.simulator.server import SimulatorServer

MODEL = "veo-3.1-fast-generate-preview"
REQUEST = VideoRequest(model=MODEL, prompt="a paper boat", size="1280x720", seconds=4)


@pytest.fixture
def gemini(simulator: SimulatorServer) -> Iterator[GeminiVeoAdapter]:
    simulator.update_config(api_keys=[KEY])
    adapter = build(GeminiVeoAdapter, simulator, "gemini")
    assert isinstance(adapter, GeminiVeoAdapter)
    yield adapter
    adapter.close()


def test_predict_long_running_poll_and_authenticated_download(gemini, simulator, caplog) -> None:  # type: ignore[no-untyped-def]
    keep_logs(caplog)
    job = gemini.create(REQUEST)
    assert job.id.startswith(f"models/{MODEL}/operations/") and job.status is JobStatus.QUEUED
    running = gemini.retrieve(job.id)
    assert running.status in (JobStatus.IN_PROGRESS, JobStatus.COMPLETED)
    done = wait(gemini, job.id)
    assert (done.status, done.progress, done.model) == (JobStatus.COMPLETED, 100, MODEL)
    content_type, data = download(gemini, job.id)
    assert content_type == "video/mp4" and data[4:8] == b"ftyp"
    [entry] = simulator.creates()
    assert (entry["protocol"], entry["model"], entry["size"], entry["seconds"]) == (
        "gemini", MODEL, "1280x720", 4,
    )
    assert entry["prompt"] == "a paper boat"
    counters = simulator.counters()
    # The file endpoint (with the key) redirected to storage (without it): two downloads.
    assert counters["billed_cents"] == 10 * 4 and counters["downloads_video"] == 2
    assert media_host(simulator).credentialed_requests == 0
    assert_key_never_leaked(caplog)


def test_a_wrong_key_is_an_auth_failure_that_names_no_key(simulator, caplog) -> None:  # type: ignore[no-untyped-def]
    keep_logs(caplog)
    simulator.update_config(api_keys=[KEY])
    adapter = build(GeminiVeoAdapter, simulator, "gemini", key=WRONG_KEY)
    error = raises(lambda: adapter.create(REQUEST), ErrorClass.AUTH)
    # Google answers a bad key with 400 INVALID_ARGUMENT / API_KEY_INVALID, not 401.
    assert error.http_status == 400 and error.create_outcome is CreateOutcome.NOT_CREATED
    raises(lambda: adapter.retrieve("reelhouse-key-check"), ErrorClass.AUTH)
    good = build(GeminiVeoAdapter, simulator, "gemini")
    raises(lambda: good.retrieve("reelhouse-key-check"), ErrorClass.NOT_FOUND)
    assert_key_never_leaked(caplog, error.message)


def test_resource_exhausted_takes_its_retry_delay_from_the_body(simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(rpm_limit=1, time_scale=1.0)
    pacer = RecordingPacer()
    adapter = build(GeminiVeoAdapter, simulator, "gemini", pacer=pacer)
    adapter.create(REQUEST)
    error = raises(lambda: adapter.create(REQUEST), ErrorClass.RATE_LIMITED)
    assert error.code == "RESOURCE_EXHAUSTED"
    assert error.retry_after is not None and 1 <= error.retry_after <= 60
    assert pacer.pushbacks == [error.retry_after]


def test_a_per_day_quota_is_quota_exhausted(gemini, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(insufficient_quota=True)
    error = raises(lambda: gemini.create(REQUEST), ErrorClass.QUOTA_EXHAUSTED)
    assert "quota" in error.message


def test_invalid_requests_come_back_in_googles_words(gemini) -> None:  # type: ignore[no-untyped-def]
    error = raises(lambda: gemini.create(VideoRequest(model=MODEL, prompt="x", size="1920x1080",
                                                      seconds=4)), ErrorClass.INVALID_REQUEST)
    assert "8 seconds" in error.message and error.code == "INVALID_ARGUMENT"
    raises(lambda: gemini.create(VideoRequest(model="veo-2.0-generate-001", prompt="x",
                                              size="1280x720", seconds=8)), ErrorClass.NOT_FOUND)


@pytest.mark.parametrize(
    ("marker", "error_class"),
    [
        ("[moderation]", ErrorClass.MODERATION),
        ("[processing_error]", ErrorClass.OVERLOADED),
        ("[fail]", ErrorClass.PROVIDER_FAILED),
    ],
)
def test_finished_operations_without_a_video(gemini, simulator, marker, error_class) -> None:  # type: ignore[no-untyped-def]
    job = gemini.create(VideoRequest(model=MODEL, prompt=f"boat {marker}", size="720x1280",
                                     seconds=6))
    done = wait(gemini, job.id)
    assert done.status is JobStatus.FAILED and done.error is not None
    assert done.error.error_class is error_class
    if marker == "[moderation]":
        # A safety block is an operation that is done with no generatedSamples at all.
        assert "error" not in done.raw and "usage guidelines" in done.error.message
    assert simulator.counters()["jobs_billed"] == 0
    raises(lambda: download(gemini, job.id), error_class)


def test_overload_and_resets_are_ambiguous_creates(gemini, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(fail_5xx_rate=1.0)
    error = raises(lambda: gemini.create(REQUEST), ErrorClass.OVERLOADED)
    assert error.create_outcome is CreateOutcome.AMBIGUOUS and error.code in (
        "INTERNAL", "UNAVAILABLE")
    simulator.update_config(fail_5xx_rate=0.0, reset_rate=1.0)
    error = raises(lambda: gemini.create(REQUEST), ErrorClass.NETWORK)
    assert error.create_outcome is CreateOutcome.AMBIGUOUS


def test_generated_files_expire(gemini, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(content_ttl_seconds=1.0)
    job = gemini.create(REQUEST)
    assert wait(gemini, job.id).status is JobStatus.COMPLETED
    time.sleep(0.05)
    raises(lambda: download(gemini, job.id), ErrorClass.EXPIRED)


def test_gemini_cannot_list(gemini) -> None:  # type: ignore[no-untyped-def]
    assert gemini.can_list is False
    assert "cannot list" in raises(gemini.list_recent, ErrorClass.PROVIDER_FAILED).message


def test_every_call_goes_through_the_pacer_and_the_circuit(simulator) -> None:  # type: ignore[no-untyped-def]
    pacer, circuit = RecordingPacer(), RecordingCircuit()
    adapter = build(GeminiVeoAdapter, simulator, "gemini", pacer=pacer, circuit=circuit)
    job = adapter.create(REQUEST)
    wait(adapter, job.id)
    pacer.calls.clear()
    circuit.outcomes.clear()
    download(adapter, job.id)
    # The operation read and the download (its redirect included) are one paced call each.
    assert pacer.calls == ["other", "other"] and circuit.outcomes == [True, True]


# ---- at the HTTP edge: production hosts, MockTransport ---------------------------------------


def test_the_key_goes_to_google_and_never_follows_the_redirect() -> None:
    api = "generativelanguage.googleapis.com"
    storage = "https://storage.googleapis.com/veo-output/abc.mp4?X-Goog-Signature=s"
    name = f"models/{MODEL}/operations/op1"

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == api and request.url.path == f"/v1beta/{name}":
            uri = f"https://{api}/v1beta/files/abc:download?alt=media"
            return httpx.Response(200, json={"name": name, "done": True, "response": {
                "generateVideoResponse": {"generatedSamples": [{"video": {"uri": uri}}]}}})
        if request.url.host == api:
            return httpx.Response(302, headers={"location": storage})
        return httpx.Response(200, content=b"\x00\x00\x00\x18ftypmp42",
                              headers={"content-type": "video/mp4"})

    edge = EdgeRecorder(answer)
    adapter = GeminiVeoAdapter(base_url=f"https://{api}/v1beta", api_key=KEY, connect_timeout=1,
                               read_timeout=1, download_timeout=1, transport=edge.transport)
    assert download(adapter, name)[0] == "video/mp4"
    operation, file = edge.to_host(api)
    [stored] = edge.to_host("storage.googleapis.com")
    assert operation.headers["x-goog-api-key"] == KEY and file.headers["x-goog-api-key"] == KEY
    assert str(file.url) == f"https://{api}/v1beta/files/abc:download?alt=media"
    assert not carries_key(stored)


def test_classification_of_google_answers() -> None:
    def envelope(status: int, word: str, message: str, *details: dict[str, object]):  # type: ignore[no-untyped-def]
        body = {"error": {"code": status, "status": word, "message": message,
                          "details": list(details)}}
        return classify_response(httpx.Response(status, json=body))

    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12.7s"}
    limited = envelope(429, "RESOURCE_EXHAUSTED", "slow down", retry)
    assert (limited.error_class, limited.retry_after) == (ErrorClass.RATE_LIMITED, 12.7)
    assert envelope(400, "FAILED_PRECONDITION", "billing").error_class is (
        ErrorClass.QUOTA_EXHAUSTED)
    assert envelope(403, "PERMISSION_DENIED", "no").error_class is ErrorClass.AUTH
    assert envelope(503, "UNAVAILABLE", "busy").error_class is ErrorClass.OVERLOADED
    assert parse_retry_delay("3s") == 3.0 and parse_retry_delay("soon") is None
    assert classify_operation_error({"code": 3, "message": "bad"}).error_class is (
        ErrorClass.INVALID_REQUEST)
    assert classify_operation_error({"code": 3, "message": "blocked by safety filters"}) \
        .error_class is ErrorClass.MODERATION
    blocked = parse_operation({"name": "models/m/operations/o", "done": True, "response": {
        "generateVideoResponse": {"raiMediaFilteredCount": 1}}})
    assert blocked.error is not None and blocked.error.error_class is ErrorClass.MODERATION
