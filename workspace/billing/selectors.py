"""Read side of billing: budget status, a member's usage, and the admin usage panel's figures.

Pages read the daily rollups (``DailyUsage``) and, for one member, the ledger through its
``(user, accounted_at)`` index, so every page runs a fixed number of queries whatever the date
range or the size of the ledger. Budget periods start at local midnights, so a period is a set
of whole rollup days and these figures equal the ledger's sums exactly.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from workspace.billing.models import (
    CLOSING_KINDS,
    Budget,
    DailyUsage,
    Dimension,
    LedgerEntry,
    Scope,
)
from workspace.billing.periods import (
    Bounds,
    Period,
    local_date,
    local_midnight,
    period_bounds,
)
from workspace.billing.services import budgets_applicable
from workspace.generations.models import ACTIVE_STATUSES, Generation, Status
from workspace.projects.models import Project
from workspace.providers.models import Channel
from workspace.providers.registry import PROVIDERS

logger = logging.getLogger(__name__)


def model_label(model_id: str) -> str:
    for provider in PROVIDERS.values():
        spec = provider.catalog.get(model_id)
        if spec is not None:
            return spec.label
    return model_id or "(none)"


# --- Budget status --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    name: str
    bounds: Bounds
    now: datetime
    spent_cents: int
    reserved_cents: int
    spent_seconds: int
    reserved_seconds: int
    member_id: int | None = None

    @property
    def limit_cents(self) -> int | None:
        return self.budget.limit_cents

    @property
    def limit_seconds(self) -> int | None:
        return self.budget.limit_seconds

    @property
    def used_cents(self) -> int:
        return self.spent_cents + self.reserved_cents

    @property
    def remaining_cents(self) -> int | None:
        if self.limit_cents is None:
            return None
        return max(0, self.limit_cents - self.used_cents)

    @property
    def remaining_seconds(self) -> int | None:
        if self.limit_seconds is None:
            return None
        return max(0, self.limit_seconds - self.spent_seconds - self.reserved_seconds)

    @property
    def percent(self) -> int:
        shares = []
        if self.limit_cents:
            shares.append(100 * self.used_cents / self.limit_cents)
        if self.limit_seconds:
            shares.append(100 * (self.spent_seconds + self.reserved_seconds) / self.limit_seconds)
        return round(max(shares, default=0))

    @property
    def resets_in(self) -> str:
        return self.bounds.resets_in(self.now)

    @property
    def elapsed_share(self) -> float | None:
        """How much of the period has passed (0 to 1); None for a period that never ends."""
        if self.bounds.end is None:
            return None
        length = (self.bounds.end - self.bounds.start).total_seconds()
        return min(1.0, max(0.0, (self.now - self.bounds.start).total_seconds() / length))

    @property
    def projected_cents(self) -> int | None:
        """Spend at the end of the period if it goes on at this period's pace so far."""
        share = self.elapsed_share
        if not share:
            return None
        return round(self.used_cents / share)

    @property
    def pace(self) -> str:
        if self.limit_cents is None or self.projected_cents is None:
            return ""
        if self.used_cents >= self.limit_cents:
            return "reached"
        if self.projected_cents > self.limit_cents:
            return "ahead of pace"
        return "on pace"


@dataclass(frozen=True)
class _Want:
    budget: Budget
    dimension: str
    key: str | None  # None: every key of the dimension (the organisation)
    bounds: Bounds
    member_id: int | None


def _rollup_totals(wants: list[_Want]) -> list[dict[str, int]]:
    """Sum the rollups of each wanted budget period: one query per dimension."""
    results: list[dict[str, int]] = [defaultdict(int) for _ in wants]
    by_dimension: dict[str, list[int]] = defaultdict(list)
    for index, want in enumerate(wants):
        by_dimension[want.dimension].append(index)
    for dimension, indexes in by_dimension.items():
        first = min(wants[i].bounds.first_day for i in indexes)
        rows = DailyUsage.objects.filter(dimension=dimension, day__gte=first)
        keys = {wants[i].key for i in indexes}
        if None not in keys:
            rows = rows.filter(key__in=keys)
        totals = rows.values("key", "day").annotate(
            spent=Sum("spent_cents"),
            reserved=Sum("reserved_cents"),
            spent_s=Sum("spent_seconds"),
            reserved_s=Sum("reserved_seconds"),
        )
        for row in totals:
            for i in indexes:
                want = wants[i]
                if want.key is not None and want.key != row["key"]:
                    continue
                end = want.bounds.end_day
                if row["day"] < want.bounds.first_day or (end is not None and row["day"] >= end):
                    continue
                for name in ("spent", "reserved", "spent_s", "reserved_s"):
                    results[i][name] += row[name] or 0
    return results


def _want(budget: Budget, *, member_id: int | None, at: datetime) -> _Want:
    bounds = period_bounds(budget.period, at)
    if budget.scope == Scope.ORGANISATION:
        return _Want(budget, Dimension.MODEL, None, bounds, member_id)
    if budget.scope == Scope.PROJECT:
        return _Want(budget, Dimension.PROJECT, str(budget.project_id), bounds, member_id)
    return _Want(budget, Dimension.MEMBER, str(member_id), bounds, member_id)


def _statuses(wants: list[_Want], *, now: datetime, viewer_id: int | None) -> list[BudgetStatus]:
    totals = _rollup_totals(wants)
    return [
        BudgetStatus(
            budget=want.budget,
            # The admin's view names budgets by what they are; a member's, as "your …".
            name=want.budget.title
            if viewer_id is None
            else want.budget.name_for(member_id=viewer_id),
            bounds=want.bounds,
            now=now,
            spent_cents=total["spent"],
            reserved_cents=total["reserved"],
            spent_seconds=total["spent_s"],
            reserved_seconds=total["reserved_s"],
            member_id=want.member_id,
        )
        for want, total in zip(wants, totals, strict=True)
    ]


def budget_statuses(
    *, user: User, project: Project | None = None, now: datetime | None = None
) -> list[BudgetStatus]:
    """Every budget that applies to ``user`` (in ``project``, or in any of their projects)."""
    now = now or timezone.now()
    if project is not None:
        budgets = budgets_applicable(user_id=user.pk, project_id=project.pk)
    else:
        budgets = budgets_applicable(user_id=user.pk, project_id=None) + list(
            Budget.objects.filter(
                scope=Scope.PROJECT, is_active=True, project__memberships__user=user
            ).select_related("project")
        )
    wants = [_want(b, member_id=user.pk, at=now) for b in budgets]
    return _statuses(wants, now=now, viewer_id=user.pk)


# --- A member's usage -----------------------------------------------------------------------------


@dataclass
class UsageRow:
    label: str
    spent_cents: int = 0
    reserved_cents: int = 0
    seconds: int = 0
    jobs: int = 0


@dataclass
class MemberUsage:
    statuses: list[BudgetStatus]
    period: Bounds
    period_label: str
    total: UsageRow
    by_project: list[UsageRow]
    by_model: list[UsageRow]
    months: list[UsageRow]
    history_by_project: list[UsageRow]
    history_by_model: list[UsageRow]
    history_total: UsageRow = field(default_factory=lambda: UsageRow("Total"))


def _add(row: UsageRow, values: Mapping[str, Any]) -> None:
    row.spent_cents += values["spent"] or 0
    row.reserved_cents += values["reserved"] or 0
    row.seconds += values["seconds"] or 0
    row.jobs += values["jobs"] or 0


def _project_names(ids: Iterable[int | None]) -> dict[int | None, str]:
    wanted = {i for i in ids if i is not None}
    names: dict[int | None, str] = dict(
        Project.objects.filter(pk__in=wanted).values_list("pk", "name")
    )
    names[None] = "(no project)"
    for missing in wanted - names.keys():
        names[missing] = f"(deleted project #{missing})"
    return names


def member_usage(*, user: User, now: datetime | None = None, months: int = 12) -> MemberUsage:
    """Spend this period and in the last ``months`` months, by project and by model."""
    now = now or timezone.now()
    statuses = budget_statuses(user=user, now=now)
    own = next((s for s in statuses if s.budget.scope == Scope.MEMBER), None)
    period = own.bounds if own is not None else period_bounds(Period.MONTH, now)
    if own is not None and own.bounds.end is None:
        period = period_bounds(Period.MONTH, now)  # "this period" of a lifetime budget: the month
    label = {
        Period.DAY: "Today",
        Period.WEEK: "This week",
    }.get(Period(own.budget.period) if own else Period.MONTH, "This month")

    first_month = local_date(now).replace(day=1)
    for _ in range(months - 1):
        first_month = (first_month - timedelta(days=1)).replace(day=1)
    # The member's own rollups by project and by model: a few rows per day, however many
    # entries they made (partial index on member, dimension, day).
    rows = list(
        DailyUsage.objects.filter(
            member=user.pk,
            dimension__in=[Dimension.MEMBER_PROJECT, Dimension.MEMBER_MODEL],
            day__gte=min(period.first_day, first_month),
        ).values_list(
            "dimension", "key", "day", "spent_cents", "reserved_cents", "spent_seconds",
            "settlements",
        )
    )  # fmt: skip
    names = _project_names(
        int(part) if part.isdigit() else None
        for dimension, key, *_ in rows
        if dimension == Dimension.MEMBER_PROJECT
        for part in [key.partition(":")[2]]
    )

    total = UsageRow(label)
    by_project: dict[str, UsageRow] = {}
    by_model: dict[str, UsageRow] = {}
    month_rows: dict[date, UsageRow] = {}
    cursor = first_month
    while cursor <= local_date(now):
        month_rows[cursor] = UsageRow(f"{cursor:%B %Y}")
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    history_total = UsageRow("Total")
    h_project: dict[str, UsageRow] = {}
    h_model: dict[str, UsageRow] = {}
    end_day = period.end_day
    for dimension, key, day, spent, reserved, seconds, settled in rows:
        values = {"spent": spent, "reserved": reserved, "seconds": seconds, "jobs": settled}
        part = key.partition(":")[2]
        by_project_rows = dimension == Dimension.MEMBER_PROJECT
        if by_project_rows:
            label_of = names[int(part) if part.isdigit() else None]
        else:
            label_of = model_label(part)
        if day >= period.first_day and (end_day is None or day < end_day):
            if by_project_rows:
                _add(total, values)  # each entry is in both breakdowns: count it once
            _add((by_project if by_project_rows else by_model).setdefault(
                part, UsageRow(label_of)), values)  # fmt: skip
        if day >= first_month:
            if by_project_rows:
                _add(history_total, values)
                _add(month_rows[day.replace(day=1)], values)
            _add((h_project if by_project_rows else h_model).setdefault(
                part, UsageRow(label_of)), values)  # fmt: skip

    def ordered(rows: Iterable[UsageRow]) -> list[UsageRow]:
        return sorted(rows, key=lambda r: (-r.spent_cents, -r.reserved_cents, r.label))

    return MemberUsage(
        statuses=statuses,
        period=period,
        period_label=label,
        total=total,
        by_project=ordered(by_project.values()),
        by_model=ordered(by_model.values()),
        months=list(reversed(month_rows.values())),
        history_by_project=ordered(h_project.values()),
        history_by_model=ordered(h_model.values()),
        history_total=history_total,
    )


# --- The admin usage panel ------------------------------------------------------------------------


@dataclass(frozen=True)
class Buckets:
    """Days of a range grouped into chart bars (one per day, or per week for long ranges)."""

    starts: list[date]
    step_days: int

    @property
    def labels(self) -> list[str]:
        return [f"{d:%-d %b}" if self.step_days == 1 else f"wk {d:%-d %b}" for d in self.starts]

    def index(self, day: date) -> int:
        return (day - self.starts[0]).days // self.step_days


def buckets_for(first: date, last: date) -> Buckets:
    days = (last - first).days + 1
    step = 1 if days <= 92 else 7
    if step == 7:
        first = first - timedelta(days=first.weekday())
    starts = []
    cursor = first
    while cursor <= last:
        starts.append(cursor)
        cursor += timedelta(days=step)
    return Buckets(starts=starts, step_days=step)


@dataclass
class Series:
    name: str
    values: list[int]

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass
class PanelUsage:
    first: date
    last: date
    buckets: Buckets
    spend_by_model: list[Series]
    by_member: list[UsageRow]
    by_project: list[UsageRow]
    outcomes: list[Series]
    outcome_totals: list[tuple[str, int, float]]
    total: UsageRow
    reserved_now_cents: int


def _dicts(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    # Rows of .values().annotate(**sums), typed loosely: the sums' names come from a dict.
    return [dict(row) for row in rows]


def _top(rows: list[UsageRow], limit: int) -> list[UsageRow]:
    rows.sort(key=lambda r: (-r.spent_cents, r.label))
    if len(rows) <= limit:
        return rows
    rest = UsageRow(f"{len(rows) - limit} others")
    for row in rows[limit:]:
        rest.spent_cents += row.spent_cents
        rest.reserved_cents += row.reserved_cents
        rest.seconds += row.seconds
        rest.jobs += row.jobs
    return [*rows[:limit], rest]


def panel_usage(*, first: date, last: date, top: int = 15) -> PanelUsage:
    """Spend per day by model, totals by member and project, and outcomes, for a day range."""
    buckets = buckets_for(first, last)
    in_range = DailyUsage.objects.filter(day__gte=first, day__lte=last)
    sums = {
        "spent": Sum("spent_cents"),
        "reserved": Sum("reserved_cents"),
        "seconds": Sum("spent_seconds"),
        "jobs": Sum("settlements"),
    }

    by_model: dict[str, list[int]] = {}
    total = UsageRow("Total")
    for row in _dicts(
        in_range.filter(dimension=Dimension.MODEL).values("day", "key").annotate(**sums).order_by()
    ):
        values = by_model.setdefault(row["key"], [0] * len(buckets.starts))
        values[buckets.index(row["day"])] += row["spent"] or 0
        _add(total, row)
    spend_by_model = sorted(
        (Series(model_label(k), v) for k, v in by_model.items()), key=lambda s: -s.total
    )

    member_rows = _dicts(
        in_range.filter(dimension=Dimension.MEMBER).values("key").annotate(**sums).order_by()
    )
    user_ids = {int(r["key"]) for r in member_rows if r["key"].isdigit()}
    usernames = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    members = []
    for row in member_rows:
        key = int(row["key"]) if row["key"].isdigit() else None
        usage = UsageRow(usernames.get(key, f"(user #{row['key']})") if key else "(nobody)")
        _add(usage, row)
        members.append(usage)

    project_rows = _dicts(
        in_range.filter(dimension=Dimension.PROJECT).values("key").annotate(**sums).order_by()
    )
    names = _project_names(int(r["key"]) if r["key"].isdigit() else None for r in project_rows)
    projects = []
    for row in project_rows:
        usage = UsageRow(names[int(row["key"]) if row["key"].isdigit() else None])
        _add(usage, row)
        projects.append(usage)

    outcome_counts: dict[str, list[int]] = {}
    for row in _dicts(
        in_range.filter(dimension=Dimension.OUTCOME)
        .values("day", "key")
        .annotate(closed=Sum("settlements") + Sum("releases"))
        .order_by()
    ):
        values = outcome_counts.setdefault(row["key"], [0] * len(buckets.starts))
        values[buckets.index(row["day"])] += row["closed"] or 0
    failures = sorted(
        (Series(k.removeprefix("failed:"), v) for k, v in outcome_counts.items()
         if k.startswith("failed:")),
        key=lambda s: -s.total,
    )  # fmt: skip
    finished = sum(sum(values) for values in outcome_counts.values())
    outcome_totals = [
        (series.name, series.total, (100.0 * series.total / finished) if finished else 0.0)
        for series in sorted(
            (Series(k, v) for k, v in outcome_counts.items()), key=lambda s: -s.total
        )
    ]
    reserved_now = DailyUsage.objects.filter(dimension=Dimension.MODEL).aggregate(
        r=Coalesce(Sum("reserved_cents"), 0)
    )["r"]
    return PanelUsage(
        first=first,
        last=last,
        buckets=buckets,
        spend_by_model=spend_by_model,
        by_member=_top(members, top),
        by_project=_top(projects, top),
        outcomes=failures,
        outcome_totals=outcome_totals,
        total=total,
        reserved_now_cents=reserved_now,
    )


def budget_pace(*, now: datetime | None = None, limit: int = 20) -> list[BudgetStatus]:
    """Period-to-date use of every active budget, busiest first (members: the top ``limit``)."""
    now = now or timezone.now()
    budgets = list(Budget.objects.filter(is_active=True).select_related("user", "project"))
    wants: list[_Want] = []
    default = next((b for b in budgets if b.scope == Scope.MEMBER and b.user_id is None), None)
    personal = {b.user_id for b in budgets if b.scope == Scope.MEMBER and b.user_id is not None}
    for budget in budgets:
        if budget.scope == Scope.MEMBER and budget.user_id is None:
            continue
        wants.append(_want(budget, member_id=budget.user_id, at=now))
    statuses = _statuses(wants, now=now, viewer_id=None)
    if default is not None:
        # The default member budget applies to everyone without their own: list who uses it.
        bounds = period_bounds(default.period, now)
        rows = (
            DailyUsage.objects.filter(dimension=Dimension.MEMBER, day__gte=bounds.first_day)
            .filter(**({"day__lt": bounds.end_day} if bounds.end_day else {}))
            .values("key")
            .annotate(
                spent=Sum("spent_cents"),
                reserved=Sum("reserved_cents"),
                spent_s=Sum("spent_seconds"),
                reserved_s=Sum("reserved_seconds"),
            )
            .order_by()
        )
        usage = [r for r in rows if r["key"].isdigit() and int(r["key"]) not in personal]
        usage.sort(key=lambda r: -((r["spent"] or 0) + (r["reserved"] or 0)))
        names = dict(
            get_user_model()
            .objects.filter(pk__in=[int(r["key"]) for r in usage[:limit]])
            .values_list("pk", "username")
        )
        for row in usage[:limit]:
            statuses.append(
                BudgetStatus(
                    budget=default,
                    name=f"{default.title} ({names.get(int(row['key']), row['key'])})",
                    bounds=bounds,
                    now=now,
                    spent_cents=row["spent"] or 0,
                    reserved_cents=row["reserved"] or 0,
                    spent_seconds=row["spent_s"] or 0,
                    reserved_seconds=row["reserved_s"] or 0,
                    member_id=int(row["key"]),
                )
            )
    order = {Scope.ORGANISATION: 0, Scope.PROJECT: 1, Scope.MEMBER: 2}
    statuses.sort(key=lambda s: (order[Scope(s.budget.scope)], -s.percent, s.name))
    return statuses


@dataclass
class ChannelState:
    channel: Channel
    depth: dict[str, int]
    in_flight: int
    queued: int
    last_day: dict[str, int]
    paused_for: float | None = None
    next_slot_in: float | None = None
    limiter_error: str = ""

    @property
    def failure_rate(self) -> float:
        done = sum(v for k, v in self.last_day.items() if k in ("completed", "failed"))
        return 100.0 * self.last_day.get("failed", 0) / done if done else 0.0


def channel_states(*, now: datetime | None = None) -> list[ChannelState]:
    """Queue depth, in-flight work, the last 24 hours' outcomes and limiter state per channel."""
    from workspace.providers.services import limiter_for_channel

    now = now or timezone.now()
    channels = list(Channel.objects.order_by("name"))
    depth: dict[int, dict[str, int]] = defaultdict(dict)
    for channel_id, status, count in (
        Generation.objects.filter(status__in=list(ACTIVE_STATUSES))
        .values("channel_id", "status")
        .annotate(n=Count("id"))
        .values_list("channel_id", "status", "n")
    ):
        depth[channel_id][status] = count
    last_day: dict[int, dict[str, int]] = defaultdict(dict)
    for channel_id, status, count in (
        Generation.objects.filter(created_at__gte=now - timedelta(days=1))
        .values("channel_id", "status")
        .annotate(n=Count("id"))
        .values_list("channel_id", "status", "n")
    ):
        last_day[channel_id][status] = count
    states = []
    for channel in channels:
        counts = depth.get(channel.pk, {})
        state = ChannelState(
            channel=channel,
            depth=counts,
            in_flight=counts.get(Status.SUBMITTING, 0) + counts.get(Status.IN_PROGRESS, 0),
            queued=counts.get(Status.QUEUED, 0),
            last_day=last_day.get(channel.pk, {}),
        )
        try:
            limiter = limiter_for_channel(channel=channel).state()
            state.paused_for = (
                max(0.0, limiter.paused_until - limiter.now) if limiter.paused_until else 0.0
            )
            state.next_slot_in = max(0.0, limiter.next_slot_at - limiter.now)
        except Exception as error:  # Redis down must not take the panel with it
            logger.warning("limiter state of channel %s unavailable: %r", channel.pk, error)
            state.limiter_error = "Limiter state unavailable (Redis unreachable)."
        states.append(state)
    return states


# The ledger export: (CSV header, ORM lookup) per column, so headers and values cannot drift.
LEDGER_EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("created_at", "created_at"),
    ("accounted_at", "accounted_at"),
    ("kind", "kind"),
    ("member", "user__username"),
    ("project_id", "project_id"),
    ("project", "project__name"),
    ("channel", "channel__slug"),
    ("model", "model"),
    ("size", "size"),
    ("seconds", "seconds"),
    ("usd_per_second", "usd_per_second"),
    ("spent_cents", "spent_cents"),
    ("reserved_cents", "reserved_cents"),
    ("spent_seconds", "spent_seconds"),
    ("reserved_seconds", "reserved_seconds"),
    ("outcome", "outcome"),
    ("error_class", "error_class"),
    ("generation_id", "generation_id"),
    ("created_by", "created_by__username"),
    ("reason", "reason"),
)


def ledger_rows(*, first: date, last: date) -> Iterator[tuple[object, ...]]:
    """Ledger entries written between two local days (inclusive), oldest first, for export;
    one value per ``LEDGER_EXPORT_COLUMNS`` entry."""
    start, end = local_midnight(first), local_midnight(last + timedelta(days=1))
    return (
        LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end)
        .order_by("created_at", "id")
        .values_list(*(lookup for _, lookup in LEDGER_EXPORT_COLUMNS))
        .iterator(chunk_size=5000)
    )


@dataclass(frozen=True)
class ReportedCostRow:
    """Jobs of one model whose provider reported their cost: its figure beside our list price."""

    label: str
    jobs: int
    list_cents: int
    reported_cents: int

    @property
    def difference_cents(self) -> int:
        return self.reported_cents - self.list_cents


def reported_costs(*, first: date, last: date) -> list[ReportedCostRow]:
    """Per model, the closed generations of a day range that carry a provider-reported cost.

    The list price is what was reserved (a closing entry gives it back as ``-reserved_cents``);
    the reported cost is the provider's own figure on the generation. A generation deleted since
    has no figure left and is not counted.
    """
    rows = (
        LedgerEntry.objects.filter(
            kind__in=CLOSING_KINDS,
            accounted_at__gte=local_midnight(first),
            accounted_at__lt=local_midnight(last + timedelta(days=1)),
            generation__provider_reported_cost_cents__isnull=False,
        )
        .values("model")
        .annotate(
            jobs=Count("id"),
            reserved=Sum("reserved_cents"),
            reported=Sum("generation__provider_reported_cost_cents"),
        )
        .order_by("model")
    )
    return [
        ReportedCostRow(
            label=model_label(row["model"]),
            jobs=row["jobs"],
            list_cents=-(row["reserved"] or 0),
            reported_cents=row["reported"] or 0,
        )
        for row in rows
    ]
