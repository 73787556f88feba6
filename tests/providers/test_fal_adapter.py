"""The fal queue adapter end to end against the simulator over real HTTP, plus its edge rules."""

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
from workspace.providers.errors import CreateOutcome, ErrorClass, ProviderError
from workspace.providers.integrations.fal.adapter import (
    FalQueueAdapter,
    app_path,
    classify_response,
    split_job_id,
)
from workspace.simulator.server import SimulatorServer

REQUEST = VideoRequest(model="fal-ai/veo3.1", prompt="a paper boat", size="1280x720", seconds=4)


@pytest.fixture
def fal(simulator: SimulatorServer) -> Iterator[FalQueueAdapter]:
    simulator.update_config(api_keys=[KEY])
    adapter = build(FalQueueAdapter, simulator, "fal")
    assert isinstance(adapter, FalQueueAdapter)
    yield adapter
    adapter.close()


def test_submit_poll_result_download(fal, simulator, caplog) -> None:  # type: ignore[no-untyped-def]
    keep_logs(caplog)
    job = fal.create(REQUEST)
    endpoint, request_id = split_job_id(job.id, "unused")
    assert endpoint == "fal-ai/veo3.1" and job.id == f"fal-ai/veo3.1/requests/{request_id}"
    done = wait(fal, job.id)
    assert (done.status, done.progress, done.model) == (JobStatus.COMPLETED, 100, "fal-ai/veo3.1")
    assert done.raw["result"]["video"]["content_type"] == "video/mp4"
    content_type, data = download(fal, job.id)
    assert content_type == "video/mp4" and data[4:8] == b"ftyp"
    [entry] = simulator.creates()
    assert (entry["protocol"], entry["model"], entry["size"], entry["seconds"]) == (
        "fal", "fal-ai/veo3.1", "1280x720", 4,
    )
    assert entry["prompt"] == "a paper boat" and entry["audio"] is True
    assert simulator.counters()["billed_cents"] == 40 * 4
    assert media_host(simulator).credentialed_requests == 0
    assert_key_never_leaked(caplog)


def test_queued_and_in_progress_are_reported(fal, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(time_scale=8.0)
    job = fal.create(REQUEST)
    seen = set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        current = fal.retrieve(job.id)
        seen.add(current.status)
        if current.status is JobStatus.COMPLETED:
            break
        time.sleep(0.003)
    assert {JobStatus.QUEUED, JobStatus.IN_PROGRESS, JobStatus.COMPLETED} <= seen


def test_a_model_under_an_app_is_polled_at_the_app(fal, simulator) -> None:  # type: ignore[no-untyped-def]
    # fal-ai/veo3.1/fast is an endpoint of the app fal-ai/veo3.1: status and result live there.
    request = VideoRequest(model="fal-ai/veo3.1/fast", prompt="waves", size="1080x1920", seconds=8)
    job = fal.create(request)
    assert job.id.startswith("fal-ai/veo3.1/fast/requests/")
    assert app_path("fal-ai/veo3.1/fast") == "fal-ai/veo3.1"
    done = wait(fal, job.id)
    assert done.status is JobStatus.COMPLETED and done.model == "fal-ai/veo3.1/fast"
    [entry] = simulator.creates()
    assert (entry["endpoint"], entry["size"]) == ("fal-ai/veo3.1/fast", "1080x1920")
    assert simulator.counters()["billed_cents"] == 15 * 8


def test_a_wrong_key_is_an_auth_failure_that_names_no_key(simulator, caplog) -> None:  # type: ignore[no-untyped-def]
    keep_logs(caplog)
    simulator.update_config(api_keys=[KEY])
    adapter = build(FalQueueAdapter, simulator, "fal", key=WRONG_KEY)
    error = raises(lambda: adapter.create(REQUEST), ErrorClass.AUTH)
    assert error.create_outcome is CreateOutcome.NOT_CREATED
    raises(lambda: adapter.retrieve("reelhouse-key-check"), ErrorClass.AUTH)
    good = build(FalQueueAdapter, simulator, "fal")
    raises(lambda: good.retrieve("reelhouse-key-check"), ErrorClass.NOT_FOUND)
    assert_key_never_leaked(caplog, error.message)


def test_rate_limit_carries_the_retry_hint(simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(rpm_limit=1, time_scale=1.0)
    adapter = build(FalQueueAdapter, simulator, "fal")
    adapter.create(REQUEST)
    error = raises(lambda: adapter.create(REQUEST), ErrorClass.RATE_LIMITED)
    assert error.retry_after is not None and error.retry_after >= 1


def test_a_locked_account_is_quota_exhausted(fal, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(insufficient_quota=True)
    error = raises(lambda: fal.create(REQUEST), ErrorClass.QUOTA_EXHAUSTED)
    assert "balance" in error.message and error.http_status == 403


def test_422_validation_errors_are_invalid_requests_in_fals_words(fal) -> None:  # type: ignore[no-untyped-def]
    error = raises(lambda: fal.create(VideoRequest(model="fal-ai/veo3.1", prompt="x",
                                                   size="1280x720", seconds=5)),
                   ErrorClass.INVALID_REQUEST)
    assert error.http_status == 422 and error.code == "literal_error"
    assert "duration" in error.message
    error = raises(lambda: fal.create(VideoRequest(model="fal-ai/veo3.1/fast", prompt="x",
                                                   size="3840x2160", seconds=8)),
                   ErrorClass.INVALID_REQUEST)
    assert "resolution" in error.message


@pytest.mark.parametrize(
    ("marker", "error_class", "code"),
    [
        ("[moderation]", ErrorClass.MODERATION, "content_policy_violation"),
        ("[processing_error]", ErrorClass.OVERLOADED, "runner_scheduling_failure"),
        ("[fail]", ErrorClass.PROVIDER_FAILED, "internal_server_error"),
    ],
)
def test_failed_requests_are_classified(fal, simulator, marker, error_class, code) -> None:  # type: ignore[no-untyped-def]
    job = fal.create(VideoRequest(model="fal-ai/veo3.1", prompt=f"boat {marker}",
                                  size="720x1280", seconds=6))
    done = wait(fal, job.id)
    assert done.status is JobStatus.FAILED and done.error is not None
    assert (done.error.error_class, done.error.code) == (error_class, code)
    assert simulator.counters()["jobs_billed"] == 0
    # The result itself is the typed error answer (422 content_policy_violation, 503, 500).
    with pytest.raises(ProviderError):
        download(fal, job.id)


def test_a_result_that_is_a_422_without_a_status_error_fails_the_job() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            return httpx.Response(200, json={"status": "COMPLETED", "logs": None})
        return httpx.Response(422, json={"detail": [{
            "loc": ["body", "prompt"], "msg": "flagged", "type": "content_policy_violation"}]})

    edge = EdgeRecorder(answer)
    adapter = FalQueueAdapter(base_url="queue.fal.run", api_key=KEY, connect_timeout=1,
                              read_timeout=1, download_timeout=1, transport=edge.transport)
    job = adapter.retrieve("fal-ai/veo3.1/requests/r1")
    assert job.status is JobStatus.FAILED and job.error is not None
    assert job.error.error_class is ErrorClass.MODERATION
    assert [str(r.url) for r in edge.requests] == [
        "https://queue.fal.run/fal-ai/veo3.1/requests/r1/status?logs=0",
        "https://queue.fal.run/fal-ai/veo3.1/requests/r1",
    ]


def test_overload_and_resets_are_ambiguous_creates(fal, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(fail_5xx_rate=1.0)
    error = raises(lambda: fal.create(REQUEST), ErrorClass.OVERLOADED)
    assert error.create_outcome is CreateOutcome.AMBIGUOUS
    simulator.update_config(fail_5xx_rate=0.0, reset_rate=1.0)
    error = raises(lambda: fal.create(REQUEST), ErrorClass.NETWORK)
    assert error.create_outcome is CreateOutcome.AMBIGUOUS
    simulator.update_config(reset_rate=0.0)
    raises(lambda: fal.create(VideoRequest(model="fal-ai/veo3.1", prompt="[fail_5xx_after_create]",
                                           size="1280x720", seconds=4)), ErrorClass.OVERLOADED)
    assert [e["answer"] for e in simulator.creates()] == ["server_error"]


def test_outputs_expire(fal, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(content_ttl_seconds=1.0)
    job = fal.create(REQUEST)
    assert wait(fal, job.id).status is JobStatus.COMPLETED
    time.sleep(0.05)
    error = raises(lambda: download(fal, job.id), ErrorClass.EXPIRED)
    assert "expired" in error.message


def test_fal_cannot_list(fal) -> None:  # type: ignore[no-untyped-def]
    assert fal.can_list is False
    error = raises(lambda: fal.list_recent(), ErrorClass.PROVIDER_FAILED)
    assert "cannot list" in error.message


def test_every_call_goes_through_the_pacer_and_the_circuit(simulator) -> None:  # type: ignore[no-untyped-def]
    pacer, circuit = RecordingPacer(), RecordingCircuit()
    adapter = build(FalQueueAdapter, simulator, "fal", pacer=pacer, circuit=circuit)
    job = adapter.create(REQUEST)
    wait(adapter, job.id)
    calls = len(pacer.calls)
    download(adapter, job.id)
    assert pacer.calls[0] == "create" and len(pacer.calls) == calls + 2
    assert circuit.allowed == len(pacer.calls) == len(circuit.outcomes)


# ---- at the HTTP edge: production hosts, MockTransport ---------------------------------------


def test_the_key_goes_to_the_queue_only_never_to_the_cdn() -> None:
    cdn = "https://v3b.fal.media/files/b/abc/output.mp4"

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "queue.fal.run":
            return httpx.Response(200, json={"video": {"url": cdn}})
        return httpx.Response(200, content=b"\x00\x00\x00\x18ftypmp42",
                              headers={"content-type": "video/mp4"})

    edge = EdgeRecorder(answer)
    # FAL_QUEUE_RUN_HOST holds a bare host, as the SDK's variable does.
    adapter = FalQueueAdapter(base_url="queue.fal.run", api_key=KEY, connect_timeout=1,
                              read_timeout=1, download_timeout=1, transport=edge.transport)
    download(adapter, "fal-ai/veo3.1/image-to-video/requests/r1")
    [api] = edge.to_host("queue.fal.run")
    [file] = edge.to_host("v3b.fal.media")
    assert str(api.url) == "https://queue.fal.run/fal-ai/veo3.1/requests/r1"
    assert api.headers["authorization"] == f"Key {KEY}"
    assert "authorization" not in file.headers and not carries_key(file)


def test_classification_of_fal_answers() -> None:
    def answer(status: int, body: object, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return classify_response(httpx.Response(status, json=body, headers=headers or {}))

    assert answer(503, {"detail": "x", "error_type": "runner_disconnected"}).error_class is (
        ErrorClass.OVERLOADED)
    assert answer(504, {"detail": "x"}, {"x-fal-error-type": "request_timeout"}).code == (
        "request_timeout")
    assert answer(402, {"detail": "Payment required"}).error_class is ErrorClass.QUOTA_EXHAUSTED
    assert answer(403, {"detail": "Forbidden"}).error_class is ErrorClass.AUTH
    assert answer(400, {"status": "ALREADY_COMPLETED"}).code == "ALREADY_COMPLETED"
    policy = answer(422, {"detail": [{"loc": ["body", "prompt"], "msg": "no",
                                      "type": "content_policy_violation"}]})
    assert policy.error_class is ErrorClass.MODERATION and policy.message == "prompt: no"
