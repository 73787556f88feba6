"""The simulator speaks the Luma Agents API as lumalabs/luma-agents-python and
docs.agents.lumalabs.ai describe it; the official SDK itself drives it end to end."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import luma_agents
import pytest

from workspace.simulator import SimulatorServer

from .helpers import API_KEY, SSL_CONTEXT, make_png

VIDEO = {
    "model": "ray-3.2",
    "type": "video",
    "prompt": "a lighthouse at dusk",
    "aspect_ratio": "16:9",
    "video": {"resolution": "720p", "duration": "5s"},
}
GENERATION_FIELDS = {
    "id",
    "created_at",
    "model",
    "state",
    "type",
    "failure_code",
    "failure_reason",
    "output",
}


@pytest.fixture
def luma(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sim.url + "/luma/v1",
        timeout=10,
        verify=SSL_CONTEXT,
        headers={"Authorization": f"Bearer {API_KEY}"},
    ) as client:
        yield client


@pytest.fixture
def sdk(sim: SimulatorServer) -> Iterator[luma_agents.Luma]:
    # No SDK retries: every answer the simulator gives must reach the test as it was.
    with luma_agents.Luma(
        auth_token=API_KEY, base_url=sim.url + "/luma/v1", max_retries=0
    ) as client:
        yield client


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = client.post("/generations", json={**VIDEO, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def until(
    client: httpx.Client, generation_id: str, states: tuple[str, ...], timeout: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/generations/{generation_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["state"] in states:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.005)


def detail_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    assert response.headers["x-api-version"] == "2026-04-01"
    return detail


def test_a_generation_goes_queued_processing_completed(
    luma: httpx.Client, sim: SimulatorServer
) -> None:
    created = create(luma)
    assert set(created) == GENERATION_FIELDS and uuid.UUID(created["id"])
    assert (created["state"], created["type"], created["model"]) == ("queued", "video", "ray-3.2")
    assert datetime.fromisoformat(created["created_at"].replace("Z", "+00:00"))
    processing = until(luma, created["id"], ("processing",))
    assert processing["output"] is None and processing["failure_code"] is None
    done = until(luma, created["id"], ("completed",))
    [output] = done["output"]
    assert output["type"] == "video"
    assert re.fullmatch(rf"{re.escape(sim.url)}/cdn/[\w-]+/{created['id']}\.mp4", output["url"])
    video = httpx.get(output["url"], verify=SSL_CONTEXT)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    [entry] = sim.creates()
    assert (entry["protocol"], entry["size"], entry["seconds"]) == ("luma", "1280x720", 5)
    assert (entry["aspect_ratio"], entry["resolution"]) == ("16:9", "720p")
    counters = sim.counters()
    assert counters["billed_cents"] == 6 * 5 and counters["downloads_video"] == 1


def test_every_answer_names_the_api_version_and_a_request_id(luma: httpx.Client) -> None:
    response = luma.post("/generations", json=VIDEO)
    assert response.headers["x-api-version"] == "2026-04-01"
    assert response.headers["x-request-id"].startswith("req_")
    missing = luma.get(f"/generations/{uuid.uuid4()}")
    assert "not found" in detail_of(missing, 404).lower()


def test_the_official_sdk_creates_polls_and_downloads(
    sdk: luma_agents.Luma, sim: SimulatorServer
) -> None:
    generation = sdk.generations.create(
        model="ray-3.2",
        type="video",
        prompt="a slow dolly shot through a greenhouse",
        aspect_ratio="9:16",
        video={"resolution": "1080p", "duration": "10s"},
    )
    assert generation.state == "queued" and generation.type == "video"
    deadline = time.monotonic() + 30
    while generation.state not in ("completed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.005)
        generation = sdk.generations.get(generation.id)
    assert generation.state == "completed" and generation.output
    video = httpx.get(generation.output[0].url, verify=SSL_CONTEXT)
    assert video.content[4:8] == b"ftyp"
    [entry] = sim.creates()
    assert (entry["size"], entry["seconds"]) == ("1080x1920", 10)
    assert sim.counters()["billed_cents"] == 24 * 10


def test_the_official_sdk_reads_each_refusal_as_its_own_error(
    sdk: luma_agents.Luma, sim: SimulatorServer
) -> None:
    with pytest.raises(luma_agents.UnprocessableEntityError) as combination:
        sdk.generations.create(
            model="ray-3.2", type="video", prompt="x", video={"duration": "10s", "loop": True}
        )
    assert "text-to-video only" in str(combination.value.body)
    with pytest.raises(luma_agents.NotFoundError):
        sdk.generations.get(str(uuid.uuid4()))
    sim.update_config(insufficient_quota=True)
    with pytest.raises(luma_agents.APIStatusError) as no_money:
        sdk.generations.create(**VIDEO)
    assert no_money.value.status_code == 402
    sim.update_config(insufficient_quota=False, rpm_limit=1)
    sdk.generations.create(**VIDEO)
    with pytest.raises(luma_agents.RateLimitError) as limited:
        sdk.generations.create(**VIDEO)
    assert int(limited.value.response.headers["retry-after"]) >= 1
    assert limited.value.response.headers["x-ratelimit-limit"] == "1"
    wrong = luma_agents.Luma(auth_token="stale", base_url=sim.url + "/luma/v1", max_retries=0)
    sim.update_config(rpm_limit=None, api_keys=[API_KEY])
    with pytest.raises(luma_agents.AuthenticationError):
        wrong.generations.get(str(uuid.uuid4()))
    wrong.close()


def test_image_to_video_takes_a_base64_start_frame(
    luma: httpx.Client, sim: SimulatorServer
) -> None:
    frame = {"data": base64.b64encode(make_png(16, 9)).decode(), "media_type": "image/png"}
    created = create(luma, video={"resolution": "720p", "duration": "5s", "start_frame": frame})
    assert until(luma, created["id"], ("completed",))["output"]
    [entry] = sim.creates()
    assert entry["input_reference"] is True


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"prompt": ""}, 400, "prompt"),
        ({"prompt": "x" * 6001}, 400, "6000"),
        ({"type": "image"}, 422, "videos"),
        ({"model": "uni-1"}, 422, "ray-3.2"),
        ({"model": "ray-2"}, 400, "model"),
        ({"aspect_ratio": "9:21"}, 422, "aspect_ratio"),
        ({"video": {"resolution": "4k"}}, 400, "resolution"),
        ({"video": {"duration": "9s"}}, 400, "duration"),
        ({"video": {"fps": 24}}, 400, "video.fps"),
        ({"keyframes": {}}, 400, "keyframes"),
        (
            {"video": {"duration": "10s", "start_frame": {"url": "https://x.test/a.png"}}},
            422,
            "text-to-video",
        ),
        ({"video": {"start_frame": {"data": "@@@", "media_type": "image/png"}}}, 422, "base64"),
        ({"video": {"start_frame": {"data": "AAAA"}}}, 400, "media_type"),
        (
            {"video": {"start_frame": {"url": "https://x.test/a.png", "data": "AAAA"}}},
            400,
            "exactly one",
        ),
        ({"video": {"hdr": True, "resolution": "540p"}}, 422, "hdr"),
        ({"video": {"exr_export": True}}, 422, "exr_export"),
    ],
)
def test_invalid_requests_are_refused_and_create_nothing(
    luma: httpx.Client, sim: SimulatorServer, fields: dict[str, Any], status: int, words: str
) -> None:
    detail = detail_of(luma.post("/generations", json={**VIDEO, **fields}), status)
    assert words in detail
    assert sim.creates() == [] and sim.counters()["creates_rejected"] == 1


def test_a_body_that_is_not_json_is_refused(luma: httpx.Client) -> None:
    response = luma.post(
        "/generations",
        content=b"prompt=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert "JSON" in detail_of(response, 400)


@pytest.mark.parametrize(
    ("marker", "code"),
    [
        ("[moderation]", "content_moderated"),
        ("[processing_error]", "generation_failed"),
        ("[fail]", "output_not_found"),
    ],
)
def test_failures_carry_a_code_and_a_reason_and_bill_nothing(
    luma: httpx.Client, sim: SimulatorServer, marker: str, code: str
) -> None:
    created = create(luma, prompt=f"a lighthouse {marker}")
    failed = until(luma, created["id"], ("failed", "completed"))
    assert failed["state"] == "failed" and failed["failure_code"] == code
    assert failed["failure_reason"] and failed["output"] is None
    counters = sim.counters()
    assert (counters["jobs_failed"], counters["jobs_billed"]) == (1, 0)


def test_moderation_and_processing_dice_apply(luma: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(moderation_rate=1.0)
    first = create(luma)
    sim.update_config(moderation_rate=0.0, processing_error_rate=1.0)
    second = create(luma)
    codes = [until(luma, g["id"], ("failed",))["failure_code"] for g in (first, second)]
    assert codes == ["content_moderated", "generation_failed"]


def test_outputs_expire_with_their_presigned_links(
    luma: httpx.Client, sim: SimulatorServer
) -> None:
    sim.update_config(content_ttl_seconds=1.0)
    done = until(luma, create(luma)["id"], ("completed",))
    time.sleep(0.05)  # 2.5 simulated seconds: past the TTL
    expired = httpx.get(done["output"][0]["url"], verify=SSL_CONTEXT)
    assert expired.status_code == 403 and b"expired" in expired.content


def test_keys_and_the_documented_refusals(luma: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(api_keys=["another-key"])
    assert "Invalid API key" in detail_of(luma.post("/generations", json=VIDEO), 401)
    bare = httpx.post(sim.url + "/luma/v1/generations", json=VIDEO, verify=SSL_CONTEXT)
    assert "Missing API key" in detail_of(bare, 401)
    sim.update_config(api_keys=None, insufficient_quota=True)
    assert "balance" in detail_of(luma.post("/generations", json=VIDEO), 402)
    assert sim.counters()["unauthorized_401"] == 2 and sim.creates() == []


def test_server_errors_resets_slowness_and_latency(
    luma: httpx.Client, sim: SimulatorServer
) -> None:
    sim.update_config(fail_5xx_rate=1.0)
    statuses = set()
    for _ in range(8):
        response = luma.post("/generations", json=VIDEO)
        detail_of(response, response.status_code)
        statuses.add(response.status_code)
    assert statuses <= {502, 503} and sim.creates() == []
    sim.update_config(fail_5xx_rate=0.0, reset_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        luma.get(f"/generations/{uuid.uuid4()}")
    sim.update_config(reset_rate=0.0, slow_rate=1.0, slow_seconds=0.6)
    with pytest.raises(httpx.ReadTimeout):
        luma.post("/generations", json={**VIDEO, "prompt": "slow"}, timeout=0.15)
    assert [entry["prompt"] for entry in sim.creates()] == ["slow"]
    sim.update_config(slow_rate=0.0, latency_ms=100)
    started = time.monotonic()
    assert luma.get(f"/generations/{sim.creates()[0]['id']}").status_code == 200
    assert time.monotonic() - started >= 0.1


def test_after_create_faults_leave_a_job_that_still_runs_and_bills(
    luma: httpx.Client, sim: SimulatorServer
) -> None:
    sim.update_config(fail_5xx_after_create_rate=1.0)
    assert detail_of(luma.post("/generations", json=VIDEO), 502)
    sim.update_config(fail_5xx_after_create_rate=0.0)
    with pytest.raises(httpx.RemoteProtocolError):
        luma.post("/generations", json={**VIDEO, "prompt": "[reset_after_create]"})
    entries = sim.creates()
    assert [e["answer"] for e in entries] == ["server_error", "connection_reset"]
    for entry in entries:
        until(luma, entry["id"], ("completed",))
    assert sim.counters()["jobs_billed"] == 2


def test_rate_limit_counts_every_call_and_names_the_limit(
    luma: httpx.Client, sim: SimulatorServer
) -> None:
    sim.update_config(rpm_limit=2, time_scale=1.0)
    created = create(luma)
    assert luma.get(f"/generations/{created['id']}").headers["x-ratelimit-limit"] == "2"
    refused = luma.post("/generations", json=VIDEO)
    assert "Rate limit" in detail_of(refused, 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert sim.counters()["rate_limited_429"] == 1


def test_there_is_no_list_cancel_or_delete(luma: httpx.Client) -> None:
    created = create(luma)
    assert luma.get("/generations").status_code == 405
    assert luma.delete(f"/generations/{created['id']}").status_code == 405
    assert luma.post(f"/generations/{created['id']}/cancel").status_code == 404
