"""Costs as the provider reports them: recorded on the generation, settled in the ledger (the list
price stays the reservation), and shown beside the list price in the admin usage panel."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from tests.billing.conftest import budget, kinds, submit
from workspace.billing.models import BudgetCounter, LedgerEntry
from workspace.billing.selectors import reported_costs
from workspace.billing.services import (
    price_set,
    reservation_close_failed,
    reservation_settle,
)
from workspace.generations.models import Generation, Status
from workspace.projects.models import Project
from workspace.providers.errors import ErrorClass
from workspace.providers.models import Channel
from workspace.providers.registry import provider
from workspace.simulator.server import SimulatorServer


def runway_only(channel: Channel) -> Channel:
    channel.is_active = False
    channel.save(update_fields=["is_active"])
    return Channel.objects.create(
        slug="runway", name="Runway", protocol="runway",
        api_key_env=provider("runway").api_key_env, requests_per_minute=60_000,
        max_in_flight=50, member_max_in_flight=50)


def finished(generation: Generation):  # type: ignore[no-untyped-def]
    return lambda: Generation.objects.get(pk=generation.pk).is_terminal


@pytest.mark.django_db(transaction=True)
def test_a_runway_job_settles_at_the_cost_runway_reports(  # type: ignore[no-untyped-def]
    project: Project, teammate: User, channel: Channel, simulator: SimulatorServer, run_workers
) -> None:
    runway = runway_only(channel)
    # Our list price is above what the (simulated) Runway bills: 15 c/s against its 12.
    price_set(channel=runway, model="gen4.5", size="1280x720", usd_per_second=Decimal("0.15"))
    budget(cents=10_000)
    generation = submit(project, teammate, model="gen4.5", seconds=5)
    assert generation.estimated_cost_cents == 75
    run_workers(finished(generation))
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED, generation.error_message
    assert generation.provider_reported_cost_cents == 60
    settle = LedgerEntry.objects.get(generation_id=generation.pk, kind="settle")
    assert (settle.spent_cents, settle.reserved_cents) == (60, -75)
    assert "reported $0.60" in settle.reason and "list price $0.75" in settle.reason
    assert settle.spent_cents == simulator.counters()["billed_cents"]
    counter = BudgetCounter.objects.get(budget__scope="member")
    assert (counter.spent_cents, counter.reserved_cents) == (60, 0)


@pytest.mark.django_db(transaction=True)
def test_a_runway_failure_reported_free_is_released(  # type: ignore[no-untyped-def]
    project: Project, teammate: User, channel: Channel, simulator: SimulatorServer, run_workers
) -> None:
    runway_only(channel)
    budget(cents=10_000)
    generation = submit(project, teammate, prompt="A harbour [moderation]", model="gen4.5",
                        seconds=5)
    run_workers(finished(generation))
    generation.refresh_from_db()
    assert (generation.status, generation.error_class) == (Status.FAILED, "moderation")
    assert generation.provider_reported_cost_cents == 0
    # Without the figure Runway's policy would count a moderated task after acceptance.
    assert kinds(generation) == ["reserve", "release"]
    release = LedgerEntry.objects.get(generation_id=generation.pk, kind="release")
    assert "reported no charge" in release.reason
    assert simulator.counters()["billed_cents"] == 0


def test_a_failure_with_a_reported_charge_settles_at_that_charge(project, teammate) -> None:  # type: ignore[no-untyped-def]
    generation = submit(project, teammate)
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.FAILED, error_class=ErrorClass.PROVIDER_FAILED.value,
        provider_job_id="task-1", provider_reported_cost_cents=25)
    entry = reservation_close_failed(generation=generation)
    assert entry is not None and entry.kind == "settle"
    assert (entry.spent_cents, entry.reserved_cents) == (25, -40)


def test_without_a_reported_cost_the_list_price_is_settled(project, teammate) -> None:  # type: ignore[no-untyped-def]
    generation = submit(project, teammate)
    Generation.objects.filter(pk=generation.pk).update(status=Status.COMPLETED)
    entry = reservation_settle(generation=generation)
    assert entry is not None and (entry.spent_cents, entry.reserved_cents) == (40, -40)
    assert "reported" not in entry.reason


def test_the_usage_panel_shows_list_price_beside_reported_cost(  # type: ignore[no-untyped-def]
    project, teammate, admin_client
) -> None:
    reported = submit(project, teammate)
    plain = submit(project, teammate, prompt="Another lighthouse")
    Generation.objects.filter(pk=reported.pk).update(
        status=Status.COMPLETED, provider_reported_cost_cents=31)
    Generation.objects.filter(pk=plain.pk).update(status=Status.COMPLETED)
    reservation_settle(generation=reported)
    reservation_settle(generation=plain)
    day = LedgerEntry.objects.get(generation_id=reported.pk, kind="settle").accounted_at.date()
    [row] = reported_costs(first=day, last=day)
    assert (row.jobs, row.list_cents, row.reported_cents, row.difference_cents) == (1, 40, 31, -9)
    page = admin_client.get(reverse("admin:billing_usagepanel_changelist")).content.decode()
    assert "reported cost" in page
    assert "$0.40" in page and "$0.31" in page and "-$0.09" in page
