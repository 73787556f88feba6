"""Prices, the atomic check-and-reserve, settling, releasing, adjustments and warnings.

How a budget holds under concurrency: every budget that applies to a submission has one
``BudgetCounter`` row for the current period. ``reservation_create`` locks those rows
(``SELECT … FOR UPDATE`` on PostgreSQL, in budget order so two submissions never deadlock;
SQLite runs ``IMMEDIATE`` transactions, which take the database write lock at ``BEGIN``), checks
``spent + reserved + cost <= limit`` on the locked values, and writes the ledger entry and the
new sums before the transaction ends. A second submission at the edge waits for the first to
commit and then sees its reservation, so no number of simultaneous submissions overspends.

Counters, rollups and the ledger are written in the same transaction, so
``counter == sum(ledger entries of that budget and period)`` always; ``counters_recount``
rebuilds counters from the ledger if that were ever in doubt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.mail import send_mass_mail
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    F,
    IntegerField,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Concat, NullIf, TruncDate
from django.urls import reverse
from django.utils import timezone

from workspace.billing.models import (
    CLOSING_KINDS,
    Budget,
    BudgetCounter,
    DailyUsage,
    Dimension,
    Kind,
    LedgerEntry,
    Price,
    PriceVariant,
    Scope,
)
from workspace.billing.periods import Bounds, local_date, org_timezone, period_bounds
from workspace.billing.policy import failure_is_charged
from workspace.core.models import Notification
from workspace.generations.models import TERMINAL_STATUSES, Generation, Status
from workspace.projects.models import Project, Role
from workspace.providers.models import Channel

logger = logging.getLogger(__name__)

# Warnings go out once per budget period at each of these shares of a limit.
THRESHOLDS = (100, 80)
# Catalog prices seeded into an empty price table apply from the beginning of time.
PRICE_SEED_FROM = datetime(2000, 1, 1, tzinfo=UTC)


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) / 100:,.2f}"


# --- Prices -----------------------------------------------------------------------------------


def _catalog_prices(channel: Channel) -> list[tuple[str, str, str, int]]:
    """(model, size, variant, cents per second) for every list price the catalog publishes."""
    rows = []
    for spec in channel.catalog.models:
        for size, cents in spec.cents_per_second.items():
            rows.append((spec.id, size, PriceVariant.STANDARD.value, cents))
            silent = spec.price_cents_per_second(size, audio=False)
            if spec.audio_toggle and silent is not None and silent != cents:
                rows.append((spec.id, size, PriceVariant.SILENT.value, silent))
    return rows


def prices_seed(*, channel: Channel) -> int:
    """Give every model, size and variant of the channel's catalog its published price, if it
    has none.

    Runs on first use, so a new channel (or a model added to the catalog) is priced without a
    migration; rows that already have any price are left alone.
    """
    priced = set(
        Price.objects.filter(channel=channel).values_list("model", "size", "variant").distinct()
    )
    missing = [
        Price(
            channel=channel,
            model=model,
            size=size,
            variant=variant,
            usd_per_second=Decimal(cents) / 100,
            effective_from=PRICE_SEED_FROM,
            note="Published list price (from the model catalog)",
        )
        for model, size, variant, cents in _catalog_prices(channel)
        if (model, size, variant) not in priced
    ]
    # ignore_conflicts: another process may seed the same rows at the same moment.
    Price.objects.bulk_create(missing, ignore_conflicts=True)
    return len(missing)


def price_current(
    *,
    channel: Channel,
    model: str,
    size: str,
    variant: str = "",
    at: datetime | None = None,
) -> Price:
    """The price in effect at ``at`` (now by default): the source of truth for what a job costs.

    A variant without a price of its own (a model whose silent output costs the same) is
    charged at the standard price.
    """
    at = at or timezone.now()

    def in_effect(variant: str) -> Price | None:
        return (
            Price.objects.filter(
                channel=channel, model=model, size=size, variant=variant, effective_from__lte=at
            )
            .order_by("-effective_from")
            .first()
        )

    def lookup() -> Price | None:
        return (in_effect(variant) if variant else None) or in_effect(PriceVariant.STANDARD)

    price = lookup()
    # First use (or a concurrent first use that just committed): seed what is missing and look
    # again; sizes an admin priced only from a future date stay unpriced until then.
    if (price is None or (variant and price.variant != variant)) and prices_seed(channel=channel):
        price = lookup()
    if price is None:
        raise ValidationError(
            {
                "model": (
                    f"No price is set for {model} at {size} on {channel.name}, so it cannot be "
                    "charged; an admin has to add one under Billing → Prices."
                )
            }
        )
    return price


def price_table(*, channel: Channel, at: datetime | None = None) -> dict[str, Any]:
    """Cents per second in effect now by model, size and variant, for the forms' estimates."""
    at = at or timezone.now()
    prices_seed(channel=channel)
    table: dict[str, Any] = {}
    rows = (
        Price.objects.filter(channel=channel, effective_from__lte=at)
        .order_by("model", "size", "variant", "-effective_from")
        .distinct("model", "size", "variant")
        if connection.vendor == "postgresql"
        else _latest_rows(Price.objects.filter(channel=channel, effective_from__lte=at))
    )
    for price in rows:
        cents = price.usd_per_second * 100
        table.setdefault(price.model, {}).setdefault(price.size, {})[price.variant] = float(cents)
    return table


def _latest_rows(prices: Any) -> list[Price]:
    latest: dict[tuple[str, str, str], Price] = {}
    for price in prices.order_by("effective_from"):
        latest[(price.model, price.size, price.variant)] = price
    return list(latest.values())


def price_validate(
    *,
    channel: Channel,
    model: str,
    size: str,
    effective_from: datetime | None,
    now: datetime,
    variant: str = "",
) -> None:
    errors: dict[str, str] = {}
    spec = channel.catalog.get(model)
    if spec is None:
        names = ", ".join(m.id for m in channel.catalog.models)
        errors["model"] = f"{channel.name} has no model {model!r}; choose one of {names}."
    elif size not in spec.sizes:
        errors["size"] = f"{spec.label} makes {', '.join(spec.sizes)}; not {size!r}."
    elif variant == PriceVariant.SILENT and not spec.audio_toggle:
        errors["variant"] = (
            f"{spec.label} cannot switch its audio off, so it has no price without audio."
        )
    # A minute of slack for the time it takes to fill in the form.
    if effective_from is not None and effective_from < now - timedelta(minutes=1):
        errors["effective_from"] = (
            "A price cannot start in the past: that would rewrite what past generations cost. "
            "Add a new price from now or later instead."
        )
    if errors:
        raise ValidationError(errors)


def price_set(
    *,
    channel: Channel,
    model: str,
    size: str,
    usd_per_second: Decimal,
    variant: str = "",
    effective_from: datetime | None = None,
    note: str = "",
) -> Price:
    """Add a price from ``effective_from`` (now by default) on; older prices stay as they were."""
    now = timezone.now()
    price_validate(
        channel=channel,
        model=model,
        size=size,
        variant=variant,
        effective_from=effective_from,
        now=now,
    )
    if usd_per_second < 0:
        raise ValidationError({"usd_per_second": "A price cannot be negative."})
    return Price.objects.create(
        channel=channel,
        model=model,
        size=size,
        variant=variant,
        usd_per_second=usd_per_second,
        effective_from=effective_from or now,
        note=note,
    )


# --- Which budgets apply, and their locked counters ---------------------------------------------


def budgets_applicable(*, user_id: int | None, project_id: int | None) -> list[Budget]:
    """The active budgets a member's spend in a project counts against, in lock order.

    The organisation budget, the member's own budget (or else the default member budget) and
    the project's budget.
    """
    scopes = Q(scope=Scope.ORGANISATION) | Q(scope=Scope.MEMBER, user__isnull=True)
    if user_id is not None:
        scopes |= Q(scope=Scope.MEMBER, user_id=user_id)
    if project_id is not None:
        scopes |= Q(scope=Scope.PROJECT, project_id=project_id)
    budgets = list(Budget.objects.filter(scopes, is_active=True).select_related("project", "user"))
    if any(b.scope == Scope.MEMBER and b.user_id is not None for b in budgets):
        budgets = [b for b in budgets if not (b.scope == Scope.MEMBER and b.user_id is None)]
    return sorted(budgets, key=lambda b: b.pk)


@dataclass
class _Slot:
    """One budget's counter for one member (member budgets) and one period."""

    budget: Budget
    user_id: int | None
    bounds: Bounds
    counter: BudgetCounter | None = None

    @property
    def key(self) -> tuple[int, int | None, datetime]:
        return (self.budget.pk, self.user_id, self.bounds.start)


def _slots(budgets: Iterable[Budget], *, user_id: int | None, at: datetime) -> list[_Slot]:
    slots = []
    for budget in budgets:
        member = (budget.user_id or user_id) if budget.scope == Scope.MEMBER else None
        slots.append(_Slot(budget=budget, user_id=member, bounds=period_bounds(budget.period, at)))
    return slots


def _ledger_scope(slot: _Slot) -> Q:
    if slot.budget.scope == Scope.MEMBER:
        return Q(user_id=slot.user_id)
    if slot.budget.scope == Scope.PROJECT:
        return Q(project_id=slot.budget.project_id)
    return Q()


def _ledger_sums(slot: _Slot) -> dict[str, int]:
    entries = LedgerEntry.objects.filter(_ledger_scope(slot), accounted_at__gte=slot.bounds.start)
    if slot.bounds.end is not None:
        entries = entries.filter(accounted_at__lt=slot.bounds.end)
    return entries.aggregate(
        spent_cents=Coalesce(Sum("spent_cents"), 0),
        reserved_cents=Coalesce(Sum("reserved_cents"), 0),
        spent_seconds=Coalesce(Sum("spent_seconds"), 0),
        reserved_seconds=Coalesce(Sum("reserved_seconds"), 0),
    )


def _counter_filter(slots: list[_Slot]) -> Q:
    match = Q(pk__in=[])
    for slot in slots:
        match |= Q(budget_id=slot.budget.pk, user_id=slot.user_id, period_start=slot.bounds.start)
    return match


def _lock_counters(slots: list[_Slot]) -> list[_Slot]:
    """Lock (creating from the ledger where missing) the counters of ``slots``, in key order.

    Must run inside a transaction. Every caller locks in the same order (budget id, member), so
    concurrent reservations wait for each other instead of deadlocking.
    """
    if not slots:
        return []
    slots = sorted(slots, key=lambda s: (s.budget.pk, s.user_id or 0))
    existing = {
        (c.budget_id, c.user_id, c.period_start)
        for c in BudgetCounter.objects.filter(_counter_filter(slots)).only(
            "budget_id", "user_id", "period_start"
        )
    }
    missing = [s for s in slots if s.key not in existing]
    if missing:
        # A counter starts from the ledger: a budget created mid-period counts what was already
        # spent. ON CONFLICT DO NOTHING: if another transaction creates the same counter first,
        # this insert waits for it to commit and then uses its row.
        BudgetCounter.objects.bulk_create(
            [
                BudgetCounter(
                    budget_id=s.budget.pk,
                    user_id=s.user_id,
                    period_start=s.bounds.start,
                    period_end=s.bounds.end,
                    **_ledger_sums(s),
                )
                for s in missing
            ],
            ignore_conflicts=True,
        )
    locked = {
        (c.budget_id, c.user_id, c.period_start): c
        for c in BudgetCounter.objects.select_for_update()
        .filter(_counter_filter(slots))
        .order_by("budget_id", "user_id")
    }
    for slot in slots:
        slot.counter = locked[slot.key]
    return slots


# --- Writing entries ------------------------------------------------------------------------------


def _outcome_key(entry: LedgerEntry) -> str:
    if entry.outcome == Status.FAILED:
        return f"failed:{entry.error_class or 'unknown'}"
    return entry.outcome or "unknown"


def _rollup(entry: LedgerEntry) -> None:
    """Add the entry to the daily rollups in one upsert (same transaction as the entry)."""
    day = local_date(entry.accounted_at)
    counts = (
        int(entry.kind == Kind.RESERVE),
        int(entry.kind == Kind.SETTLE),
        int(entry.kind == Kind.RELEASE),
    )
    sums = (entry.spent_cents, entry.reserved_cents, entry.spent_seconds, entry.reserved_seconds)
    user, project = entry.user_id, entry.project_id
    rows: list[tuple[Any, ...]] = [
        (Dimension.MODEL.value, entry.model, None, *sums, *counts),
        (Dimension.MEMBER.value, str(user or ""), None, *sums, *counts),
        (Dimension.PROJECT.value, str(project or ""), None, *sums, *counts),
    ]
    if user is not None:
        rows += [
            (Dimension.MEMBER_PROJECT.value, f"{user}:{project or ''}", user, *sums, *counts),
            (Dimension.MEMBER_MODEL.value, f"{user}:{entry.model}", user, *sums, *counts),
        ]
    if entry.kind in CLOSING_KINDS:
        rows.append(
            (Dimension.OUTCOME.value, _outcome_key(entry), None, entry.spent_cents, 0,
             entry.spent_seconds, 0, *counts)
        )  # fmt: skip
    # Always the same row order, so concurrent upserts of the same rows cannot deadlock.
    rows.sort(key=lambda row: (row[0], row[1]))
    table = connection.ops.quote_name(DailyUsage._meta.db_table)
    columns = (
        "spent_cents",
        "reserved_cents",
        "spent_seconds",
        "reserved_seconds",
        "reservations",
        "settlements",
        "releases",
    )
    placeholders = ", ".join(["(%s, %s, %s, %s" + ", %s" * len(columns) + ")"] * len(rows))
    updates = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns)
    sql = (
        f"INSERT INTO {table} (day, dimension, key, member, {', '.join(columns)}) "  # noqa: S608
        f"VALUES {placeholders} "
        f"ON CONFLICT (dimension, day, key) DO UPDATE SET {updates}"
    )
    params: list[Any] = []
    for dimension, key, member, *values in rows:
        params.extend([day, dimension, key, member, *values])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _write(entry: LedgerEntry, slots: list[_Slot], *, trigger_user_id: int | None) -> LedgerEntry:
    """Save ``entry`` and add it to the locked counters and the rollups; then warn if due."""
    entry.save(force_insert=True)
    if slots:
        BudgetCounter.objects.filter(pk__in=[s.counter.pk for s in slots if s.counter]).update(
            spent_cents=F("spent_cents") + entry.spent_cents,
            reserved_cents=F("reserved_cents") + entry.reserved_cents,
            spent_seconds=F("spent_seconds") + entry.spent_seconds,
            reserved_seconds=F("reserved_seconds") + entry.reserved_seconds,
            updated_at=timezone.now(),
        )
        for slot in slots:
            assert slot.counter is not None
            slot.counter.spent_cents += entry.spent_cents
            slot.counter.reserved_cents += entry.reserved_cents
            slot.counter.spent_seconds += entry.spent_seconds
            slot.counter.reserved_seconds += entry.reserved_seconds
    _rollup(entry)
    _warn_if_due(slots, trigger_user_id=trigger_user_id)
    return entry


# --- Reserving --------------------------------------------------------------------------------


def _share(used: int, limit: int | None) -> float:
    if limit is None:
        return 0.0
    if limit == 0:
        return 100.0 if used > 0 else 0.0
    return 100.0 * used / limit


def _percent_used(budget: Budget, counter: BudgetCounter) -> float:
    return max(
        _share(counter.spent_cents + counter.reserved_cents, budget.limit_cents),
        _share(counter.spent_seconds + counter.reserved_seconds, budget.limit_seconds),
    )


def _reset_phrase(bounds: Bounds, now: datetime) -> str:
    if bounds.end is None:
        return "It never resets; an admin can raise it."
    local = bounds.end.astimezone(org_timezone())
    return (
        f"It resets in {bounds.resets_in(now)} "
        f"(on {local.day} {local:%B %Y at %H:%M} {org_timezone().key})."
    )


def _refusal(slot: _Slot, *, cost: int, seconds: int, member_id: int, now: datetime) -> str | None:
    budget, counter = slot.budget, slot.counter
    assert counter is not None
    name = budget.name_for(member_id=member_id)
    name = name[0].upper() + name[1:]
    if budget.limit_cents is not None:
        used = counter.spent_cents + counter.reserved_cents
        if used + cost > budget.limit_cents:
            return (
                f"{name} would be exceeded: {money(counter.spent_cents)} spent and "
                f"{money(counter.reserved_cents)} reserved of {money(budget.limit_cents)} "
                f"({money(max(0, budget.limit_cents - used))} left), and this video costs "
                f"{money(cost)}. {_reset_phrase(slot.bounds, now)}"
            )
    if budget.limit_seconds is not None:
        used = counter.spent_seconds + counter.reserved_seconds
        if used + seconds > budget.limit_seconds:
            return (
                f"{name} of {budget.limit_seconds} seconds of video would be exceeded: "
                f"{counter.spent_seconds} s made and {counter.reserved_seconds} s reserved "
                f"({max(0, budget.limit_seconds - used)} s left), and this video is {seconds} s. "
                f"{_reset_phrase(slot.bounds, now)}"
            )
    return None


def _check_models(budgets: list[Budget], *, model: str, member_id: int) -> None:
    for budget in budgets:
        restricted = budget.scope == Scope.MEMBER and budget.allowed_models
        if restricted and model not in budget.allowed_models:
            allowed = ", ".join(budget.allowed_models)
            raise ValidationError(
                {
                    "model": (
                        f"{budget.name_for(member_id=member_id).capitalize()} allows {allowed} "
                        f"only, not {model}; ask an admin if you need it."
                    )
                }
            )


def reservation_create(*, generation: Generation) -> LedgerEntry:
    """Check every applicable budget and reserve the generation's cost, as one atomic step.

    Call it inside the transaction that creates the generation: the ``ValidationError`` it
    raises when a budget would be exceeded (naming the budget, the amounts and the reset time)
    then leaves nothing behind. The price comes from the price table at the generation's
    creation time and is recorded on the entry.
    """
    at = generation.created_at
    member_id = generation.created_by_id
    price = price_current(
        channel=generation.channel,
        model=generation.model,
        size=generation.size,
        variant=generation.price_variant,
        at=at,
    )
    cost = price.cents_for(generation.seconds)
    budgets = budgets_applicable(user_id=member_id, project_id=generation.project_id)
    _check_models(budgets, model=generation.model, member_id=member_id)
    now = timezone.now()
    with transaction.atomic():
        slots = _lock_counters(_slots(budgets, user_id=member_id, at=at))
        refusals = [
            message
            for slot in slots
            if (
                message := _refusal(
                    slot, cost=cost, seconds=generation.seconds, member_id=member_id, now=now
                )
            )
        ]
        if refusals:
            raise ValidationError({NON_FIELD_ERRORS: refusals})
        entry = _write(
            LedgerEntry(
                kind=Kind.RESERVE,
                user_id=member_id,
                project_id=generation.project_id,
                channel_id=generation.channel_id,
                generation_id=generation.pk,
                model=generation.model,
                size=generation.size,
                seconds=generation.seconds,
                price=price,
                usd_per_second=price.usd_per_second,
                reserved_cents=cost,
                reserved_seconds=generation.seconds,
                accounted_at=at,
                created_at=now,
            ),
            slots,
            trigger_user_id=member_id,
        )
        if generation.estimated_cost_cents != cost:
            # The card and detail page show what will be charged: the price table's figure.
            Generation.objects.filter(pk=generation.pk).update(estimated_cost_cents=cost)
            generation.estimated_cost_cents = cost
    return entry


# --- Settling and releasing ---------------------------------------------------------------------


def _close(generation_id: UUID, kind: str, *, reason: str = "") -> LedgerEntry | None:
    """Write the one closing entry of a generation's reservation; a repeat does nothing."""
    with transaction.atomic():
        # Locking the reservation serialises two closers of the same generation.
        reserve = (
            LedgerEntry.objects.select_for_update()
            .filter(generation_id=generation_id, kind=Kind.RESERVE)
            .first()
        )
        if reserve is None:
            return None  # accepted before billing existed, or never reserved
        if LedgerEntry.objects.filter(generation_id=generation_id, kind__in=CLOSING_KINDS).exists():
            return None
        state = (
            Generation.objects.filter(pk=generation_id)
            .values_list("status", "error_class", "provider_reported_cost_cents")
            .first()
        )
        status, error_class, reported = state if state else ("deleted", "", None)
        budgets = budgets_applicable(user_id=reserve.user_id, project_id=reserve.project_id)
        slots = _lock_counters(_slots(budgets, user_id=reserve.user_id, at=reserve.accounted_at))
        cost, seconds = reserve.reserved_cents, reserve.reserved_seconds
        settle = kind == Kind.SETTLE
        spent = cost
        if settle and reported is not None:
            # The provider's own figure for this job replaces the list price it was reserved at.
            spent = reported
            if reported != cost:
                note = f"Provider reported {money(reported)}; list price {money(cost)}."
                reason = f"{reason} {note}".strip()
        return _write(
            LedgerEntry(
                kind=kind,
                user_id=reserve.user_id,
                project_id=reserve.project_id,
                channel_id=reserve.channel_id,
                generation_id=generation_id,
                model=reserve.model,
                size=reserve.size,
                seconds=reserve.seconds,
                price_id=reserve.price_id,
                usd_per_second=reserve.usd_per_second,
                spent_cents=spent if settle else 0,
                reserved_cents=-cost,
                spent_seconds=seconds if settle else 0,
                reserved_seconds=-seconds,
                outcome=status,
                error_class=error_class if status == Status.FAILED else "",
                reason=reason,
                accounted_at=reserve.accounted_at,
            ),
            slots,
            trigger_user_id=reserve.user_id,
        )


def reservation_settle(*, generation: Generation, reason: str = "") -> LedgerEntry | None:
    """Count the reserved cost as spent (the provider bills this job). Idempotent."""
    return _close(generation.pk, Kind.SETTLE, reason=reason)


def reservation_release(*, generation: Generation, reason: str = "") -> LedgerEntry | None:
    """Give the reserved cost back to every budget (nothing was billed). Idempotent."""
    return _close(generation.pk, Kind.RELEASE, reason=reason)


def reservation_close_failed(*, generation: Generation) -> LedgerEntry | None:
    """Settle or release a failed generation, as its provider's billing policy says."""
    row = (
        Generation.objects.filter(pk=generation.pk)
        .values_list(
            "error_class",
            "provider_finished_at",
            "provider_job_id",
            "channel__protocol",
            "provider_reported_cost_cents",
        )
        .first()
    )
    if row is None:
        return _close(generation.pk, Kind.RELEASE, reason="The generation was deleted.")
    error_class, finished_at, provider_job_id, kind, reported = row
    if reported is not None:
        # The provider said what this failed job cost: that decides, not the policy's guess.
        if reported == 0:
            return _close(
                generation.pk,
                Kind.RELEASE,
                reason=f"Failed ({error_class or 'unknown'}); {kind} reported no charge.",
            )
        return _close(
            generation.pk, Kind.SETTLE, reason=f"Failed ({error_class or 'unknown'}); {kind} "
            "reported a charge."
        )
    if failure_is_charged(
        kind=kind,
        error_class=error_class,
        provider_finished=finished_at is not None,
        provider_accepted=provider_job_id is not None,
    ):
        why = "rendered by the provider" if finished_at else error_class
        return _close(generation.pk, Kind.SETTLE, reason=f"Failed ({why}); {kind} charges for it.")
    return _close(
        generation.pk,
        Kind.RELEASE,
        reason=f"Failed ({error_class or 'unknown'}); {kind} does not charge for it.",
    )


def reservation_close(*, generation: Generation) -> LedgerEntry | None:
    """Close a finished generation's reservation according to how it ended."""
    status = Generation.objects.filter(pk=generation.pk).values_list("status", flat=True).first()
    if status == Status.COMPLETED:
        return reservation_settle(generation=generation)
    if status == Status.CANCELED:
        return reservation_release(generation=generation, reason="Canceled before it was sent.")
    if status == Status.FAILED or status is None:
        return reservation_close_failed(generation=generation)
    return None  # still running: its reservation stays


def reservations_close_orphans(*, within: timedelta = timedelta(days=30)) -> int:
    """Close reservations whose generation ended (or vanished) without closing them.

    A worker that dies between a generation's final transition and its settle or release
    leaves the reservation open; this sweep finds such reservations of the last ``within``
    and closes them exactly as the worker would have.
    """
    since = timezone.now() - within
    closed_ids = LedgerEntry.objects.filter(kind__in=CLOSING_KINDS, accounted_at__gte=since).values(
        "generation_id"
    )
    open_ids = list(
        LedgerEntry.objects.filter(kind=Kind.RESERVE, accounted_at__gte=since)
        .exclude(generation_id__in=closed_ids)
        .values_list("generation_id", flat=True)
    )
    live = {
        pk: status
        for pk, status in Generation.objects.filter(pk__in=open_ids).values_list("id", "status")
    }
    closed = 0
    for generation_id in open_ids:
        status = live.get(generation_id)
        if status is not None and status not in TERMINAL_STATUSES:
            continue
        if status is None:
            entry = _close(generation_id, Kind.RELEASE, reason="The generation was deleted.")
        else:
            entry = reservation_close(generation=Generation(pk=generation_id))
        closed += entry is not None
    return closed


# --- Adjustments and repairs ---------------------------------------------------------------------


def adjustment_create(
    *,
    actor: User | None,
    member: User | None = None,
    amount_cents: int,
    reason: str,
    project: Project | None = None,
    generation: Generation | None = None,
    seconds: int = 0,
    at: datetime | None = None,
) -> LedgerEntry:
    """Correct a member's spend (positive charges, negative refunds), with a stated reason.

    With a generation, the adjustment counts in the period the generation was reserved in (a
    refund of a job charged last month lowers last month's spend).
    """
    reason = reason.strip()
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = "Say why: adjustments are kept in the ledger for good."
    if amount_cents == 0 and seconds == 0:
        errors["amount"] = "An adjustment has to change the amount or the seconds."
    if generation is None and member is None:
        errors["user"] = "Choose the member (or the generation) the adjustment is for."
    if errors:
        raise ValidationError(errors)
    fields: dict[str, object] = {}
    member_id: int
    project_id: int | None
    if generation is not None:
        reserve = LedgerEntry.objects.filter(generation_id=generation.pk, kind=Kind.RESERVE).first()
        member_id, project_id = generation.created_by_id, generation.project_id
        at = at or (reserve.accounted_at if reserve else generation.created_at)
        fields = {
            "generation_id": generation.pk,
            "channel_id": generation.channel_id,
            "model": generation.model,
            "size": generation.size,
            "seconds": generation.seconds,
        }
    else:
        assert member is not None
        member_id, project_id = member.pk, project.pk if project else None
    at = at or timezone.now()
    with transaction.atomic():
        budgets = budgets_applicable(user_id=member_id, project_id=project_id)
        slots = _lock_counters(_slots(budgets, user_id=member_id, at=at))
        return _write(
            LedgerEntry(
                kind=Kind.ADJUSTMENT,
                user_id=member_id,
                project_id=project_id,
                spent_cents=amount_cents,
                spent_seconds=seconds,
                reason=reason,
                accounted_at=at,
                created_by_id=actor.pk if actor else None,
                **fields,
            ),
            slots,
            trigger_user_id=member_id,
        )


def counters_recount(*, budget: Budget | None = None) -> int:
    """Recompute counters from the ledger (the truth); returns how many changed."""
    counters = BudgetCounter.objects.select_related("budget")
    if budget is not None:
        counters = counters.filter(budget=budget)
    changed = 0
    for counter in counters.iterator():
        with transaction.atomic():
            locked = BudgetCounter.objects.select_for_update().get(pk=counter.pk)
            slot = _Slot(
                budget=counter.budget,
                user_id=locked.user_id,
                bounds=Bounds(start=locked.period_start, end=locked.period_end),
            )
            sums = _ledger_sums(slot)
            if any(getattr(locked, field) != value for field, value in sums.items()):
                BudgetCounter.objects.filter(pk=locked.pk).update(**sums)
                changed += 1
    return changed


def budget_counters_reset(*, budget: Budget) -> None:
    """Forget a budget's counters after its scope or period changed; they rebuild from the ledger.

    Counters are a cache keyed by period; a budget switched from monthly to weekly (or back)
    must not pick up a stale row of its old shape.
    """
    BudgetCounter.objects.filter(budget=budget).delete()


def usage_rollups_rebuild() -> int:
    """Recompute every daily rollup from the ledger; returns the number of rows written.

    One ``INSERT … SELECT … GROUP BY`` per dimension, so the database does the work (about a
    minute of Python becomes seconds at a million entries); the same expressions as ``_rollup``.
    """
    as_text = partial(Cast, output_field=CharField())
    optional = {name: Coalesce(as_text(name), Value("")) for name in ("user_id", "project_id")}
    failed_key = Concat(
        Value("failed:"), Coalesce(NullIf("error_class", Value("")), Value("unknown"))
    )
    outcome_key = Case(
        When(outcome=Status.FAILED, then=failed_key),
        default=Coalesce(NullIf("outcome", Value("")), Value("unknown")),
        output_field=CharField(),
    )
    member_id = F("user_id")
    dimensions: list[tuple[str, Any, Any]] = [
        (Dimension.MODEL, F("model"), None),
        (Dimension.MEMBER, optional["user_id"], None),
        (Dimension.PROJECT, optional["project_id"], None),
        (
            Dimension.MEMBER_PROJECT,
            Concat(as_text("user_id"), Value(":"), optional["project_id"]),
            member_id,
        ),
        (Dimension.MEMBER_MODEL, Concat(as_text("user_id"), Value(":"), F("model")), member_id),
        (Dimension.OUTCOME, outcome_key, None),
    ]
    table = connection.ops.quote_name(DailyUsage._meta.db_table)
    quote = connection.ops.quote_name
    with transaction.atomic():
        DailyUsage.objects.all().delete()
        for dimension, key, member in dimensions:
            entries = LedgerEntry.objects.all()
            if member is not None:
                entries = entries.filter(user_id__isnull=False)
            if dimension == Dimension.OUTCOME:
                entries = entries.filter(kind__in=CLOSING_KINDS)
            outcome = dimension == Dimension.OUTCOME
            grouped = (
                entries.annotate(
                    r_day=TruncDate("accounted_at", tzinfo=org_timezone()),
                    r_key=key,
                    r_member=member if member is not None else Cast(Value(None), BigIntegerField()),
                )
                .values("r_day", "r_key", "r_member")
                .annotate(
                    r_spent=Coalesce(Sum("spent_cents"), 0),
                    # Outcome rows count closings; reservations are not theirs to sum.
                    r_reserved=Value(0) if outcome else Coalesce(Sum("reserved_cents"), 0),
                    r_spent_s=Coalesce(Sum("spent_seconds"), 0),
                    r_reserved_s=Value(0) if outcome else Coalesce(Sum("reserved_seconds"), 0),
                    r_reservations=Coalesce(Sum(_count_of(Kind.RESERVE)), 0),
                    r_settlements=Coalesce(Sum(_count_of(Kind.SETTLE)), 0),
                    r_releases=Coalesce(Sum(_count_of(Kind.RELEASE)), 0),
                )
                .order_by()
            )
            select, params = grouped.query.sql_with_params()
            picked = ", ".join(
                quote(name)
                for name in (
                    "r_day", "r_key", "r_member", "r_spent", "r_reserved", "r_spent_s",
                    "r_reserved_s", "r_reservations", "r_settlements", "r_releases",
                )
            )  # fmt: skip
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {table} (day, key, member, {', '.join(_ROLLUP_SUMS)}, "  # noqa: S608
                    f"dimension) SELECT {picked}, %s FROM ({select}) grouped",
                    [dimension, *params],
                )
    return DailyUsage.objects.count()


_ROLLUP_SUMS = (
    "spent_cents",
    "reserved_cents",
    "spent_seconds",
    "reserved_seconds",
    "reservations",
    "settlements",
    "releases",
)


def _count_of(kind: str) -> Case:
    return Case(When(kind=kind, then=Value(1)), default=Value(0), output_field=IntegerField())


# --- Warnings ------------------------------------------------------------------------------------


def _admins() -> list[User]:
    return list(get_user_model().objects.filter(is_staff=True, is_active=True))


def _warn_if_due(slots: list[_Slot], *, trigger_user_id: int | None) -> None:
    """Notify once per period when a budget reaches 80 % and again at 100 %."""
    for slot in slots:
        counter = slot.counter
        assert counter is not None
        used = _percent_used(slot.budget, counter)
        level = next((t for t in THRESHOLDS if used >= t), 0)
        if level <= counter.warned_percent:
            continue
        # Jumping from below 80 % straight past 100 % sends the 100 % warning only.
        BudgetCounter.objects.filter(pk=counter.pk).update(warned_percent=level)
        counter.warned_percent = level
        _notify_threshold(slot, level=level, trigger_user_id=trigger_user_id)


def _notify_threshold(slot: _Slot, *, level: int, trigger_user_id: int | None) -> None:
    budget, counter = slot.budget, slot.counter
    assert counter is not None
    member_id = slot.user_id or trigger_user_id
    User_ = get_user_model()
    recipients: dict[int, User] = {}
    if member_id is not None:
        member = User_.objects.filter(pk=member_id, is_active=True).first()
        if member is not None:
            recipients[member.pk] = member
    if budget.scope == Scope.PROJECT:
        # The people who manage the project hear about its budget as well.
        for owner in User_.objects.filter(
            memberships__project_id=budget.project_id or 0,
            memberships__role=Role.OWNER,
            is_active=True,
        ):
            recipients.setdefault(owner.pk, owner)
    for admin in _admins():
        recipients.setdefault(admin.pk, admin)
    now = timezone.now()
    parts = []
    if budget.limit_cents is not None:
        parts.append(
            f"{money(counter.spent_cents + counter.reserved_cents)} of "
            f"{money(budget.limit_cents)} used ({money(counter.spent_cents)} spent, "
            f"{money(counter.reserved_cents)} reserved)"
        )
    if budget.limit_seconds is not None:
        parts.append(
            f"{counter.spent_seconds + counter.reserved_seconds} of {budget.limit_seconds} "
            "seconds of video used"
        )
    reset = (
        f"It resets in {slot.bounds.resets_in(now)}."
        if slot.bounds.end is not None
        else "It never resets."
    )
    detail = "; ".join(parts) + f". {reset}"
    whose = ""
    if budget.scope == Scope.MEMBER and budget.user_id is None and member_id is not None:
        member_user = recipients.get(member_id)
        whose = f" ({member_user.get_username()})" if member_user else ""
    emails = []
    notes = []
    for user in recipients.values():
        name = budget.name_for(member_id=user.pk)
        if user.pk != member_id:
            name = budget.title + whose
        title = f"{name[0].upper()}{name[1:]} is at {level} %"
        if level >= 100:
            title += ": new generations that would go over it are refused"
        url = (
            reverse("admin:billing_usagepanel_changelist")
            if user.is_staff and user.pk != member_id
            else reverse("billing:usage")
        )
        notes.append(
            Notification(
                user=user,
                level=Notification.Level.WARNING,
                title=title,
                message=detail,
                url=url,
                created_at=now,
            )
        )
        if user.email:
            emails.append((f"Reelhouse: {title}", f"{title}.\n\n{detail}\n", None, [user.email]))
    Notification.objects.bulk_create(notes)
    if emails:
        # Only once the transaction commits: a refused or rolled-back step sends nothing, and a
        # mail server outage never undoes a reservation.
        # A named function, not a partial: Django names the callback when it logs its failure
        # and a partial has no name, so a mail outage would turn into an error of its own.
        batch = tuple(emails)

        def send_budget_warnings() -> None:
            _send_emails(batch)

        transaction.on_commit(send_budget_warnings, robust=True)


def _send_emails(messages: tuple[tuple[str, str, None, list[str]], ...]) -> None:
    sender = str(settings.DEFAULT_FROM_EMAIL)
    send_mass_mail(tuple((s, b, sender, to) for s, b, _, to in messages), fail_silently=False)


def notifications_mark_read(*, user: User, ids: Iterable[int] | None = None) -> int:
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=list(ids))
    return unread.update(read_at=timezone.now())
