"""Images, options and extensions on the simulated Runway, fal, Gemini and Luma APIs.

Each protocol decodes what it is sent and refuses, in its own error shape, what the real API
refuses; an extension renders the stitched clip and bills the seconds it adds.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import luma_agents
import pytest

from workspace.simulator import SimulatorServer

from .helpers import API_KEY, SSL_CONTEXT, make_png, mp4_seconds

PNG = make_png(64, 36)
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()
TALL_PNG = make_png(36, 64)


def client_for(sim: SimulatorServer, prefix: str, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=sim.url + prefix, headers=headers, timeout=20,
                        verify=SSL_CONTEXT)


def poll(read: Any, done: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = read()
        if done(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.005)


# ---- Runway ---------------------------------------------------------------------------------

@pytest.fixture
def runway(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with client_for(sim, "/runway", {"Authorization": f"Bearer {API_KEY}",
                                     "X-Runway-Version": "2024-11-06"}) as client:
        yield client


def runway_i2v(**fields: Any) -> dict[str, Any]:
    return {"model": "veo3.1", "promptText": "a kite", "ratio": "1280:720", "duration": 4,
            **fields}


def test_runway_decodes_first_and_last_frames_and_bills_the_silent_price(
        runway: httpx.Client, sim: SimulatorServer) -> None:
    frames = [{"uri": PNG_URI, "position": "first"}, {"uri": PNG_URI, "position": "last"}]
    answer = runway.post("/v1/image_to_video", json=runway_i2v(
        promptImage=frames, audio=False, negativePrompt="rain"))
    assert answer.status_code == 200, answer.text
    task = poll(lambda: runway.get(f"/v1/tasks/{answer.json()['id']}").json(),
                lambda body: body["status"] == "SUCCEEDED")
    assert httpx.get(task["output"][0], verify=SSL_CONTEXT).content[4:8] == b"ftyp"
    [entry] = sim.creates()
    assert [(i["role"], i["content_type"], i["width"], i["height"]) for i in entry["images"]] == [
        ("first", "image/png", 64, 36), ("last", "image/png", 64, 36)]
    assert (entry["audio"], entry["negative_prompt"]) == (False, "rain")
    assert sim.counters()["billed_cents"] == 20 * 4  # veo3.1 without audio


def test_runway_gen45_takes_a_seed_and_a_first_frame_only(
        runway: httpx.Client, sim: SimulatorServer) -> None:
    answer = runway.post("/v1/image_to_video", json=runway_i2v(
        model="gen4.5", duration=5, promptImage=PNG_URI, seed=42))
    assert answer.status_code == 200, answer.text
    assert sim.creates()[0]["seed"] == 42
    last = runway.post("/v1/image_to_video", json=runway_i2v(
        model="gen4.5", duration=5,
        promptImage=[{"uri": PNG_URI, "position": "first"}, {"uri": PNG_URI, "position": "last"}]))
    assert last.status_code == 400
    assert last.json()["issues"][0]["path"] == ["promptImage"]
    assert "'first' only" in last.json()["error"]


@pytest.mark.parametrize(("uri", "words"), [
    ("data:image/jpeg;base64," + base64.b64encode(PNG).decode(), "declared as image/jpeg"),
    ("data:image/png;base64,bm90IGFuIGltYWdl", "not a PNG, JPEG or WebP"),
    ("data:image/png;base64,***", "not valid base64"),
    ("data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(5 * 1024 * 1024))
     .decode(), "the limit is 5242880 bytes"),
])
def test_runway_refuses_images_that_are_not_what_they_claim(
        runway: httpx.Client, sim: SimulatorServer, uri: str, words: str) -> None:
    answer = runway.post("/v1/image_to_video", json=runway_i2v(promptImage=uri))
    assert answer.status_code == 400 and words in answer.json()["error"], answer.text
    assert sim.creates() == []


def test_runway_image_creates_keep_the_fault_switches(
        runway: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(fail_5xx_after_create_rate=1.0)
    assert runway.post("/v1/image_to_video",
                       json=runway_i2v(promptImage=PNG_URI)).status_code >= 500
    [entry] = sim.creates()
    poll(lambda: runway.get(f"/v1/tasks/{entry['id']}").json(),
         lambda body: body["status"] == "SUCCEEDED")
    assert sim.counters()["billed_cents"] == 40 * 4


# ---- fal ------------------------------------------------------------------------------------

@pytest.fixture
def fal(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with client_for(sim, "/fal", {"Authorization": f"Key {API_KEY}"}) as client:
        yield client


def test_fal_image_to_video_decodes_the_image_and_takes_the_options(
        fal: httpx.Client, sim: SimulatorServer) -> None:
    answer = fal.post("/fal-ai/veo3.1/fast/image-to-video", json={
        "prompt": "a kite", "image_url": PNG_URI, "aspect_ratio": "16:9", "duration": "6s",
        "generate_audio": False, "seed": 7, "negative_prompt": "rain"})
    assert answer.status_code == 200, answer.text
    poll(lambda: fal.get(answer.json()["status_url"].split("/fal", 1)[1]).json(),
         lambda body: body["status"] == "COMPLETED")
    result = fal.get(answer.json()["response_url"].split("/fal", 1)[1]).json()
    assert httpx.get(result["video"]["url"], verify=SSL_CONTEXT).content[4:8] == b"ftyp"
    [entry] = sim.creates()
    assert entry["endpoint"] == "fal-ai/veo3.1/fast/image-to-video"
    assert entry["images"] == [{"role": "first_frame", "content_type": "image/png",
                                "width": 64, "height": 36, "byte_size": len(PNG)}]
    assert (entry["seed"], entry["negative_prompt"], entry["audio"]) == (7, "rain", False)
    assert sim.counters()["billed_cents"] == 10 * 6


def test_fal_refuses_an_image_it_cannot_read(fal: httpx.Client, sim: SimulatorServer) -> None:
    answer = fal.post("/fal-ai/veo3.1/image-to-video", json={
        "prompt": "a kite", "image_url": "data:image/webp;base64," + base64.b64encode(PNG)
        .decode()})
    assert answer.status_code == 422
    [item] = answer.json()["detail"]
    assert (item["loc"], item["type"]) == (["body", "image_url"], "image_load_error")
    assert sim.creates() == []


# ---- Gemini ---------------------------------------------------------------------------------

GEMINI_MODEL = "veo-3.1-fast-generate-preview"


@pytest.fixture
def gemini(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with client_for(sim, "/gemini", {"x-goog-api-key": API_KEY}) as client:
        yield client


def google_image(data: bytes = PNG, mime: str = "image/png") -> dict[str, str]:
    return {"bytesBase64Encoded": base64.b64encode(data).decode(), "mimeType": mime}


def veo(client: httpx.Client, instance: dict[str, Any], model: str = GEMINI_MODEL,
        **parameters: Any) -> httpx.Response:
    return client.post(f"/v1beta/models/{model}:predictLongRunning", json={
        "instances": [{"prompt": "a kite", **instance}],
        "parameters": {"aspectRatio": "16:9", "resolution": "720p", "durationSeconds": 8,
                       **parameters}})


def veo_done(client: httpx.Client, name: str) -> dict[str, Any]:
    return poll(lambda: client.get(f"/v1beta/{name}").json(), lambda body: body.get("done"))


def test_gemini_takes_first_and_last_frames_and_three_references(
        gemini: httpx.Client, sim: SimulatorServer) -> None:
    references = [{"image": google_image(), "referenceType": "asset"}] * 3
    answer = veo(gemini, {"image": google_image(), "lastFrame": google_image(TALL_PNG),
                          "referenceImages": references}, negativePrompt="rain")
    assert answer.status_code == 200, answer.text
    [entry] = sim.creates()
    assert [(i["role"], i["width"]) for i in entry["images"]] == [
        ("first_frame", 64), ("last_frame", 36), ("reference", 64), ("reference", 64),
        ("reference", 64)]
    assert (entry["reference_images"], entry["negative_prompt"]) == (3, "rain")


@pytest.mark.parametrize(("instance", "model", "parameters", "words"), [
    ({"image": google_image(PNG, "image/jpeg")}, GEMINI_MODEL, {}, "declared as image/jpeg"),
    ({"image": google_image(b"GIF89a....")}, GEMINI_MODEL, {}, "not a PNG, JPEG or WebP"),
    ({"referenceImages": [{"image": google_image(), "referenceType": "asset"}]},
     GEMINI_MODEL, {"durationSeconds": 6}, "8 seconds with reference images"),
    ({"referenceImages": [{"image": google_image(), "referenceType": "asset"}] * 4},
     GEMINI_MODEL, {}, "at most 3"),
    ({"referenceImages": [{"image": google_image(), "referenceType": "asset"}]},
     "veo-3.1-lite-generate-preview", {}, "isn't supported"),
    ({"lastFrame": google_image()}, GEMINI_MODEL, {}, "together with image"),
])
def test_gemini_refuses_images_as_the_api_does(
        gemini: httpx.Client, sim: SimulatorServer, instance: dict[str, Any], model: str,
        parameters: dict[str, Any], words: str) -> None:
    answer = veo(gemini, instance, model, **parameters)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and words in error["message"]
    assert sim.creates() == []


def veo_uri(operation: dict[str, Any]) -> str:
    uri: str = operation["response"]["generateVideoResponse"]["generatedSamples"][0]["video"][
        "uri"]
    return uri


def test_gemini_extends_a_veo_output_by_seven_seconds_and_bills_those(
        gemini: httpx.Client, sim: SimulatorServer) -> None:
    parent = veo_done(gemini, veo(gemini, {}).json()["name"])
    answer = veo(gemini, {"video": {"uri": veo_uri(parent)}})
    assert answer.status_code == 200, answer.text
    extended = veo_done(gemini, answer.json()["name"])
    stored = gemini.get(veo_uri(extended).split("/gemini", 1)[1])
    assert stored.status_code == 302
    video = httpx.get(stored.headers["location"], verify=SSL_CONTEXT).content
    assert round(mp4_seconds(video)) == 15  # the 8 s source and the 7 s it adds
    first, second = sim.creates()
    assert (second["operation"], second["source_id"]) == ("extend", first["id"])
    assert (second["seconds"], second["output_seconds"]) == (7, 15)
    # 720p Veo 3.1 Fast: 10 c/s for the parent's 8 s and the extension's 7 s.
    assert sim.counters()["billed_cents"] == 10 * 8 + 10 * 7
    # An extension of the extension grows from its stitched length.
    again = veo_done(gemini, veo(gemini, {"video": {"uri": veo_uri(extended)}}).json()["name"])
    assert "response" in again and sim.creates()[-1]["output_seconds"] == 22


def test_gemini_refuses_extensions_the_api_refuses(
        gemini: httpx.Client, sim: SimulatorServer) -> None:
    parent = veo_done(gemini, veo(gemini, {}).json()["name"])
    uri = veo_uri(parent)
    cases = [
        (veo(gemini, {"video": {"uri": uri}}, durationSeconds=4), 400, "8 seconds"),
        (veo(gemini, {"video": {"uri": uri}}, resolution="1080p"), 400, "720p only"),
        (veo(gemini, {"video": {"uri": uri}}, aspectRatio="9:16"), 400, "720p only"),
        (veo(gemini, {"video": {"uri": uri}, "image": google_image()}), 400, "cannot be"),
        (veo(gemini, {"video": {"uri": uri}}, "veo-3.1-lite-generate-preview"), 400,
         "isn't supported"),
        (veo(gemini, {"video": {"uri": uri.replace("/files/", "/files/x")}}), 404, "not found"),
        (veo(gemini, {"video": {"bytesBase64Encoded": "AAAA"}}), 400, "pass the uri"),
    ]
    for answer, status, words in cases:
        assert answer.status_code == status and words in answer.json()["error"]["message"], (
            answer.text)
    assert len(sim.creates()) == 1


def test_gemini_extensions_fail_and_expire_like_any_operation(
        gemini: httpx.Client, sim: SimulatorServer) -> None:
    parent = veo_done(gemini, veo(gemini, {}).json()["name"])
    broken = veo(gemini, {"video": {"uri": veo_uri(parent)}, "prompt": "[processing_error]"})
    assert broken.status_code == 200
    assert veo_done(gemini, broken.json()["name"])["error"]["code"] == 14
    assert sim.counters()["billed_cents"] == 10 * 8  # the failed extension is not billed
    sim.update_config(content_ttl_seconds=0)
    gone = veo_done(gemini, veo(gemini, {}).json()["name"])
    answer = veo(gemini, {"video": {"uri": veo_uri(gone)}})
    assert answer.status_code == 404 and answer.json()["error"]["status"] == "NOT_FOUND"


# ---- Luma -----------------------------------------------------------------------------------

@pytest.fixture
def sdk(sim: SimulatorServer) -> Iterator[luma_agents.Luma]:
    with luma_agents.Luma(auth_token=API_KEY, base_url=sim.url + "/luma/v1",
                          max_retries=0) as client:
        yield client


def luma_done(sdk: luma_agents.Luma, generation_id: str) -> Any:
    return poll(lambda: {"g": sdk.generations.get(generation_id)},
                lambda body: body["g"].state in ("completed", "failed"))["g"]


def test_luma_takes_start_and_end_frames_through_the_official_sdk(
        sdk: luma_agents.Luma, sim: SimulatorServer) -> None:
    frame = {"data": base64.b64encode(PNG).decode(), "media_type": "image/png"}
    generation = sdk.generations.create(
        prompt="a kite", model="ray-3.2", type="video", aspect_ratio="16:9",
        video={"resolution": "720p", "duration": "5s", "start_frame": frame, "end_frame": frame})
    assert luma_done(sdk, generation.id).state == "completed"
    [entry] = sim.creates()
    assert [i["role"] for i in entry["images"]] == ["first_frame", "last_frame"]
    assert entry["input_reference"] is True


def test_luma_extends_a_generation_named_in_start_frame_through_the_official_sdk(
        sdk: luma_agents.Luma, sim: SimulatorServer) -> None:
    video = {"resolution": "720p", "duration": "5s"}
    parent = sdk.generations.create(prompt="a kite", model="ray-3.2", type="video",
                                    aspect_ratio="16:9", video=video)
    luma_done(sdk, parent.id)
    child = sdk.generations.create(
        prompt="it flies on", model="ray-3.2", type="video", aspect_ratio="16:9",
        video={**video, "start_frame": {"generation_id": parent.id}})
    done = luma_done(sdk, child.id)
    assert done.state == "completed"
    data = httpx.get(done.output[0].url, verify=SSL_CONTEXT).content
    assert round(mp4_seconds(data)) == 10
    second = sim.creates()[1]
    assert (second["operation"], second["source_id"], second["seconds"]) == (
        "extend", parent.id, 5)
    assert sim.counters()["billed_cents"] == 6 * 5 + 6 * 5


@pytest.mark.parametrize(("video", "status", "words"), [
    ({"duration": "10s", "start_frame": {"data": base64.b64encode(PNG).decode(),
                                         "media_type": "image/png"}}, 422, "text-to-video only"),
    ({"start_frame": {"data": base64.b64encode(PNG).decode(), "media_type": "image/gif"}},
     422, "unsupported image type"),
    ({"start_frame": {"data": base64.b64encode(b"not an image").decode(),
                      "media_type": "image/png"}}, 422, "not a PNG"),
    ({"start_frame": {"generation_id": "00000000-0000-0000-0000-000000000000"}}, 422,
     "completed video generation"),
])
def test_luma_refuses_frames_it_cannot_use(sim: SimulatorServer, video: dict[str, Any],
                                           status: int, words: str) -> None:
    with client_for(sim, "/luma/v1", {"Authorization": f"Bearer {API_KEY}"}) as luma:
        answer = luma.post("/generations", json={
            "model": "ray-3.2", "type": "video", "prompt": "a kite", "aspect_ratio": "16:9",
            "video": {"resolution": "720p", "duration": "5s", **video}})
    assert answer.status_code == status and words in answer.json()["detail"], answer.text
    assert sim.creates() == []


# ---- fault switches on the new calls --------------------------------------------------------

def test_an_extension_whose_answer_is_lost_still_runs_and_bills(
        gemini: httpx.Client, sim: SimulatorServer) -> None:
    parent = veo_done(gemini, veo(gemini, {}).json()["name"])
    with pytest.raises(httpx.RemoteProtocolError):
        veo(gemini, {"video": {"uri": veo_uri(parent)}, "prompt": "[reset_after_create] on"})
    entry = sim.creates()[-1]
    assert (entry["answer"], entry["operation"]) == ("connection_reset", "extend")
    assert "response" in veo_done(gemini, entry["id"])
    assert sim.counters()["billed_cents"] == 10 * 8 + 10 * 7


@pytest.mark.parametrize("protocol", ["runway", "fal", "gemini", "luma"])
def test_no_credit_refuses_image_creates_in_each_providers_words(
        sim: SimulatorServer, protocol: str) -> None:
    sim.update_config(insufficient_quota=True)
    calls = {
        "runway": ("/runway/v1/image_to_video",
                   {"Authorization": f"Bearer {API_KEY}", "X-Runway-Version": "2024-11-06"},
                   runway_i2v(promptImage=PNG_URI), 400),
        "fal": ("/fal/fal-ai/veo3.1/image-to-video", {"Authorization": f"Key {API_KEY}"},
                {"prompt": "a kite", "image_url": PNG_URI}, 403),
        "gemini": (f"/gemini/v1beta/models/{GEMINI_MODEL}:predictLongRunning",
                   {"x-goog-api-key": API_KEY},
                   {"instances": [{"prompt": "a kite", "image": google_image()}]}, 429),
        "luma": ("/luma/v1/generations", {"Authorization": f"Bearer {API_KEY}"},
                 {"model": "ray-3.2", "type": "video", "prompt": "a kite",
                  "video": {"start_frame": {"data": base64.b64encode(PNG).decode(),
                                            "media_type": "image/png"}}}, 402),
    }
    path, headers, payload, status = calls[protocol]
    answer = httpx.post(sim.url + path, headers=headers, json=payload, verify=SSL_CONTEXT)
    assert answer.status_code == status, answer.text
    assert sim.creates() == [] and sim.counters()["quota_rejected_429"] == 1
