"""The Agent Platform (Vertex AI) Veo adapter: against the simulator over real HTTP, and at the
HTTP edge for what the simulator cannot show (where the assertion goes, its signature, the
token's reuse and refresh)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.providers.adapter_helpers import (
    EdgeRecorder,
    build,
    download,
    keep_logs,
    raises,
    wait,
)
from tests.providers.vertex_keys import CLIENT_EMAIL, PROJECT, key_file, private_key
from workspace.providers.adapters.base import (
    InputImage,
    JobStatus,
    Operation,
    ProviderJob,
    VideoRequest,
)
from workspace.providers.errors import CreateOutcome, ErrorClass
from workspace.providers.integrations.vertex.adapter import (
    VertexVeoAdapter,
    location_for,
    parse_operation,
    token_uri_for,
)
from workspace.providers.integrations.vertex.credentials import TOKENS
from workspace.simulator.protocols.vertex import VertexVeoProtocol
from workspace.simulator.server import SimulatorServer

MODEL = "veo-3.1-fast-generate-001"
REQUEST = VideoRequest(model=MODEL, prompt="a paper boat", size="1280x720", seconds=4)
KEY_FILE = key_file()


@pytest.fixture(autouse=True)
def _no_cached_tokens() -> Iterator[None]:
    TOKENS.clear()
    yield
    TOKENS.clear()


@pytest.fixture
def vertex(simulator: SimulatorServer) -> Iterator[VertexVeoAdapter]:
    simulator.update_config(api_keys=[CLIENT_EMAIL])
    adapter = build(VertexVeoAdapter, simulator, "vertex", key=KEY_FILE)
    assert isinstance(adapter, VertexVeoAdapter)
    yield adapter
    adapter.close()


def _png() -> bytes:
    from tests.simulator.helpers import make_png

    return make_png(1280, 720)


def test_service_account_create_poll_and_inline_download(vertex, simulator, caplog) -> None:  # type: ignore[no-untyped-def]
    keep_logs(caplog)
    request = VideoRequest(
        model=MODEL, prompt="a paper boat", size="1280x720", seconds=4, seed=42, audio=False,
        negative_prompt="rain",
        images=(InputImage("first_frame", _png(), "image/png", 1280, 720),),
    )
    job = vertex.create(request)
    assert job.id.startswith(
        f"projects/{PROJECT}/locations/us-central1/publishers/google/models/{MODEL}/operations/"
    )
    done = wait(vertex, job.id)
    assert (done.status, done.progress, done.model) == (JobStatus.COMPLETED, 100, MODEL)
    content_type, data = download(vertex, job.id)
    assert content_type == "video/mp4" and data[4:8] == b"ftyp"
    [entry] = simulator.creates()
    assert (entry["protocol"], entry["api_version"], entry["express"]) == ("vertex", "v1", False)
    assert (entry["seed"], entry["audio"], entry["samples"], entry["negative_prompt"]) == (
        42, False, 1, "rain",
    )
    assert [image["role"] for image in entry["images"]] == ["first_frame"]
    # The silent Fast price at 720p: 8 cents a second.
    assert simulator.counters()["billed_cents"] == 8 * 4
    for record in caplog.records:
        assert "PRIVATE KEY" not in record.getMessage() and "ya29." not in record.getMessage()


def test_sound_is_asked_for_unless_switched_off(vertex, simulator) -> None:  # type: ignore[no-untyped-def]
    wait(vertex, vertex.create(REQUEST).id)
    [entry] = simulator.creates()
    assert entry["audio"] is True and entry["seed"] is None
    assert simulator.counters()["billed_cents"] == 10 * 4


def test_an_account_google_refuses_is_an_auth_failure_before_anything_is_created(  # type: ignore[no-untyped-def]
    vertex, simulator
) -> None:
    simulator.update_config(api_keys=["someone-else@example.iam.gserviceaccount.com"])
    error = raises(lambda: vertex.create(REQUEST), ErrorClass.AUTH)
    assert error.code == "invalid_grant" and error.create_outcome is CreateOutcome.NOT_CREATED
    assert simulator.creates() == []


def test_a_token_the_api_stops_accepting_is_fetched_again_once(vertex, simulator) -> None:  # type: ignore[no-untyped-def]
    job = vertex.create(REQUEST)
    api = simulator.routes["/vertex"]
    assert isinstance(api, VertexVeoProtocol)
    api.revoke_tokens()
    assert wait(vertex, job.id).status is JobStatus.COMPLETED
    assert api.tokens_issued == 1


def test_a_revoked_permission_is_auth(vertex, simulator) -> None:  # type: ignore[no-untyped-def]
    job = vertex.create(REQUEST)
    simulator.update_config(api_keys=["someone-else@example.iam.gserviceaccount.com"])
    error = raises(lambda: vertex.retrieve(job.id), ErrorClass.AUTH)
    assert error.http_status == 403 and error.code == "PERMISSION_DENIED"


def test_rate_limits_carry_googles_retry_delay(vertex, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(rpm_limit=1, rpm_scope="create")
    vertex.create(REQUEST)
    error = raises(lambda: vertex.create(REQUEST), ErrorClass.RATE_LIMITED)
    assert error.retry_after is not None and error.retry_after >= 1
    assert error.create_outcome is CreateOutcome.NOT_CREATED


@pytest.mark.parametrize(
    ("trigger", "error_class"),
    [("[moderation]", ErrorClass.MODERATION), ("[fail]", ErrorClass.PROVIDER_FAILED),
     ("[processing_error]", ErrorClass.OVERLOADED)],
)
def test_failed_operations_are_classified(vertex, trigger, error_class) -> None:  # type: ignore[no-untyped-def]
    job = vertex.create(VideoRequest(model=MODEL, prompt=f"a boat {trigger}", size="1280x720",
                                     seconds=4))
    done = wait(vertex, job.id)
    assert done.status is JobStatus.FAILED and done.error is not None
    assert done.error.error_class is error_class


def test_an_invalid_request_is_refused_by_google_as_invalid(vertex) -> None:  # type: ignore[no-untyped-def]
    # Lite has no 4k: the simulator answers 400 INVALID_ARGUMENT.
    lite_4k = VideoRequest(model="veo-3.1-lite-generate-001", prompt="x", size="3840x2160",
                           seconds=8)
    error = raises(lambda: vertex.create(lite_4k), ErrorClass.INVALID_REQUEST)
    assert error.http_status == 400


def test_express_mode_sends_an_api_key_to_the_paths_without_a_project(simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(api_keys=["express-key-0123456789"])
    adapter = build(VertexVeoAdapter, simulator, "vertex", key="express-key-0123456789")
    try:
        job = adapter.create(REQUEST)
        assert job.id.startswith(f"publishers/google/models/{MODEL}/operations/")
        assert wait(adapter, job.id).status is JobStatus.COMPLETED
        assert download(adapter, job.id)[1][4:8] == b"ftyp"
    finally:
        adapter.close()
    [entry] = simulator.creates()
    assert entry["express"] is True


def test_extensions_and_edits_are_not_offered() -> None:
    adapter = VertexVeoAdapter(base_url="https://us-central1-aiplatform.googleapis.com",
                               api_key=KEY_FILE, connect_timeout=1, read_timeout=1,
                               download_timeout=1,
                               transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    for operation in (Operation.EXTEND, Operation.EDIT):
        request = VideoRequest(model=MODEL, prompt="x", size="1280x720", seconds=8,
                               operation=operation, source_job_id="x")
        raises(lambda request=request: adapter.create(request), ErrorClass.INVALID_REQUEST)


# ---- at the HTTP edge ---------------------------------------------------------------------


def _google(recorder_log: list[str]) -> EdgeRecorder:
    """Google's two hosts: the token endpoint and the regional API."""
    tokens = iter(["ya29.first-token", "ya29.second-token"])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "oauth2.googleapis.com":
            return httpx.Response(200, json={"access_token": next(tokens), "expires_in": 3599,
                                             "token_type": "Bearer"})
        recorder_log.append(request.headers.get("authorization", ""))
        if request.headers.get("authorization") == "Bearer ya29.first-token" and len(
                recorder_log) > 2:
            return httpx.Response(401, json={"error": {"code": 401, "status": "UNAUTHENTICATED",
                                                       "message": "expired"}})
        name = (f"projects/{PROJECT}/locations/europe-west4/publishers/google/models/{MODEL}/"
                "operations/123")
        return httpx.Response(200, json={"name": name})

    return EdgeRecorder(answer)


def _edge_adapter(recorder: EdgeRecorder, key: str = KEY_FILE) -> VertexVeoAdapter:
    return VertexVeoAdapter(base_url="https://europe-west4-aiplatform.googleapis.com/v1/",
                            api_key=key, connect_timeout=1, read_timeout=1, download_timeout=1,
                            transport=recorder.transport)


def test_the_assertion_goes_to_googles_endpoint_signed_by_the_key_file() -> None:
    seen: list[str] = []
    recorder = _google(seen)
    # A key file naming another token endpoint: it is not followed.
    adapter = _edge_adapter(recorder, key_file(token_uri="https://collector.example/token"))
    adapter.create(REQUEST)
    [token_call] = recorder.to_host("oauth2.googleapis.com")
    assert recorder.to_host("collector.example") == []
    form = parse_qs(token_call.content.decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    header_part, claims_part, signature = form["assertion"][0].split(".")
    claims = json.loads(base64.urlsafe_b64decode(claims_part + "=="))
    assert claims["iss"] == CLIENT_EMAIL and claims["aud"] == "https://oauth2.googleapis.com/token"
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["exp"] - claims["iat"] == 3600
    private_key().public_key().verify(
        base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
        f"{header_part}.{claims_part}".encode(), padding.PKCS1v15(), hashes.SHA256(),
    )
    [create] = recorder.to_host("europe-west4-aiplatform.googleapis.com")
    assert create.url.path == (f"/v1/projects/{PROJECT}/locations/europe-west4/publishers/google/"
                               f"models/{MODEL}:predictLongRunning")
    assert create.headers["authorization"] == "Bearer ya29.first-token"
    assert "x-goog-api-key" not in create.headers
    body = json.loads(create.content)
    assert body["parameters"] == {"aspectRatio": "16:9", "resolution": "720p",
                                  "durationSeconds": 4, "sampleCount": 1, "generateAudio": True}
    assert "storageUri" not in body["parameters"]


def test_one_token_serves_later_adapters_and_a_401_fetches_one_more() -> None:
    seen: list[str] = []
    recorder = _google(seen)
    _edge_adapter(recorder).create(REQUEST)
    _edge_adapter(recorder).create(REQUEST)
    assert len(recorder.to_host("oauth2.googleapis.com")) == 1
    # The third call's token is refused (401): one new token, the call sent again with it.
    job = _edge_adapter(recorder).create(REQUEST)
    assert job.id.endswith("/operations/123")
    assert len(recorder.to_host("oauth2.googleapis.com")) == 2
    assert seen[-2:] == ["Bearer ya29.first-token", "Bearer ya29.second-token"]


def test_a_malformed_key_file_sends_nothing() -> None:
    recorder = EdgeRecorder(lambda request: httpx.Response(500))
    error = raises(lambda: _edge_adapter(recorder, '{"type": "authorized_user"}').create(REQUEST),
                   ErrorClass.AUTH)
    assert error.create_outcome is CreateOutcome.NOT_CREATED and recorder.requests == []
    assert "service-account" in error.message


def test_token_endpoint_and_location_come_from_the_base_url() -> None:
    assert token_uri_for("https://us-central1-aiplatform.googleapis.com") == (
        "https://oauth2.googleapis.com/token")
    assert token_uri_for("https://127.0.0.1:9001/vertex") == "https://127.0.0.1:9001/vertex/token"
    assert location_for("https://europe-west4-aiplatform.googleapis.com") == "europe-west4"
    assert location_for("https://aiplatform.googleapis.com") == "global"
    assert location_for("http://127.0.0.1:9000/vertex") == "us-central1"


def test_an_answer_naming_only_a_bucket_is_refused_honestly() -> None:
    name = f"projects/p/locations/us-central1/publishers/google/models/{MODEL}/operations/1"
    job = parse_operation({"name": name, "done": True, "response": {
        "videos": [{"gcsUri": "gs://bucket/1/sample_0.mp4", "mimeType": "video/mp4"}]}})
    assert job.status is JobStatus.COMPLETED
    adapter = _edge_adapter(EdgeRecorder(lambda request: httpx.Response(500)))
    error = raises(lambda: adapter.download(name, variant="video", destination=io.BytesIO(),
                                            retrieved=job), ErrorClass.PROVIDER_FAILED)
    assert "bucket" in error.message


def test_parse_operation_reads_blocks_and_refuses_strange_names() -> None:
    name = f"publishers/google/models/{MODEL}/operations/1"
    blocked = parse_operation({"name": name, "done": True, "response": {
        "raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["child safety"]}})
    assert blocked.error is not None and blocked.error.error_class is ErrorClass.MODERATION
    assert blocked.error.message == "child safety"
    running = parse_operation({"name": name})
    assert isinstance(running, ProviderJob) and running.status is JobStatus.IN_PROGRESS
    raises(lambda: parse_operation({"name": "../../evil/operations/1"}),
           ErrorClass.PROVIDER_FAILED)


def test_a_cached_token_is_reused_only_by_the_key_that_obtained_it() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    seen: list[str] = []
    recorder = _google(seen)
    _edge_adapter(recorder).create(REQUEST)
    # Same account and key id in the file, another private key: it must earn its own token.
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    _edge_adapter(recorder, key_file(private_key=other)).create(REQUEST)
    assert len(recorder.to_host("oauth2.googleapis.com")) == 2
