"""The simulator speaks the fal.ai queue as fal_client and fal.ai/docs describe it."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from workspace.simulator import SimulatorServer

from .helpers import API_KEY, SSL_CONTEXT, make_png

PROMPT = {"prompt": "a lighthouse", "duration": "4s"}


@pytest.fixture
def fal(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url + "/fal", headers={"Authorization": f"Key {API_KEY}"},
                      timeout=10, verify=SSL_CONTEXT) as client:
        yield client


def submit(client: httpx.Client, endpoint: str = "fal-ai/veo3.1", **fields: Any) -> dict[str, Any]:
    response = client.post(f"/{endpoint}", json={**PROMPT, **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) >= {"request_id", "response_url", "status_url", "cancel_url"}
    return body


def status_until(handle: dict[str, Any], statuses: tuple[str, ...],
                 timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Key {API_KEY}"}
    while True:
        response = httpx.get(handle["status_url"], params={"logs": "1"}, headers=headers,
                             verify=SSL_CONTEXT)
        assert response.status_code in (200, 202), response.text
        body: dict[str, Any] = response.json()
        if body["status"] in statuses:
            assert response.status_code == (200 if body["status"] == "COMPLETED" else 202)
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.005)


def get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, headers={"Authorization": f"Key {API_KEY}"}, verify=SSL_CONTEXT,
                     **kwargs)


def test_submit_status_result(make_server: Callable[..., SimulatorServer]) -> None:
    # Every phase must be seen, so the queued one lasts 300 ms here, not the fast server's 12 ms
    # that a loaded machine can sleep through between two status calls.
    sim = make_server(time_scale=2.0, seed=1234)
    with httpx.Client(base_url=sim.url + "/fal", headers={"Authorization": f"Key {API_KEY}"},
                      timeout=10, verify=SSL_CONTEXT) as fal:
        handle = submit(fal)
    base = f"{sim.url}/fal/fal-ai/veo3.1/requests/{handle['request_id']}"
    assert (handle["response_url"], handle["status_url"], handle["cancel_url"]) == (
        base, base + "/status", base + "/cancel")
    queued = status_until(handle, ("IN_QUEUE",))
    assert queued["queue_position"] == 0
    assert status_until(handle, ("IN_PROGRESS",))["logs"]
    done = status_until(handle, ("COMPLETED",))
    assert "error" not in done and done["metrics"]["inference_time"] > 0
    result = get(handle["response_url"]).json()
    assert result["video"]["content_type"] == "video/mp4"
    video = httpx.get(result["video"]["url"], verify=SSL_CONTEXT)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert sim.counters()["billed_cents"] == 40 * 4


def test_sub_path_endpoints_poll_under_owner_and_alias(fal: httpx.Client,
                                                       sim: SimulatorServer) -> None:
    image = "data:image/png;base64," + base64.b64encode(make_png(8, 8)).decode()
    handle = submit(fal, "fal-ai/veo3.1/fast/image-to-video", image_url=image,
                    generate_audio=False, resolution="1080p", duration="8s",
                    aspect_ratio="9:16")
    assert "/fal-ai/veo3.1/requests/" in handle["status_url"]
    assert "image-to-video" not in handle["status_url"]
    status_until(handle, ("COMPLETED",))
    [entry] = sim.creates()
    assert (entry["model"], entry["size"], entry["audio"]) == ("fal-ai/veo3.1/fast",
                                                               "1080x1920", False)
    assert sim.counters()["billed_cents"] == 10 * 8
    # The same request is unknown under another app.
    other = handle["status_url"].replace("fal-ai/veo3.1", "fal-ai/kling")
    assert get(other).status_code == 404


def test_key_auth(sim: SimulatorServer) -> None:
    sim.update_config(api_keys=[API_KEY])
    url = sim.url + "/fal/fal-ai/veo3.1"
    for headers in ({}, {"Authorization": f"Bearer {API_KEY}"}, {"Authorization": "Key nope"}):
        response = httpx.post(url, json=PROMPT, headers=headers, verify=SSL_CONTEXT)
        assert response.status_code == 401 and isinstance(response.json()["detail"], str)
    ok = httpx.post(url, json=PROMPT, headers={"Authorization": f"Key {API_KEY}"},
                    verify=SSL_CONTEXT)
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("endpoint", "fields", "loc", "kind"),
    [
        ("fal-ai/veo3.1", {"duration": "5s"}, "duration", "literal_error"),
        ("fal-ai/veo3.1", {"duration": 8}, "duration", "literal_error"),
        ("fal-ai/veo3.1", {"aspect_ratio": "1:1"}, "aspect_ratio", "literal_error"),
        ("fal-ai/veo3.1", {"resolution": "1080p"}, "duration", "value_error"),
        ("fal-ai/veo3.1/fast", {"resolution": "4k", "duration": "8s"}, "resolution",
         "literal_error"),
        ("fal-ai/veo3.1", {"prompt": None}, "prompt", "missing"),
        ("fal-ai/veo3.1", {"size": "1280x720"}, "size", "extra_forbidden"),
        ("fal-ai/veo3.1", {"image_url": "https://x/y.png"}, "image_url", "extra_forbidden"),
        ("fal-ai/veo3.1/image-to-video", {}, "image_url", "missing"),
        ("fal-ai/veo3.1", {"generate_audio": "yes"}, "generate_audio", "bool_type"),
    ],
)
def test_typed_422_errors(fal: httpx.Client, sim: SimulatorServer, endpoint: str,
                          fields: dict[str, Any], loc: str, kind: str) -> None:
    body = {key: value for key, value in {**PROMPT, **fields}.items() if value is not None}
    response = fal.post(f"/{endpoint}", json=body)
    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert (detail["loc"], detail["type"]) == (["body", loc], kind) and detail["msg"]
    assert sim.counters()["creates_rejected"] == 1


@pytest.mark.parametrize(
    ("marker", "status", "error_type"),
    [("[moderation]", 422, "content_policy_violation"),
     ("[processing_error]", 503, "runner_scheduling_failure"),
     ("[fail]", 500, "internal_server_error")],
)
def test_failed_requests(fal: httpx.Client, sim: SimulatorServer, marker: str, status: int,
                         error_type: str) -> None:
    handle = submit(fal, prompt=f"boat {marker}")
    done = status_until(handle, ("COMPLETED",))
    assert done["error_type"] == error_type and done["error"]
    result = get(handle["response_url"])
    assert result.status_code == status
    detail = result.json()["detail"]
    types = [d["type"] for d in detail] if isinstance(detail, list) else [
        result.json()["error_type"]]
    assert types == [error_type]
    assert sim.counters()["jobs_billed"] == 0


def test_cancel(fal: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(time_scale=1.0)
    handle = submit(fal)
    assert get(handle["response_url"]).status_code == 400  # still in progress
    cancel = httpx.put(handle["cancel_url"], headers={"Authorization": f"Key {API_KEY}"},
                       verify=SSL_CONTEXT)
    assert (cancel.status_code, cancel.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    done = status_until(handle, ("COMPLETED",))
    assert done["error_type"] == "request_cancelled"
    again = httpx.put(handle["cancel_url"], headers={"Authorization": f"Key {API_KEY}"},
                      verify=SSL_CONTEXT)
    assert (again.status_code, again.json()) == (400, {"status": "ALREADY_COMPLETED"})
    missing = fal.put("/fal-ai/veo3.1/requests/nope/cancel")
    assert (missing.status_code, missing.json()) == (404, {"status": "NOT_FOUND"})
    [entry] = sim.creates()
    assert entry["status"] == "canceled" and not entry["billed"]
    assert sim.counters()["deletes"] == 3


def test_locked_account_unknown_app_and_faults(fal: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(insufficient_quota=True)
    locked = fal.post("/fal-ai/veo3.1", json=PROMPT)
    assert locked.status_code == 403 and "locked" in locked.json()["detail"]
    sim.update_config(insufficient_quota=False)
    assert fal.post("/fal-ai/sora", json=PROMPT).status_code == 404
    sim.update_config(fail_5xx_rate=1.0, seed=5)
    overloaded = [fal.post("/fal-ai/veo3.1", json=PROMPT) for _ in range(6)]
    assert {r.status_code for r in overloaded} <= {500, 503}
    busy = next(r for r in overloaded if r.status_code == 503)
    assert busy.headers["x-fal-error-type"] == "runner_scheduling_failure"
    assert busy.headers["x-fal-request-id"]
    assert sim.counters()["quota_rejected_429"] == 1 and sim.counters()["creates"] == 0
