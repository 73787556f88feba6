"""The simulator speaks the Runway API as runwayml/sdk-python and docs.dev.runwayml.com describe."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from workspace.simulator import SimulatorServer
from workspace.simulator.protocols.common import MediaHost

from .helpers import API_KEY, SSL_CONTEXT, make_png

HEADERS = {"Authorization": f"Bearer {API_KEY}", "X-Runway-Version": "2024-11-06"}
T2V = {"model": "gen4.5", "promptText": "a lighthouse", "ratio": "1280:720", "duration": 5}


@pytest.fixture
def runway(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url + "/runway", headers=HEADERS, timeout=10,
                      verify=SSL_CONTEXT) as client:
        yield client


def create(client: httpx.Client, endpoint: str = "text_to_video", **fields: Any) -> str:
    response = client.post(f"/v1/{endpoint}", json={**T2V, **fields})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"id", "estimatedCost"}
    return str(body["id"])


def task_until(client: httpx.Client, task_id: str, statuses: tuple[str, ...],
               timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.005)


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    return str(body["error"])


def test_a_task_goes_pending_running_succeeded(
    make_server: Callable[..., SimulatorServer],
) -> None:
    # The first answer must still say PENDING: the queued phase lasts 300 ms here, not the fast
    # server's 12 ms, which a loaded machine can miss between the create and the first read.
    sim = make_server(time_scale=2.0, seed=1234)
    with httpx.Client(base_url=sim.url + "/runway", headers=HEADERS, timeout=10,
                      verify=SSL_CONTEXT) as runway:
        task_id = create(runway)
        assert uuid.UUID(task_id)
        first = runway.get(f"/v1/tasks/{task_id}").json()
        assert first["status"] == "PENDING"
        assert set(first) == {"id", "createdAt", "status", "estimatedCost"}
        assert first["estimatedCost"] == {"credits": 60.0}
        assert datetime.fromisoformat(first["createdAt"].replace("Z", "+00:00"))
        running = task_until(runway, task_id, ("RUNNING",))
        assert isinstance(running["progress"], float) and 0 <= running["progress"] < 1
        done = task_until(runway, task_id, ("SUCCEEDED",))
        [url] = done["output"]
        assert re.fullmatch(rf"{re.escape(sim.url)}/cdn/[\w-]+/{task_id}\.mp4", url)
        assert "progress" not in done and "failure" not in done
        assert done["cost"] == {"credits": 60} and "estimatedCost" not in done
        video = httpx.get(url, verify=SSL_CONTEXT)
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        assert video.content[4:8] == b"ftyp"
        counters = sim.counters()
        assert counters["billed_cents"] == 12 * 5 and counters["downloads_video"] == 1


def test_the_version_header_is_required(sim: SimulatorServer) -> None:
    response = httpx.post(sim.url + "/runway/v1/text_to_video", json=T2V, verify=SSL_CONTEXT,
                          headers={"Authorization": f"Bearer {API_KEY}"})
    assert "X-Runway-Version" in error_of(response, 400)
    assert sim.counters()["creates"] == 0


def test_bearer_auth(sim: SimulatorServer) -> None:
    sim.update_config(api_keys=[API_KEY])
    url = sim.url + "/runway/v1/text_to_video"
    missing = httpx.post(url, json=T2V, headers={"X-Runway-Version": "2024-11-06"},
                         verify=SSL_CONTEXT)
    error_of(missing, 401)
    wrong = httpx.post(url, json=T2V, verify=SSL_CONTEXT,
                       headers={**HEADERS, "Authorization": "Bearer key_wrong"})
    assert "not valid" in error_of(wrong, 401)
    assert sim.counters()["unauthorized_401"] == 2


@pytest.mark.parametrize(
    ("fields", "endpoint", "words"),
    [
        ({"ratio": "1920:1080"}, "text_to_video", "ratio"),
        ({"duration": 11}, "text_to_video", "duration"),
        ({"duration": None}, "text_to_video", "duration"),
        ({"model": "gen4_turbo"}, "text_to_video", "not available"),
        ({"model": "sora-2"}, "text_to_video", "model"),
        ({"promptText": ""}, "text_to_video", "promptText"),
        ({"promptText": "x" * 1001}, "text_to_video", "1000"),
        ({"size": "1280x720"}, "text_to_video", "Unrecognized key"),
        ({"audio": True}, "text_to_video", "audio"),
        ({"model": "veo3.1", "duration": 8, "seed": -1}, "text_to_video", "seed"),
        ({"model": "veo3.1", "duration": 8, "outputFormat": "mp4"}, "text_to_video",
         "outputFormat"),
        ({"outputFormat": "webm"}, "text_to_video", "outputFormat"),
        ({"outputFormat": "hdr10", "proresProfile": "422"}, "text_to_video", "proresProfile"),
        ({"promptImage": "http://example.com/a.png"}, "image_to_video", "HTTPS"),
        ({}, "image_to_video", "promptImage"),
    ],
)
def test_invalid_bodies_are_400_with_a_readable_error(runway: httpx.Client, fields: dict[str, Any],
                                                      endpoint: str, words: str) -> None:
    body = {**T2V, **fields}
    response = runway.post(f"/v1/{endpoint}", json={k: v for k, v in body.items()
                                                    if not (k == "duration" and v is None)})
    assert words in error_of(response, 400)
    assert isinstance(response.json()["issues"], list)


def test_image_to_video_takes_a_data_uri_and_veo_bills_by_audio(runway: httpx.Client,
                                                                sim: SimulatorServer) -> None:
    image = "data:image/png;base64," + base64.b64encode(make_png(8, 8)).decode()
    task_id = create(runway, "image_to_video", model="veo3.1", ratio="1080:1920", duration=4,
                     promptImage=[{"uri": image, "position": "first"}], audio=False,
                     negativePrompt="rain")
    task_until(runway, task_id, ("SUCCEEDED",))
    [entry] = sim.creates()
    assert (entry["size"], entry["seconds"], entry["input_reference"]) == ("1080x1920", 4, True)
    assert sim.counters()["billed_cents"] == 20 * 4


@pytest.mark.parametrize(
    ("marker", "code"),
    [("[moderation]", "SAFETY.INPUT.TEXT"),
     ("[processing_error]", "INPUT_PREPROCESSING.INTERNAL"),
     ("[fail]", "INTERNAL.BAD_OUTPUT.CODE01")],
)
def test_failures_carry_a_failure_code(runway: httpx.Client, sim: SimulatorServer, marker: str,
                                       code: str) -> None:
    task_id = create(runway, promptText=f"boat {marker}")
    failed = task_until(runway, task_id, ("FAILED",))
    assert failed["failureCode"] == code and failed["failure"]
    assert "output" not in failed
    counters = sim.counters()
    assert (counters["jobs_failed"], counters["jobs_billed"]) == (1, 0)
    assert sim.creates()[0]["error_code"] is not None


def test_delete_cancels_or_deletes_and_the_task_is_gone(runway: httpx.Client,
                                                        sim: SimulatorServer) -> None:
    sim.update_config(time_scale=1.0)
    running = create(runway)
    assert runway.delete(f"/v1/tasks/{running}").status_code == 204
    error_of(runway.get(f"/v1/tasks/{running}"), 404)
    error_of(runway.delete(f"/v1/tasks/{running}"), 404)
    sim.update_config(time_scale=1000.0)
    finished = create(runway)
    task_until(runway, finished, ("SUCCEEDED",))
    assert runway.delete(f"/v1/tasks/{finished}").status_code == 204
    error_of(runway.get(f"/v1/tasks/{finished}"), 404)
    log = {entry["id"]: entry for entry in sim.creates()}
    assert log[running]["status"] == "canceled" and not log[running]["billed"]
    assert log[finished]["billed"] and log[finished]["deleted"]
    assert sim.counters()["deletes"] == 3


def test_output_links_refuse_keys_and_expire(runway: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(content_ttl_seconds=2.0)
    task_id = create(runway)
    [url] = task_until(runway, task_id, ("SUCCEEDED",))["output"]
    keyed = httpx.get(url, headers={"Authorization": f"Bearer {API_KEY}"}, verify=SSL_CONTEXT)
    assert keyed.status_code == 400 and b"InvalidArgument" in keyed.content
    host = sim.routes["/cdn"]
    assert isinstance(host, MediaHost)
    assert host.credentialed_requests == 1
    time.sleep(0.1)  # 5 simulated seconds
    expired = httpx.get(url, verify=SSL_CONTEXT)
    assert expired.status_code == 403 and b"expired" in expired.content
    assert httpx.get(sim.url + "/cdn/unknown/x.mp4", verify=SSL_CONTEXT).status_code == 403
    # The task itself still reads SUCCEEDED.
    assert runway.get(f"/v1/tasks/{task_id}").json()["status"] == "SUCCEEDED"


def test_quota_rate_limit_and_faults(runway: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(insufficient_quota=True)
    assert "enough credits" in error_of(runway.post("/v1/text_to_video", json=T2V), 400)
    sim.update_config(insufficient_quota=False, rpm_limit=1, time_scale=1.0)
    create(runway)
    limited = runway.post("/v1/text_to_video", json=T2V)
    error_of(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1
    sim.update_config(rpm_limit=None, fail_5xx_rate=1.0)
    assert runway.post("/v1/text_to_video", json=T2V).status_code in (502, 503)
    sim.update_config(fail_5xx_rate=0.0)
    with pytest.raises(httpx.RemoteProtocolError):
        runway.post("/v1/text_to_video", json={**T2V, "promptText": "x [reset_after_create]"})
    counters = sim.counters()
    assert (counters["quota_rejected_429"], counters["rate_limited_429"]) == (1, 1)
    assert counters["creates"] == 2 and sim.creates()[-1]["answer"] == "connection_reset"
