"""The simulator speaks the Gemini API's Veo surface as python-genai and the Veo guide describe."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from workspace.simulator import SimulatorServer
from workspace.simulator.protocols.common import MediaHost

from .helpers import API_KEY, SSL_CONTEXT, make_png

MODEL = "veo-3.1-generate-preview"
CREATE = f"/v1beta/models/{MODEL}:predictLongRunning"


@pytest.fixture
def gemini(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url + "/gemini", headers={"x-goog-api-key": API_KEY},
                      timeout=10, verify=SSL_CONTEXT) as client:
        yield client


def body(prompt: str = "a lighthouse", **parameters: Any) -> dict[str, Any]:
    return {"instances": [{"prompt": prompt}],
            "parameters": {"aspectRatio": "16:9", "durationSeconds": 4, **parameters}}


def start(client: httpx.Client, payload: dict[str, Any] | None = None,
          path: str = CREATE) -> str:
    response = client.post(path, json=payload or body())
    assert response.status_code == 200, response.text
    name: str = response.json()["name"]
    return name


def until_done(client: httpx.Client, name: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1beta/{name}")
        assert response.status_code == 200, response.text
        operation: dict[str, Any] = response.json()
        if operation.get("done"):
            return operation
        assert set(operation) == {"name"}, operation
        assert time.monotonic() < deadline
        time.sleep(0.005)


def google_error(response: httpx.Response, code: int, status: str) -> dict[str, Any]:
    assert response.status_code == code, response.text
    error: dict[str, Any] = response.json()["error"]
    assert (error["code"], error["status"]) == (code, status) and error["message"]
    return error


def test_an_operation_finishes_with_a_file_behind_an_authenticated_redirect(
        gemini: httpx.Client, sim: SimulatorServer) -> None:
    name = start(gemini)
    assert re.fullmatch(rf"models/{MODEL}/operations/[a-z0-9]+", name)
    done = until_done(gemini, name)
    response = done["response"]
    assert response["@type"].endswith("PredictLongRunningResponse")
    [sample] = response["generateVideoResponse"]["generatedSamples"]
    uri = sample["video"]["uri"]
    assert uri.startswith(f"{sim.url}/gemini/v1beta/files/") and uri.endswith(
        ":download?alt=media")
    assert httpx.get(uri, verify=SSL_CONTEXT).status_code == 403  # the file needs the key
    redirect = httpx.get(uri, headers={"x-goog-api-key": API_KEY}, verify=SSL_CONTEXT)
    assert redirect.status_code == 302 and "/cdn/" in redirect.headers["location"]
    video = httpx.get(redirect.headers["location"], verify=SSL_CONTEXT)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    # google-genai follows the redirect with the key still attached: the storage link answers
    # it, but counts it, so an adapter test can still show it never sends one.
    host = sim.routes["/cdn"]
    assert isinstance(host, MediaHost) and host.credentialed_requests == 0
    assert httpx.get(redirect.headers["location"], headers={"x-goog-api-key": API_KEY},
                     verify=SSL_CONTEXT).status_code == 200
    assert host.credentialed_requests == 1
    assert sim.counters()["billed_cents"] == 40 * 4


def test_api_key_in_header_or_query(sim: SimulatorServer) -> None:
    sim.update_config(api_keys=[API_KEY])
    url = sim.url + "/gemini" + CREATE
    missing = httpx.post(url, json=body(), verify=SSL_CONTEXT)
    google_error(missing, 403, "PERMISSION_DENIED")
    wrong = httpx.post(url, json=body(), headers={"x-goog-api-key": "AIzaWrong"},
                       verify=SSL_CONTEXT)
    error = google_error(wrong, 400, "INVALID_ARGUMENT")
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    assert httpx.post(url, params={"key": API_KEY}, json=body(),
                      verify=SSL_CONTEXT).status_code == 200
    assert sim.counters()["unauthorized_401"] == 2


@pytest.mark.parametrize(
    ("model", "payload", "words"),
    [
        (MODEL, body(resolution="1080p"), "8 seconds"),
        (MODEL, body(durationSeconds=5), "duration"),
        (MODEL, body(durationSeconds="8", aspectRatio="1:1"), "aspect ratio"),
        (MODEL, body(seed=3), "Vertex"),
        (MODEL, body(generateAudio=False), "Vertex"),
        (MODEL, body(sampleCount=2), "sampleCount"),
        (MODEL, body(personGeneration="allow_adult"), "personGeneration"),
        ("veo-3.1-lite-generate-preview", body(resolution="4k", durationSeconds=8), "4k"),
        (MODEL, {"instances": [{"prompt": "x", "image": {"gcsUri": "gs://b/a.png"}}]}, "gcsUri"),
        (MODEL, {"instances": []}, "instances"),
        (MODEL, {"instances": [{"prompt": "x"}], "config": {}}, "Unknown name"),
    ],
)
def test_invalid_arguments(gemini: httpx.Client, sim: SimulatorServer, model: str,
                           payload: dict[str, Any], words: str) -> None:
    response = gemini.post(f"/v1beta/models/{model}:predictLongRunning", json=payload)
    assert words in google_error(response, 400, "INVALID_ARGUMENT")["message"]
    assert sim.counters()["creates"] == 0


def test_first_frame_and_reference_images(gemini: httpx.Client, sim: SimulatorServer) -> None:
    image = {"bytesBase64Encoded": base64.b64encode(make_png(8, 8)).decode(),
             "mimeType": "image/png"}
    start(gemini, {"instances": [{"prompt": "x", "image": image}],
                   "parameters": {"personGeneration": "allow_adult", "durationSeconds": "6",
                                  "aspectRatio": "9:16"}})
    references = [{"image": image, "referenceType": "asset"}]
    four = gemini.post(CREATE, json={"instances": [{"prompt": "x", "referenceImages": references}],
                                     "parameters": {"durationSeconds": 4}})
    assert "8 seconds" in google_error(four, 400, "INVALID_ARGUMENT")["message"]
    start(gemini, {"instances": [{"prompt": "x", "referenceImages": references}]})
    first, second = sim.creates()
    assert (first["size"], first["seconds"], first["input_reference"]) == ("720x1280", 6, True)
    assert (second["seconds"], second["reference_images"]) == (8, 1)


def test_unknown_models_and_operations_are_404(gemini: httpx.Client) -> None:
    missing = gemini.post("/v1beta/models/veo-2.0-generate-001:predictLongRunning", json=body())
    assert "ListModels" in google_error(missing, 404, "NOT_FOUND")["message"]
    google_error(gemini.get(f"/v1beta/models/{MODEL}/operations/nope"), 404, "NOT_FOUND")
    # No cancel or delete exists for these operations.
    name = start(gemini)
    google_error(gemini.delete(f"/v1beta/{name}"), 404, "NOT_FOUND")
    google_error(gemini.post(f"/v1beta/{name}:cancel"), 404, "NOT_FOUND")


def test_safety_blocks_finish_with_no_video(gemini: httpx.Client, sim: SimulatorServer) -> None:
    done = until_done(gemini, start(gemini, body("boat [moderation]")))
    assert "error" not in done
    generated = done["response"]["generateVideoResponse"]
    assert "generatedSamples" not in generated and generated["raiMediaFilteredCount"] == 1
    assert generated["raiMediaFilteredReasons"]
    assert sim.counters()["jobs_billed"] == 0


@pytest.mark.parametrize(("marker", "code"), [("[processing_error]", 14), ("[fail]", 13)])
def test_failed_operations_carry_a_status(gemini: httpx.Client, marker: str, code: int) -> None:
    done = until_done(gemini, start(gemini, body(f"boat {marker}")))
    assert done["error"]["code"] == code and done["error"]["message"] and "response" not in done


def test_resource_exhausted_puts_the_delay_in_the_body(gemini: httpx.Client,
                                                       sim: SimulatorServer) -> None:
    sim.update_config(rpm_limit=1, time_scale=1.0)
    start(gemini)
    limited = gemini.post(CREATE, json=body())
    error = google_error(limited, 429, "RESOURCE_EXHAUSTED")
    assert "retry-after" not in limited.headers
    kinds = {detail["@type"].rsplit(".", 1)[-1]: detail for detail in error["details"]}
    assert re.fullmatch(r"\d+s", kinds["RetryInfo"]["retryDelay"])
    assert "PerMinute" in kinds["QuotaFailure"]["violations"][0]["quotaId"]
    sim.update_config(rpm_limit=None, insufficient_quota=True)
    daily = google_error(gemini.post(CREATE, json=body()), 429, "RESOURCE_EXHAUSTED")
    assert "PerDay" in daily["details"][0]["violations"][0]["quotaId"]
    counters = sim.counters()
    assert (counters["rate_limited_429"], counters["quota_rejected_429"]) == (1, 1)


def test_files_are_deleted_when_retention_ends(gemini: httpx.Client,
                                               sim: SimulatorServer) -> None:
    sim.update_config(content_ttl_seconds=2.0)
    done = until_done(gemini, start(gemini))
    uri = done["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
    time.sleep(0.1)
    google_error(httpx.get(uri, headers={"x-goog-api-key": API_KEY}, verify=SSL_CONTEXT), 404,
                 "NOT_FOUND")


def test_server_errors(gemini: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(fail_5xx_rate=1.0)
    statuses = {gemini.post(CREATE, json=body()).json()["error"]["status"] for _ in range(8)}
    assert statuses <= {"INTERNAL", "UNAVAILABLE"} and statuses
    assert sim.counters()["errors_5xx_sent"] == 8
