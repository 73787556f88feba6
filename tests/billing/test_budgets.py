"""Budgets refuse at once with a clear message, reset at local midnight, and always agree with
the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum

from tests.billing.conftest import budget, submit
from workspace.billing.models import BudgetCounter, DailyUsage, LedgerEntry, Scope
from workspace.billing.periods import Period, period_bounds
from workspace.billing.selectors import budget_statuses, member_usage
from workspace.billing.services import (
    adjustment_create,
    counters_recount,
    reservation_create,
    reservation_release,
    reservation_settle,
    usage_rollups_rebuild,
)
from workspace.generations.models import Generation, Status


def refusal(caught: pytest.ExceptionInfo[ValidationError]) -> str:
    return " ".join(caught.value.messages)


def test_a_submission_over_the_member_budget_is_refused_with_amounts_and_reset(
    project, teammate
) -> None:  # type: ignore[no-untyped-def]
    budget(cents=100)  # the default budget of every member: $1.00 a month
    submit(project, teammate)
    submit(project, teammate)  # $0.80 reserved
    with pytest.raises(ValidationError) as caught:
        submit(project, teammate)
    message = refusal(caught)
    assert "Your monthly budget would be exceeded" in message
    assert "$0.00 spent and $0.80 reserved of $1.00 ($0.20 left)" in message
    assert "this video costs $0.40" in message
    assert "It resets in" in message and "UTC" in message
    # Refused at once: nothing was queued and nothing reserved.
    assert Generation.objects.count() == 2
    assert LedgerEntry.objects.count() == 2


def test_the_refusal_names_the_project_and_organisation_budgets(project, owner, teammate) -> None:  # type: ignore[no-untyped-def]
    budget(Scope.PROJECT, project=project, cents=50, period=Period.WEEK)
    with pytest.raises(ValidationError) as caught:
        submit(project, teammate, model="sora-2-pro")  # $1.20
    assert "Weekly budget of project “Launch film” would be exceeded" in refusal(caught)

    budget(Scope.ORGANISATION, cents=30, period=Period.DAY)
    with pytest.raises(ValidationError) as caught:
        submit(project, owner)
    message = refusal(caught)
    assert "The organisation's daily budget would be exceeded" in message
    assert "of $0.30" in message


def test_a_personal_budget_replaces_the_default_one(project, owner, teammate) -> None:  # type: ignore[no-untyped-def]
    budget(cents=40)
    budget(user=teammate, cents=1000)
    for _ in range(3):
        submit(project, teammate)
    submit(project, owner)
    with pytest.raises(ValidationError):
        submit(project, owner)


def test_seconds_of_video_and_allowed_models(project, teammate) -> None:  # type: ignore[no-untyped-def]
    budget(user=teammate, allowed_models=["sora-2"])
    budget(Scope.ORGANISATION, period=Period.NONE, **{"limit_seconds": 10})
    with pytest.raises(ValidationError) as caught:
        submit(project, teammate, model="sora-2-pro")
    assert "allows sora-2 only" in caught.value.message_dict["model"][0]
    submit(project, teammate, seconds=8)
    with pytest.raises(ValidationError) as caught:
        submit(project, teammate, seconds=4)
    message = refusal(caught)
    assert "lifetime budget of 10 seconds of video would be exceeded" in message
    assert "8 s made" not in message and "0 s made and 8 s reserved" in message
    assert "never resets" in message


def test_a_budget_created_mid_period_counts_what_was_already_spent(project, teammate) -> None:  # type: ignore[no-untyped-def]
    first = submit(project, teammate)
    Generation.objects.filter(pk=first.pk).update(status=Status.COMPLETED)
    reservation_settle(generation=first)
    budget(user=teammate, cents=80)
    submit(project, teammate)
    with pytest.raises(ValidationError) as caught:
        submit(project, teammate)
    assert "$0.40 spent and $0.40 reserved of $0.80" in refusal(caught)


def _reserve_at(project, user, channel, moment: datetime) -> Generation:  # type: ignore[no-untyped-def]
    generation = Generation.objects.create(
        project=project,
        created_by=user,
        channel=channel,
        model="sora-2",
        prompt="at the boundary",
        size="1280x720",
        seconds=4,
        created_at=moment,
    )
    reservation_create(generation=generation)
    return generation


def test_periods_reset_at_midnight_in_the_organisations_time_zone(
    project, teammate, channel, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.TIME_ZONE = "Pacific/Auckland"  # UTC+13 in summer
    budget(cents=40)  # one 4-second sora-2 video per calendar month
    auckland = ZoneInfo("Pacific/Auckland")
    before = datetime(2026, 11, 30, 23, 59, tzinfo=auckland)
    after = datetime(2026, 12, 1, 0, 1, tzinfo=auckland)
    # In UTC both moments are on 30 November: only the local calendar separates them.
    assert before.astimezone(UTC).date() == after.astimezone(UTC).date()

    _reserve_at(project, teammate, channel, before)
    with pytest.raises(ValidationError):
        _reserve_at(project, teammate, channel, before + timedelta(seconds=30))
    _reserve_at(project, teammate, channel, after)  # a new month in Auckland
    with pytest.raises(ValidationError) as caught:
        _reserve_at(project, teammate, channel, after + timedelta(minutes=1))
    assert "(on 1 January 2027 at 00:00 Pacific/Auckland)" in refusal(caught)

    starts = sorted(BudgetCounter.objects.values_list("period_start", flat=True))
    assert starts == [
        datetime(2026, 10, 31, 11, 0, tzinfo=UTC),  # 1 Nov 00:00 NZDT
        datetime(2026, 11, 30, 11, 0, tzinfo=UTC),  # 1 Dec 00:00 NZDT
    ]
    status = budget_statuses(user=teammate, now=after + timedelta(days=24))[0]
    assert (status.reserved_cents, status.remaining_cents) == (40, 0)
    assert status.resets_in.replace("\xa0", " ") == "6 days"


def test_week_and_day_periods(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TIME_ZONE = "America/New_York"
    moment = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # Tuesday 24 Nov, 22:00 in New York
    week = period_bounds(Period.WEEK, moment)
    day = period_bounds(Period.DAY, moment)
    assert week.start == datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # Monday 00:00 EST
    assert week.end == datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
    assert day.start == datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    assert period_bounds(Period.NONE, moment).end is None
    # Across the end of daylight saving time a month is still local midnight to local midnight.
    november = period_bounds(Period.MONTH, moment)
    october = period_bounds(Period.MONTH, datetime(2026, 10, 15, tzinfo=UTC))
    assert october.end == november.start == datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # EDT
    assert november.end == datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # EST


def test_the_ledger_always_sums_to_what_the_counters_and_pages_show(
    project, owner, teammate, admin_user
) -> None:  # type: ignore[no-untyped-def]
    budget(cents=10_000)
    budget(Scope.PROJECT, project=project, cents=10_000)
    budget(Scope.ORGANISATION, cents=100_000)
    made = [submit(project, person, seconds=s) for person in (owner, teammate) for s in (4, 8, 12)]
    made.append(submit(project, teammate, model="sora-2-pro", size="1792x1024", seconds=8))
    for generation in made[:3]:
        Generation.objects.filter(pk=generation.pk).update(status=Status.COMPLETED)
        reservation_settle(generation=generation)
    Generation.objects.filter(pk=made[3].pk).update(status=Status.CANCELED)
    reservation_release(generation=made[3])
    adjustment_create(actor=admin_user, member=teammate, amount_cents=-25, reason="Goodwill")

    ledger = LedgerEntry.objects.aggregate(spent=Sum("spent_cents"), reserved=Sum("reserved_cents"))
    for counter in BudgetCounter.objects.select_related("budget"):
        entries = LedgerEntry.objects.all()
        if counter.budget.scope == Scope.MEMBER:
            entries = entries.filter(user_id=counter.user_id)
        elif counter.budget.scope == Scope.PROJECT:
            entries = entries.filter(project_id=counter.budget.project_id)
        sums = entries.aggregate(spent=Sum("spent_cents"), reserved=Sum("reserved_cents"))
        assert (counter.spent_cents, counter.reserved_cents) == (sums["spent"], sums["reserved"])
    # Nothing needs recounting: the counters were right all along.
    assert counters_recount() == 0

    for person in (owner, teammate):
        usage = member_usage(user=person)
        mine = LedgerEntry.objects.filter(user_id=person.pk).aggregate(
            spent=Sum("spent_cents"), reserved=Sum("reserved_cents")
        )
        assert (usage.total.spent_cents, usage.total.reserved_cents) == (
            mine["spent"],
            mine["reserved"],
        )
        statuses = {s.budget.scope: s for s in usage.statuses}
        assert statuses["member"].spent_cents == mine["spent"]
        assert statuses["member"].reserved_cents == mine["reserved"]
        assert statuses["organisation"].spent_cents == ledger["spent"]
        assert statuses["organisation"].reserved_cents == ledger["reserved"]
        in_project = LedgerEntry.objects.filter(project=project).aggregate(
            spent=Sum("spent_cents"), reserved=Sum("reserved_cents")
        )
        assert statuses["project"].used_cents == in_project["spent"] + in_project["reserved"]
        assert usage.history_total.spent_cents == mine["spent"]

    # The incrementally kept rollups equal a rebuild from the ledger, row for row.
    def rollups() -> set[tuple[object, ...]]:
        return set(
            DailyUsage.objects.values_list(
                "day", "dimension", "key", "spent_cents", "reserved_cents", "spent_seconds",
                "reserved_seconds", "reservations", "settlements", "releases",
            )
        )  # fmt: skip

    kept = rollups()
    usage_rollups_rebuild()
    assert rollups() == kept


def test_recounting_repairs_a_counter_that_drifted_from_the_ledger(project, teammate) -> None:  # type: ignore[no-untyped-def]
    budget(cents=1000)
    submit(project, teammate)
    BudgetCounter.objects.update(reserved_cents=999, spent_cents=5)
    assert counters_recount() == 1
    counter = BudgetCounter.objects.get()
    assert (counter.spent_cents, counter.reserved_cents) == (0, 40)


def test_changing_a_budgets_period_rebuilds_its_counters_from_the_ledger(project, teammate) -> None:  # type: ignore[no-untyped-def]
    monthly = budget(cents=120)
    submit(project, teammate)
    submit(project, teammate)
    monthly.period = Period.WEEK
    monthly.save()
    assert not BudgetCounter.objects.exists()
    submit(project, teammate)
    counter = BudgetCounter.objects.get()
    assert counter.reserved_cents == 120  # the two earlier reservations are this week's too
    with pytest.raises(ValidationError) as caught:
        submit(project, teammate)
    assert "Your weekly budget would be exceeded" in refusal(caught)
