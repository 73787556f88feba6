"""google-genai 3.6.1, unmodified, in Agent Platform mode (``vertexai=True``) drives the
simulated Agent Platform (formerly Vertex AI) Veo API over HTTPS.

The credentials are google-auth's own service-account credentials built from a key file whose
``token_uri`` is the simulator's token endpoint, so the SDK signs and exchanges the assertion
itself (google-auth posts it with ``requests``: REQUESTS_CA_BUNDLE trusts the simulator's
authority; the SDK's httpx client reads SSL_CERT_FILE). With a project and location the SDK
always builds Google's regional host, so each call names the simulator through the SDK's
per-request ``http_options.base_url``; the paths below it (``v1beta1/projects/…``) are the
SDK's own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from google import genai
from google.auth.exceptions import RefreshError
from google.genai import errors, types
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from tests.providers.vertex_keys import CLIENT_EMAIL, PROJECT, key_file
from workspace.simulator import SimulatorServer

from .helpers import make_png

MODEL = "veo-3.1-fast-generate-001"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


@pytest.fixture(autouse=True)
def _trust_the_simulator(sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sim.ca_file is not None
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI",
                 "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_GENAI_API_VERSION",
                 "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_VERTEX_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(sim.ca_file))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sim.ca_file))
    sim.update_config(api_keys=[CLIENT_EMAIL, "express-key-0123456789"])


def options(sim: SimulatorServer) -> types.HttpOptions:
    assert sim.tls_url is not None
    return types.HttpOptions(base_url=sim.tls_url + "/vertex/")


def account(sim: SimulatorServer) -> service_account.Credentials:
    import json

    info = json.loads(key_file(token_uri=f"{sim.tls_url}/vertex/token"))
    return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[genai.Client]:
    sdk = genai.Client(vertexai=True, project=PROJECT, location="us-central1",
                       credentials=account(sim))
    yield sdk
    sdk.close()


def generate(client: genai.Client, sim: SimulatorServer, prompt: str = "a lighthouse",
             **config: Any) -> types.GenerateVideosOperation:
    settings = {"duration_seconds": 4, **config}
    return client.models.generate_videos(
        model=MODEL, source=types.GenerateVideosSource(prompt=prompt),
        config=types.GenerateVideosConfig(http_options=options(sim), **settings),
    )


def finish(client: genai.Client, sim: SimulatorServer,
           operation: types.GenerateVideosOperation) -> types.GenerateVideosOperation:
    deadline = time.monotonic() + 30
    while not operation.done:
        assert time.monotonic() < deadline, operation
        time.sleep(0.005)
        operation = client.operations.get(
            operation, config=types.GetOperationConfig(http_options=options(sim)))
    return operation


def test_service_account_create_poll_and_inline_video(client, sim) -> None:  # type: ignore[no-untyped-def]
    png = make_png(1280, 720)
    operation = client.models.generate_videos(
        model=MODEL,
        source=types.GenerateVideosSource(
            prompt="a lighthouse at dusk",
            image=types.Image(image_bytes=png, mime_type="image/png")),
        config=types.GenerateVideosConfig(
            http_options=options(sim), duration_seconds=4, seed=7, generate_audio=False,
            negative_prompt="rain", number_of_videos=2, aspect_ratio="16:9",
            resolution="720p"),
    )
    assert operation.name.startswith(
        f"projects/{PROJECT}/locations/us-central1/publishers/google/models/{MODEL}/operations/")
    done = finish(client, sim, operation)
    assert done.error is None and done.response is not None
    videos = done.response.generated_videos
    assert videos is not None and len(videos) == 2
    video = videos[0].video
    assert video is not None and video.mime_type == "video/mp4"
    assert video.video_bytes is not None and video.video_bytes[4:8] == b"ftyp"
    [entry] = sim.creates()
    assert (entry["api_version"], entry["seed"], entry["audio"], entry["samples"]) == (
        "v1beta1", 7, False, 2)
    assert entry["negative_prompt"] == "rain" and entry["images"][0]["role"] == "first_frame"
    # Two silent Fast 720p videos of 4 s: 2 x 8 c/s x 4 s.
    assert sim.counters()["billed_cents"] == 64


def test_a_storage_uri_answers_with_gcs_uris(client, sim) -> None:  # type: ignore[no-untyped-def]
    done = finish(client, sim, generate(client, sim, output_gcs_uri="gs://reelhouse-out/veo"))
    videos = done.response.generated_videos
    assert videos[0].video.uri.startswith("gs://reelhouse-out/veo/")
    assert videos[0].video.video_bytes is None


def test_blocked_videos_carry_the_filter_reasons(client, sim) -> None:  # type: ignore[no-untyped-def]
    done = finish(client, sim, generate(client, sim, prompt="a harbour [moderation]"))
    assert done.error is None and done.response.generated_videos is None
    assert done.response.rai_media_filtered_count == 1
    assert "usage guidelines" in done.response.rai_media_filtered_reasons[0]


def test_a_failed_operation_carries_an_rpc_status(client, sim) -> None:  # type: ignore[no-untyped-def]
    done = finish(client, sim, generate(client, sim, prompt="a harbour [fail]"))
    assert done.error is not None and done.error["code"] == 13


def test_an_invalid_request_is_a_400(client, sim) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.ClientError) as caught:
        generate(client, sim, duration_seconds=5)
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert sim.creates() == []


def test_a_token_google_does_not_know_is_a_401(sim) -> None:  # type: ignore[no-untyped-def]
    stale = user_credentials.Credentials(token="ya29.not-issued-here")
    sdk = genai.Client(vertexai=True, project=PROJECT, location="us-central1", credentials=stale)
    with pytest.raises(errors.ClientError) as caught:
        generate(sdk, sim)
    assert caught.value.code == 401 and caught.value.status == "UNAUTHENTICATED"


def test_a_refused_service_account_fails_at_the_token_endpoint(client, sim) -> None:  # type: ignore[no-untyped-def]
    sim.update_config(api_keys=["someone-else@example.iam.gserviceaccount.com"])
    with pytest.raises(RefreshError, match="invalid_grant"):
        generate(client, sim)


def test_an_account_whose_access_was_withdrawn_is_a_403(client, sim) -> None:  # type: ignore[no-untyped-def]
    operation = generate(client, sim)
    sim.update_config(api_keys=["someone-else@example.iam.gserviceaccount.com"])
    with pytest.raises(errors.ClientError) as caught:
        client.operations.get(operation,
                              config=types.GetOperationConfig(http_options=options(sim)))
    assert caught.value.code == 403 and caught.value.status == "PERMISSION_DENIED"


def test_the_per_minute_quota_is_a_429_with_a_retry_delay(client, sim) -> None:  # type: ignore[no-untyped-def]
    sim.update_config(rpm_limit=1, rpm_scope="create")
    generate(client, sim)
    with pytest.raises(errors.ClientError) as caught:
        generate(client, sim)
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    details = caught.value.details["error"]["details"]
    assert any(d["@type"].endswith("RetryInfo") for d in details)


def test_express_mode_with_an_api_key(sim) -> None:  # type: ignore[no-untyped-def]
    sdk = genai.Client(vertexai=True, api_key="express-key-0123456789")
    done = finish(sdk, sim, generate(sdk, sim))
    assert done.name.startswith(f"publishers/google/models/{MODEL}/operations/")
    assert done.response.generated_videos[0].video.video_bytes[4:8] == b"ftyp"
    [entry] = sim.creates()
    assert entry["express"] is True
