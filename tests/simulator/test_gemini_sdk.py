"""google-genai 3.6.1, unmodified, in Gemini Developer API mode (an API key) reads and downloads
Veo operations from the simulated Gemini API over HTTPS.

3.x refuses ``generate_videos`` with an API key before sending anything
(tests/providers/test_google_genai_surfaces.py), so the create is a plain POST of the shape the
2.x SDK sent; polling (``operations.get``) and ``files.download`` are the SDK's own. The SDK
recognises a video's file only in an ``https://`` URI, so the operation is polled on the
simulator's TLS port and its URI keeps that scheme; its download follows the file endpoint's
redirect with ``x-goog-api-key`` still attached, which the redirect target must accept.
"""

from __future__ import annotations

import io
import ssl
import time
from collections.abc import Iterator

import httpx
import pytest
from google import genai
from google.genai import errors, types

from workspace.simulator import SimulatorServer
from workspace.simulator.protocols.common import MediaHost

KEY = "gemini-key-0123456789abcdef"
MODEL = "veo-3.1-fast-generate-preview"


@pytest.fixture
def client(sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[genai.Client]:
    assert sim.tls_url is not None and sim.ca_file is not None
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI",
                 "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_GENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(sim.ca_file))
    sim.update_config(api_keys=[KEY])
    sdk = genai.Client(api_key=KEY, http_options=types.HttpOptions(
        base_url=sim.tls_url + "/gemini/", api_version="v1beta"))
    yield sdk
    sdk.close()


def create(sim: SimulatorServer, prompt: str = "a paper boat") -> types.GenerateVideosOperation:
    assert sim.ca_file is not None
    with httpx.Client(verify=ssl.create_default_context(cafile=str(sim.ca_file)),
                      timeout=10) as http:
        answer = http.post(
            f"{sim.tls_url}/gemini/v1beta/models/{MODEL}:predictLongRunning",
            headers={"x-goog-api-key": KEY},
            json={"instances": [{"prompt": prompt}], "parameters": {"durationSeconds": 4}})
    assert answer.status_code == 200, answer.text
    return types.GenerateVideosOperation(name=answer.json()["name"])


def finish(client: genai.Client,
           operation: types.GenerateVideosOperation) -> types.GenerateVideosOperation:
    deadline = time.monotonic() + 30
    while not operation.done:
        assert time.monotonic() < deadline, operation
        time.sleep(0.005)
        operation = client.operations.get(operation)
    return operation


def test_the_sdk_polls_and_downloads_a_video_over_https(client, sim) -> None:  # type: ignore[no-untyped-def]
    done = finish(client, create(sim))
    assert done.error is None
    generated = done.response.generated_videos[0]
    assert generated.video.uri.startswith(sim.tls_url + "/gemini/v1beta/files/")
    data = client.files.download(file=generated)
    assert data[4:8] == b"ftyp" and generated.video.video_bytes == data
    streamed = io.BytesIO()
    client.files.download(file=generated.video, destination=streamed)
    assert streamed.getvalue() == data
    host = sim.routes["/cdn"]
    assert isinstance(host, MediaHost)
    # The SDK carried the key across the redirect each time; Reelhouse's adapter never does
    # (tests/providers/test_gemini_adapter.py asserts 0).
    assert host.credentialed_requests == 2


def test_a_blocked_video_reads_as_filtered(client, sim) -> None:  # type: ignore[no-untyped-def]
    done = finish(client, create(sim, "a harbour [moderation]"))
    assert done.response.generated_videos is None
    assert done.response.rai_media_filtered_count == 1


def test_a_wrong_key_is_refused_as_google_does(client, sim) -> None:  # type: ignore[no-untyped-def]
    operation = create(sim)
    sim.update_config(api_keys=["another-key-0123456789"])
    with pytest.raises(errors.ClientError) as caught:
        client.operations.get(operation)
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
