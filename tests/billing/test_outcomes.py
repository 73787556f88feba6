"""Reserve, then settle or release, for every way a generation ends: real runs through the
simulator where the outcome comes from the provider, direct state changes where it does not."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.billing.conftest import budget, kinds, submit
from workspace.billing.models import BudgetCounter, DailyUsage, LedgerEntry
from workspace.billing.policy import failure_is_charged
from workspace.billing.services import (
    reservation_close,
    reservation_close_failed,
    reservation_release,
    reservation_settle,
    reservations_close_orphans,
)
from workspace.generations.models import Generation, Status
from workspace.generations.submission import generation_cancel
from workspace.providers.errors import ErrorClass


def finished(generation: Generation):  # type: ignore[no-untyped-def]
    return lambda: Generation.objects.get(pk=generation.pk).is_terminal


def counter_of(member) -> BudgetCounter:  # type: ignore[no-untyped-def]
    return BudgetCounter.objects.get(budget__scope="member")


@pytest.mark.django_db(transaction=True)
def test_a_completed_generation_settles_its_reservation(
    project, teammate, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    budget(cents=1000)
    generation = submit(project, teammate)
    counter = counter_of(teammate)
    assert (counter.spent_cents, counter.reserved_cents) == (0, 40)
    run_workers(finished(generation))
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    assert kinds(generation) == ["reserve", "settle"]
    counter.refresh_from_db()
    assert (counter.spent_cents, counter.reserved_cents) == (40, 0)
    assert (counter.spent_seconds, counter.reserved_seconds) == (4, 0)
    settle = LedgerEntry.objects.get(generation_id=generation.pk, kind="settle")
    assert settle.outcome == "completed" and settle.spent_cents == 40
    # The simulator billed exactly what we settled.
    assert simulator.counters()["billed_cents"] == settle.spent_cents


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("trigger", "error_class"),
    [("[moderation]", ErrorClass.MODERATION), ("[processing_error]", ErrorClass.OVERLOADED)],
)
def test_a_job_the_provider_fails_releases_its_reservation(
    project, teammate, simulator, run_workers, trigger, error_class
) -> None:  # type: ignore[no-untyped-def]
    budget(cents=1000)
    generation = submit(project, teammate, prompt=f"A harbour at night {trigger}")
    run_workers(finished(generation))
    generation.refresh_from_db()
    assert (generation.status, generation.error_class) == (Status.FAILED, error_class)
    assert kinds(generation) == ["reserve", "release"]
    release = LedgerEntry.objects.get(generation_id=generation.pk, kind="release")
    assert (release.outcome, release.error_class) == ("failed", error_class)
    assert "does not charge" in release.reason
    counter = counter_of(teammate)
    assert (counter.spent_cents, counter.reserved_cents) == (0, 0)
    assert simulator.counters()["billed_cents"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_finished_render_whose_files_expired_is_still_charged(
    project, teammate, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    budget(cents=1000)
    simulator.update_config(content_ttl_seconds=0)
    generation = submit(project, teammate)
    run_workers(finished(generation))
    generation.refresh_from_db()
    assert generation.status == Status.FAILED, generation.status
    assert generation.provider_finished_at is not None
    assert kinds(generation) == ["reserve", "settle"]
    counter = counter_of(teammate)
    assert (counter.spent_cents, counter.reserved_cents) == (40, 0)
    # The provider rendered (and billed) it; our spend matches its bill.
    assert simulator.counters()["billed_cents"] == 40


def test_a_canceled_generation_releases_its_reservation(project, teammate) -> None:  # type: ignore[no-untyped-def]
    budget(cents=1000)
    generation = submit(project, teammate)
    generation_cancel(generation=generation, user=teammate)
    assert kinds(generation) == ["reserve", "release"]
    counter = counter_of(teammate)
    assert (counter.spent_cents, counter.reserved_cents) == (0, 0)
    assert LedgerEntry.objects.get(kind="release").outcome == "canceled"


def test_settle_and_release_are_idempotent(project, teammate) -> None:  # type: ignore[no-untyped-def]
    budget(cents=1000)
    generation = submit(project, teammate)
    Generation.objects.filter(pk=generation.pk).update(status=Status.COMPLETED)
    assert reservation_settle(generation=generation) is not None
    # A repeated settle (a duplicated job), or a late release, changes nothing.
    assert reservation_settle(generation=generation) is None
    assert reservation_release(generation=generation) is None
    assert reservation_close(generation=generation) is None
    assert kinds(generation) == ["reserve", "settle"]
    counter = counter_of(teammate)
    assert (counter.spent_cents, counter.reserved_cents) == (40, 0)
    model_day = DailyUsage.objects.get(dimension="model", key="sora-2")
    assert (model_day.spent_cents, model_day.reserved_cents, model_day.settlements) == (40, 0, 1)


def test_an_ambiguous_create_that_was_given_up_is_charged(project, teammate) -> None:  # type: ignore[no-untyped-def]
    generation = submit(project, teammate)
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.FAILED, error_class=ErrorClass.AMBIGUOUS_CREATE.value
    )
    entry = reservation_close_failed(generation=generation)
    assert entry is not None and entry.kind == "settle"
    assert "charges" in entry.reason


@pytest.mark.parametrize(
    ("kind", "error_class", "finished_at_provider", "charged"),
    [
        ("openai_videos", ErrorClass.MODERATION, False, False),
        ("openai_videos", ErrorClass.PROVIDER_FAILED, False, False),
        ("openai_videos", ErrorClass.INVALID_REQUEST, False, False),
        ("openai_videos", ErrorClass.QUOTA_EXHAUSTED, False, False),
        ("openai_videos", ErrorClass.NOT_FOUND, False, False),
        ("openai_videos", ErrorClass.AMBIGUOUS_CREATE, False, True),
        ("openai_videos", ErrorClass.EXPIRED, True, True),
        ("openai_videos", ErrorClass.NETWORK, True, True),
        ("gemini", ErrorClass.MODERATION, False, False),
        ("fal", ErrorClass.INVALID_REQUEST, False, True),
        ("fal", ErrorClass.PROVIDER_FAILED, False, False),
        ("runway", ErrorClass.MODERATION, False, True),
        ("luma", ErrorClass.MODERATION, False, True),
        ("luma", ErrorClass.OVERLOADED, False, True),
        ("luma", ErrorClass.INVALID_REQUEST, False, False),
        ("removed_provider", ErrorClass.MODERATION, False, True),
    ],
)
def test_the_billing_table(kind, error_class, finished_at_provider, charged) -> None:  # type: ignore[no-untyped-def]
    # Every case here is a job the provider had accepted.
    assert (
        failure_is_charged(
            kind=kind,
            error_class=error_class.value,
            provider_finished=finished_at_provider,
            provider_accepted=True,
        )
        is charged
    )


def test_a_failure_before_the_provider_accepted_the_job_is_never_charged_by_class() -> None:
    for kind in ("fal", "runway", "luma", "removed_provider"):
        assert not failure_is_charged(
            kind=kind,
            error_class=ErrorClass.INVALID_REQUEST.value,
            provider_finished=False,
            provider_accepted=False,
        )


def test_the_sweep_closes_reservations_a_crashed_worker_left_open(project, teammate) -> None:  # type: ignore[no-untyped-def]
    budget(cents=1000)
    done, failed, running = (submit(project, teammate) for _ in range(3))
    # The worker "died" right after each final transition, before settling or releasing.
    Generation.objects.filter(pk=done.pk).update(status=Status.COMPLETED)
    Generation.objects.filter(pk=failed.pk).update(
        status=Status.FAILED, error_class=ErrorClass.MODERATION.value, completed_at=timezone.now()
    )
    assert reservations_close_orphans() == 2
    assert reservations_close_orphans() == 0
    assert kinds(done) == ["reserve", "settle"]
    assert kinds(failed) == ["reserve", "release"]
    assert kinds(running) == ["reserve"]
    counter = counter_of(teammate)
    assert (counter.spent_cents, counter.reserved_cents) == (40, 40)
