"""Each simulator switch does what it says, and the counters account for it exactly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from workspace.simulator import SimulatorServer

from .helpers import SSL_CONTEXT, assert_error, assert_schema, make_client, wait_for


def post(client: httpx.Client, prompt: str = "a quiet harbour", **fields: Any) -> httpx.Response:
    return client.post("/videos", json={"prompt": prompt, **fields})


def job_ids(server: SimulatorServer) -> list[str]:
    return [entry["id"] for entry in server.creates()]


# ---- rate limit ----------------------------------------------------------------------------


def test_rpm_limit_counts_every_api_call_and_answers_429_with_headers(
        client: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(rpm_limit=3)
    video = post(client).json()
    responses = [client.get(f"/videos/{video['id']}"), client.get("/videos")]
    first = client.get(f"/videos/{video['id']}/content")  # the 4th call: over the limit
    remaining = [r.headers["x-ratelimit-remaining-requests"] for r in responses]
    assert remaining == ["1", "0"]
    assert all(r.headers["x-ratelimit-limit-requests"] == "3" for r in responses)
    error = assert_error(first, 429, code="rate_limit_exceeded", type_="requests")
    assert error["message"].startswith("Rate limit reached for requests")
    retry_after = int(first.headers["retry-after"])
    # 60 simulated seconds at time_scale 50 is 1.2 real seconds, rounded up.
    assert 1 <= retry_after <= 2
    assert first.headers["x-ratelimit-remaining-requests"] == "0"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert_error(post(client), 429)
    counters = sim.counters()
    assert counters["rate_limited_429"] == 2
    assert counters["creates"] == 1 and counters["creates_rejected"] == 1
    assert counters["requests_total"] == 5 and counters["downloads"] == 1


def test_refused_requests_do_not_fill_the_window(
        make_server: Callable[..., SimulatorServer]) -> None:
    # 60 simulated seconds pass in 0.3 real seconds: if the 429s counted, the window would
    # never empty while we keep knocking every 5 ms.
    server = make_server(rpm_limit=1, time_scale=200.0)
    with make_client(server) as client:
        assert client.get("/videos").status_code == 200
        refused = 0
        deadline = time.monotonic() + 30
        while (response := client.get("/videos")).status_code == 429:
            refused += 1
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert response.status_code == 200
    assert refused >= 1
    assert server.counters()["rate_limited_429"] == refused


def test_rate_headers_are_absent_without_a_limit(client: httpx.Client) -> None:
    assert "x-ratelimit-limit-requests" not in client.get("/videos").headers


# ---- injected failures ---------------------------------------------------------------------


def test_fail_5xx_rate_answers_500_and_503_before_doing_anything(
        client: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(fail_5xx_rate=1.0)
    statuses = set()
    for _ in range(12):
        response = post(client)
        error = assert_error(response, response.status_code, type_="server_error")
        statuses.add(response.status_code)
        if response.status_code == 503:
            assert error["code"] == "server_is_overloaded"
            assert "overloaded" in error["message"]
            assert int(response.headers["retry-after"]) >= 1
        else:
            assert response.status_code == 500
    assert statuses == {500, 503}
    counters = sim.counters()
    assert counters["errors_5xx_sent"] == 12 and counters["creates"] == 0
    assert sim.creates() == []


def test_reset_rate_drops_the_connection_before_anything_happens(
        client: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(reset_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        post(client)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/videos")
    counters = sim.counters()
    assert counters["connections_reset"] == 2 and counters["creates"] == 0


def test_reset_after_create_drops_the_answer_but_the_job_exists(
        client: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(reset_after_create_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, "ambiguous create")
    sim.update_config(reset_after_create_rate=0.0)
    listed = client.get("/videos").json()["data"]
    assert [v["prompt"] for v in listed] == ["ambiguous create"]
    (entry,) = sim.creates()
    assert entry["id"] == listed[0]["id"] and entry["answer"] == "connection_reset"
    wait_for(client, entry["id"])
    counters = sim.counters()
    assert counters["creates"] == 1 and counters["connections_reset"] == 1
    assert counters["jobs_billed"] == 1  # the job the client never heard of still bills


def test_fail_5xx_after_create_answers_500_but_the_job_runs_and_bills(
        client: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(fail_5xx_after_create_rate=1.0)
    assert_error(post(client, seconds="8"), 500, type_="server_error")
    (entry,) = sim.creates()
    assert entry["answer"] == "server_error"
    assert wait_for(client, entry["id"])["status"] == "completed"
    counters = sim.counters()
    assert counters["errors_5xx_sent"] == 1 and counters["creates"] == 1
    assert (counters["jobs_billed"], counters["billed_seconds"]) == (1, 8)


def test_slow_rate_holds_the_answer_after_creating_the_job(
        client: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(slow_rate=1.0, slow_seconds=0.6)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/videos", json={"prompt": "slow"}, timeout=0.15)
    assert time.monotonic() - started < 0.5
    assert [entry["prompt"] for entry in sim.creates()] == ["slow"]
    sim.update_config(slow_seconds=0.2)
    started = time.monotonic()
    assert client.get("/videos").status_code == 200
    assert time.monotonic() - started >= 0.2
    assert sim.counters()["slow_responses"] == 2


def test_stop_wakes_requests_held_by_slow_answers(
        make_server: Callable[..., SimulatorServer]) -> None:
    server = make_server(slow_rate=1.0, slow_seconds=60.0)
    outcome: list[str] = []

    def call() -> None:
        with make_client(server, timeout=10) as client:
            try:
                client.get("/videos")
                outcome.append("answered")
            except httpx.HTTPError as exc:
                outcome.append(type(exc).__name__)

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 30
    while server.counters()["slow_responses"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    started = time.monotonic()
    server.stop()
    thread.join(timeout=5)
    assert not thread.is_alive() and outcome
    assert time.monotonic() - started < 2


def test_latency_is_added_to_api_calls_only(client: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(latency_ms=150)
    started = time.monotonic()
    client.get("/videos")
    assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    httpx.get(sim.url + "/_sim/state", verify=SSL_CONTEXT)
    assert time.monotonic() - started < 0.15


def test_insufficient_quota_refuses_creates_without_retry_after(
        client: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(insufficient_quota=True)
    response = post(client)
    error = assert_error(response, 429, type_="insufficient_quota",
                         code="credit_balance_exhausted")
    assert "quota" in error["message"]
    assert "retry-after" not in response.headers
    assert client.get("/videos").status_code == 200  # only creates are refused
    counters = sim.counters()
    assert counters["creates"] == 0 and counters["creates_rejected"] == 1
    assert counters["quota_rejected_429"] == 1 and counters["rate_limited_429"] == 0


# ---- job outcomes --------------------------------------------------------------------------

FAILURE_CASES = [
    ({"moderation_rate": 1.0}, "a meadow", "moderation_blocked",
     "Your request was blocked by our moderation system."),
    ({"processing_error_rate": 1.0}, "a meadow", "processing_error",
     "We're under heavy load, please try again later."),
    ({}, "a meadow [moderation]", "moderation_blocked", None),
    ({}, "a meadow [processing_error]", "processing_error", None),
    ({}, "a meadow [fail]", "internal_error", None),
]


@pytest.mark.parametrize(("config", "prompt", "code", "message"), FAILURE_CASES)
def test_jobs_fail_with_the_documented_errors_and_are_not_billed(
        client: httpx.Client, sim: SimulatorServer, config: dict[str, Any], prompt: str,
        code: str, message: str | None) -> None:
    sim.update_config(**config)
    video = post(client, prompt).json()
    assert video["status"] == "queued"  # failure only shows later, as with the real API
    failed = wait_for(client, video["id"], ("failed", "completed"))
    assert_schema(failed, "VideoResource")
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == code
    if message is not None:
        assert failed["error"]["message"] == message
    assert failed["expires_at"] is None and failed["completed_at"] is not None
    assert_error(client.get(f"/videos/{video['id']}/content"), 404)
    counters = sim.counters()
    assert (counters["jobs_failed"], counters["jobs_completed"], counters["jobs_billed"]) == (
        1, 0, 0)
    assert counters["billed_cents"] == 0
    assert sim.creates()[0]["billed"] is False


def test_prompt_triggers_for_create_faults(client: httpx.Client, sim: SimulatorServer) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, "[reset_after_create] one")
    assert_error(post(client, "[fail_5xx_after_create] two"), 500)
    sim.update_config(slow_seconds=0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/videos", json={"prompt": "[slow] three"}, timeout=0.1)
    answers = [(entry["prompt"], entry["answer"]) for entry in sim.creates()]
    assert answers == [("[reset_after_create] one", "connection_reset"),
                       ("[fail_5xx_after_create] two", "server_error"),
                       ("[slow] three", "ok")]


def _outcomes(server: SimulatorServer, count: int) -> list[str]:
    with make_client(server) as client:
        ids = [post(client, f"job {n}").json()["id"] for n in range(count)]
        return [wait_for(client, video_id, ("completed", "failed"))["status"] for video_id in ids]


def test_seeded_rates_are_deterministic(make_server: Callable[..., SimulatorServer]) -> None:
    config = {"seed": 99, "moderation_rate": 0.5, "render_seconds": 0.0}
    first = _outcomes(make_server(**config), 16)
    second_server = make_server(**config)
    second = _outcomes(second_server, 16)
    assert first == second
    assert set(first) == {"completed", "failed"}
    second_server.reset()
    assert _outcomes(second_server, 16) == first


# ---- counters and billing ------------------------------------------------------------------


def test_billing_is_counted_exactly_once_however_often_a_job_is_read(
        client: httpx.Client, sim: SimulatorServer) -> None:
    video = post(client, model="sora-2-pro", size="1792x1024", seconds="8").json()
    wait_for(client, video["id"])
    for _ in range(3):
        client.get(f"/videos/{video['id']}")
        client.get("/videos")
        sim.counters()
        sim.creates()
    counters = sim.counters()
    assert (counters["jobs_completed"], counters["jobs_billed"]) == (1, 1)
    assert (counters["billed_seconds"], counters["billed_cents"]) == (8, 8 * 50)
    entry = sim.creates()[0]
    assert entry["billed"] is True and entry["billed_cents"] == 400


@pytest.mark.parametrize(("model", "size", "seconds", "cents"), [
    ("sora-2", "720x1280", "12", 120),
    ("sora-2-2025-12-08", "1280x720", "4", 40),
    ("sora-2-pro", "1280x720", "4", 120),
    ("sora-2-pro-2025-10-06", "1024x1792", "12", 600),
])
def test_prices_follow_the_published_list(
        client: httpx.Client, sim: SimulatorServer, model: str, size: str, seconds: str,
        cents: int) -> None:
    sim.update_config(render_seconds=0.0)
    assert post(client, model=model, size=size, seconds=seconds).status_code == 200
    # Nobody polls: counters() itself commits the due completion.
    assert sim.counters()["billed_cents"] == cents


def test_counters_track_every_kind_of_call(client: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(render_seconds=0.0)
    video = post(client).json()
    client.get(f"/videos/{video['id']}")
    client.get("/videos")
    for variant in ("video", "thumbnail", "spritesheet", "thumbnail"):
        client.get(f"/videos/{video['id']}/content", params={"variant": variant})
    client.delete(f"/videos/{video['id']}")
    post(client, seconds="3")
    httpx.get(sim.url + "/_sim/state", verify=SSL_CONTEXT)  # control calls are not counted
    counters = sim.counters()
    expected = {
        "requests_total": 9, "creates": 1, "creates_rejected": 1, "status_calls": 1,
        "list_calls": 1, "downloads": 4, "downloads_video": 1, "downloads_thumbnail": 2,
        "downloads_spritesheet": 1, "deletes": 1, "jobs_completed": 1, "jobs_billed": 1,
        "billed_seconds": 4, "billed_cents": 40, "jobs_failed": 0, "errors_5xx_sent": 0,
    }
    assert {name: counters[name] for name in expected} == expected
    assert all(isinstance(value, int) for value in counters.values())


def test_concurrent_clients_are_served_consistently(
        client: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(render_seconds=0.5)
    created: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        with make_client(sim) as own:
            for _ in range(8):
                video_id = post(own).json()["id"]
                own.get(f"/videos/{video_id}")
                own.get("/videos", params={"limit": 5})
                with lock:
                    created.append(video_id)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(created)) == 64
    for video_id in created:
        wait_for(client, video_id)
    counters = sim.counters()
    assert counters["creates"] == 64 and counters["jobs_billed"] == 64
    assert counters["billed_seconds"] == 64 * 4
    assert len(sim.creates()) == 64


# ---- control surface -----------------------------------------------------------------------


def test_control_endpoints_over_http(client: httpx.Client, sim: SimulatorServer) -> None:
    control = httpx.Client(base_url=sim.url + "/_sim", verify=SSL_CONTEXT)
    state = control.get("/state").json()
    assert state["config"]["time_scale"] == 50.0 and state["counters"]["requests_total"] == 0
    changed = control.post("/config", json={"rpm_limit": 1, "moderation_rate": 0.25})
    assert changed.status_code == 200
    assert changed.json()["config"]["rpm_limit"] == 1
    assert sim.config.moderation_rate == 0.25
    for bad in ({"nope": 1}, {"rpm_limit": "ten"}, {"fail_5xx_rate": 1.5}, {"latency_ms": True},
                {"api_keys": "sk-single"}, {"time_scale": 0}):
        response = control.post("/config", json=bad)
        assert response.status_code == 400, bad
        assert_schema(response.json(), "ErrorResponse")
    assert control.post("/config", content=b"[1]").status_code == 400
    assert sim.config.rpm_limit == 1  # a rejected change leaves the config alone
    # Control calls are neither rate limited nor authenticated.
    for _ in range(3):
        assert control.get("/state").status_code == 200
    post(client, "logged")
    assert [entry["prompt"] for entry in control.get("/creates").json()] == ["logged"]
    after_reset = control.post("/reset").json()
    assert after_reset["counters"]["creates"] == 0
    assert control.get("/creates").json() == []
    assert control.get("/nothing").status_code == 404
    assert control.get("/reset").status_code == 405
    control.close()


def test_reset_forgets_jobs_counters_and_windows(client: httpx.Client,
                                                 sim: SimulatorServer) -> None:
    sim.update_config(rpm_limit=2)
    video = post(client).json()
    client.get("/videos")
    assert_error(client.get("/videos"), 429)
    sim.reset()
    assert set(sim.counters().values()) == {0}
    assert sim.creates() == []
    assert_error(client.get(f"/videos/{video['id']}"), 404)  # the window is empty again, too
    assert sim.config.rpm_limit == 2  # the config survives a reset


def test_update_config_validates(sim: SimulatorServer) -> None:
    with pytest.raises(ValueError, match="unknown"):
        sim.update_config(rpm=5)
    with pytest.raises(ValueError, match="rpm_limit"):
        sim.update_config(rpm_limit=0)
    with pytest.raises(ValueError, match="seed"):
        sim.update_config(seed=1.5)
    sim.update_config(rpm_limit=None, seed=None, api_keys=None, fail_5xx_rate=1)
    assert sim.config.fail_5xx_rate == 1.0


def test_rpm_scope_create_limits_only_creates() -> None:
    import httpx

    from workspace.simulator.server import SimulatorConfig, SimulatorServer

    with SimulatorServer(config=SimulatorConfig(rpm_limit=1, rpm_scope="create")) as sim:
        sim.start()
        auth = {"Authorization": "Bearer k"}
        body = {"model": "sora-2", "prompt": "p", "size": "1280x720", "seconds": "4"}
        first = httpx.post(f"{sim.url}/v1/videos", json=body, headers=auth)
        assert first.status_code == 200
        for _ in range(5):  # status checks are not limited
            assert httpx.get(f"{sim.url}/v1/videos/{first.json()['id']}", headers=auth).status_code == 200
        assert httpx.post(f"{sim.url}/v1/videos", json=body, headers=auth).status_code == 429
        assert sim.counters()["rate_limited_429"] == 1
