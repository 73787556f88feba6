"""Failover: a failing channel's new work goes to the next channel of its route; work a provider
already accepted stays where it started."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from workspace.generations.failover import generations_fail_over
from workspace.generations.models import Generation, Status
from workspace.generations.submission import generation_submit
from workspace.providers.models import Channel, FailoverRoute, FailoverStep
from workspace.providers.services import channel_available, circuit_for_channel
from workspace.simulator.server import SimulatorConfig, SimulatorServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def second_provider() -> Iterator[SimulatorServer]:
    with SimulatorServer(config=SimulatorConfig(time_scale=200.0)) as server:
        server.start()
        yield server


@pytest.fixture
def channels(simulator, second_provider):  # type: ignore[no-untyped-def]
    fast = {"requests_per_minute": 60_000, "max_in_flight": 50, "member_max_in_flight": 50}
    first = Channel.objects.create(
        slug="primary", name="Primary", base_url=f"{simulator.url}/v1", **fast
    )
    first.set_api_key("sk-primary-key-0001")
    first.save()
    backup = Channel.objects.create(
        slug="backup", name="Backup", base_url=f"{second_provider.url}/v1", **fast
    )
    backup.set_api_key("sk-backup-key-0002")
    backup.save()
    route = FailoverRoute.objects.create(name="Sora 2 anywhere")
    FailoverStep.objects.create(route=route, position=1, channel=first, model="sora-2")
    FailoverStep.objects.create(route=route, position=2, channel=backup, model="sora-2")
    return first, backup


def submit(project, user, channel, prompt):  # type: ignore[no-untyped-def]
    return generation_submit(
        project=project, user=user, channel=channel, model="sora-2", prompt=prompt,
        size="1280x720", seconds=4,
    )


def test_new_work_fails_over_while_accepted_work_stays(
    project, teammate, channels, simulator, second_provider, run_workers
) -> None:  # type: ignore[no-untyped-def]
    primary, backup = channels
    started = submit(project, teammate, primary, "accepted by the primary")
    run_workers(lambda: Generation.objects.get(pk=started.pk).status != Status.QUEUED)
    # The primary provider starts failing: its circuit opens after a run of 5xx answers.
    simulator.update_config(fail_5xx_rate=1.0)
    circuit = circuit_for_channel(channel=primary)
    for _ in range(10):
        circuit.record(ok=False)
    assert not channel_available(channel=primary)

    moved = submit(project, teammate, primary, "submitted while the primary fails")
    assert moved.channel_id == backup.pk  # members see which channel runs it
    run_workers(lambda: Generation.objects.get(pk=moved.pk).is_terminal)
    assert Generation.objects.get(pk=moved.pk).status == Status.COMPLETED
    assert second_provider.counters()["creates"] == 1

    # The job the primary already accepted stays there and finishes once it recovers.
    stayed = Generation.objects.get(pk=started.pk)
    assert stayed.channel_id == primary.pk
    simulator.update_config(fail_5xx_rate=0.0)
    circuit.reset()
    run_workers(lambda: Generation.objects.get(pk=started.pk).is_terminal)
    stayed.refresh_from_db()
    assert (stayed.status, stayed.channel_id) == (Status.COMPLETED, primary.pk)
    assert simulator.counters()["creates"] == 1


def test_queued_work_moves_when_the_channel_is_halted(project, teammate, channels) -> None:  # type: ignore[no-untyped-def]
    from workspace.providers.services import channel_halt

    primary, backup = channels
    waiting = [submit(project, teammate, primary, f"waiting {n}") for n in range(3)]
    channel_halt(channel=primary, reason="The provider refused the organisation's API key.")
    assert generations_fail_over(channel=Channel.objects.get(pk=primary.pk)) == 3
    assert {g.channel_id for g in Generation.objects.filter(pk__in=[g.pk for g in waiting])} == {backup.pk}


def test_without_a_route_work_waits_for_the_channel(project, teammate, channel) -> None:  # type: ignore[no-untyped-def]
    from workspace.providers.services import channel_halt

    waiting = submit(project, teammate, channel, "no route")
    channel_halt(channel=channel, reason="no credit")
    assert generations_fail_over(channel=Channel.objects.get(pk=channel.pk)) == 0
    assert Generation.objects.get(pk=waiting.pk).status == Status.QUEUED
