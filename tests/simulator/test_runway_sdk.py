"""runwayml 5.24.0, unmodified, drives the simulated Runway API.

The SDK's own types are the contract: the client validates every answer strictly
(``_strict_response_validation``), so a missing ``cost``/``estimatedCost`` or a wrong status word
fails here instead of quietly parsing as the first variant of the task union ("PENDING").
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import runwayml
from runwayml.types import task_retrieve_response as task_types

from workspace.simulator import SimulatorServer

from .helpers import API_KEY, SSL_CONTEXT, make_png

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


def sdk_client(sim: SimulatorServer, key: str = API_KEY) -> runwayml.RunwayML:
    return runwayml.RunwayML(
        api_key=key,
        base_url=sim.url + "/runway",
        max_retries=0,
        _strict_response_validation=True,
        http_client=httpx.Client(verify=SSL_CONTEXT, timeout=10),
    )


@pytest.fixture
def runway(sim: SimulatorServer) -> Iterator[runwayml.RunwayML]:
    with sdk_client(sim) as client:
        yield client


def retrieve_until(client: runwayml.RunwayML, task_id: str, statuses: tuple[str, ...],
                   timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        task = client.tasks.retrieve(task_id)
        if task.status in statuses:
            return task
        assert task.status not in TERMINAL, task
        assert time.monotonic() < deadline, task
        time.sleep(0.005)


def test_text_to_video_is_created_polled_and_succeeds_with_its_cost(
    runway: runwayml.RunwayML, sim: SimulatorServer
) -> None:
    created = runway.text_to_video.create(model="gen4.5", prompt_text="a lighthouse at dusk",
                                          ratio="1280:720", duration=5, seed=7)
    assert created.estimated_cost.credits == 60.0
    first = runway.tasks.retrieve(created.id)
    assert isinstance(first, task_types.Pending | task_types.Running | task_types.Succeeded)
    if not isinstance(first, task_types.Succeeded):
        assert first.estimated_cost.credits == 60.0
    done = retrieve_until(runway, created.id, ("SUCCEEDED",))
    # Parsed as the SUCCEEDED variant, not as the union's first (pending) one.
    assert isinstance(done, task_types.Succeeded)
    assert done.cost.credits == 60
    [url] = done.output
    video = httpx.get(url, verify=SSL_CONTEXT)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert sim.counters()["billed_cents"] == 60
    assert sim.creates()[0]["seed"] == 7


def test_veo_takes_a_seed_and_gen45_an_output_format(
    runway: runwayml.RunwayML, sim: SimulatorServer
) -> None:
    veo = runway.text_to_video.create(model="veo3.1_fast", prompt_text="surf", ratio="720:1280",
                                      duration=4, audio=False, seed=4294967295,
                                      negative_prompt="rain")
    assert veo.estimated_cost.credits == 10 * 4
    prores = runway.text_to_video.create(model="gen4.5", prompt_text="a mill", ratio="720:1280",
                                         duration=2, output_format="prores",
                                         prores_profile="422 HQ")
    # "5 credits per second for prores" on top of gen4.5's 12.
    assert prores.estimated_cost.credits == (12 + 5) * 2
    assert isinstance(retrieve_until(runway, veo.id, ("SUCCEEDED",)), task_types.Succeeded)
    assert retrieve_until(runway, prores.id, ("SUCCEEDED",)).cost.credits == 34
    logged = {entry["id"]: entry for entry in sim.creates()}
    assert logged[veo.id]["seed"] == 4294967295
    assert logged[prores.id]["output_format"] == "prores"


def test_image_to_video_with_first_and_last_frames(runway: runwayml.RunwayML) -> None:
    image = "data:image/png;base64," + base64.b64encode(make_png(8, 8)).decode()
    created = runway.image_to_video.create(
        model="veo3.1", prompt_text="the tide comes in", ratio="1280:720", duration=6,
        prompt_image=[{"uri": image, "position": "first"}, {"uri": image, "position": "last"}],
    )
    assert created.estimated_cost.credits == 40 * 6
    done = retrieve_until(runway, created.id, ("SUCCEEDED",))
    assert isinstance(done, task_types.Succeeded) and done.cost.credits == 240


def test_a_failed_task_reads_its_code_and_costs_nothing(runway: runwayml.RunwayML) -> None:
    created = runway.text_to_video.create(model="gen4.5", prompt_text="boat [moderation]",
                                          ratio="1280:720", duration=4)
    failed = retrieve_until(runway, created.id, ("FAILED",))
    assert isinstance(failed, task_types.Failed)
    assert failed.failure_code == "SAFETY.INPUT.TEXT" and failed.failure
    assert failed.cost.credits == 0


def test_a_task_canceled_while_running_is_charged_and_gone(
    make_server: Callable[..., SimulatorServer],
) -> None:
    sim = make_server(time_scale=1.0, seed=1234)
    with sdk_client(sim) as runway:
        pending = runway.text_to_video.create(model="gen4.5", prompt_text="a kite",
                                              ratio="1280:720", duration=10)
        running = runway.text_to_video.create(model="gen4.5", prompt_text="a kite",
                                              ratio="1280:720", duration=10)
        # Canceled before it started: refunded.
        assert isinstance(runway.tasks.retrieve(pending.id), task_types.Pending)
        runway.tasks.delete(pending.id)
        assert isinstance(retrieve_until(runway, running.id, ("RUNNING",)), task_types.Running)
        # "If that check observes RUNNING, cancellation does not refund credits."
        runway.tasks.delete(running.id)
        with pytest.raises(runwayml.NotFoundError):
            runway.tasks.retrieve(running.id)
        with pytest.raises(runwayml.NotFoundError):
            runway.tasks.delete(running.id)
    log = {entry["id"]: entry for entry in sim.creates()}
    assert log[pending.id]["status"] == "canceled" and not log[pending.id]["billed"]
    assert log[running.id]["status"] == "canceled" and log[running.id]["billed"]
    assert sim.counters()["billed_cents"] == 120


def test_deleting_a_finished_task_keeps_its_charge(runway: runwayml.RunwayML,
                                                   sim: SimulatorServer) -> None:
    created = runway.text_to_video.create(model="gen4.5", prompt_text="a pier",
                                          ratio="1280:720", duration=3)
    retrieve_until(runway, created.id, ("SUCCEEDED",))
    runway.tasks.delete(created.id)
    with pytest.raises(runwayml.NotFoundError):
        runway.tasks.retrieve(created.id)
    assert sim.counters()["billed_cents"] == 36


def test_errors_surface_as_the_sdks_exception_classes(
    runway: runwayml.RunwayML, sim: SimulatorServer
) -> None:
    with pytest.raises(runwayml.BadRequestError) as invalid:
        runway.text_to_video.create(model="gen4.5", prompt_text="x", ratio="1280:720",
                                    duration=11)
    assert "duration" in str(invalid.value.body)
    sim.update_config(api_keys=[API_KEY])
    with sdk_client(sim, key="key_wrong") as stranger, pytest.raises(
        runwayml.AuthenticationError
    ):
        stranger.tasks.retrieve("00000000-0000-0000-0000-000000000000")
    with pytest.raises(runwayml.NotFoundError):
        runway.tasks.retrieve("00000000-0000-0000-0000-000000000000")
    sim.update_config(rpm_limit=1, rpm_scope="create")
    runway.text_to_video.create(model="gen4.5", prompt_text="y", ratio="1280:720", duration=2)
    with pytest.raises(runwayml.RateLimitError):
        runway.text_to_video.create(model="gen4.5", prompt_text="y", ratio="1280:720",
                                    duration=2)
    assert sim.counters()["creates"] == 1
