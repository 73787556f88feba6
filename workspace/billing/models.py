"""Prices, budgets, the ledger and what is derived from it.

Money is stored as integer US cents everywhere a sum is kept (budgets, counters, ledger,
rollups), so totals never drift by fractions. Prices are the one exception: they are dollars per
second as ``Decimal`` with four places, because providers publish prices such as $0.231/s; a
job's cost is rounded half-up to whole cents once, when it is reserved, and that amount is what
every later entry of the job uses.

The ledger (``LedgerEntry``) is the truth and is append-only. Each entry carries signed deltas:

========== ================== ===================== =======================================
kind       spent_cents        reserved_cents        when
========== ================== ===================== =======================================
reserve    0                  +cost                 a generation is accepted
settle     +cost              -cost                 the provider bills it (completed, …)
release    0                  -cost                 it failed unbilled or was canceled
adjustment ±amount            0                     an admin corrects spend, with a reason
========== ================== ===================== =======================================

``BudgetCounter`` rows (one per budget, member and period) hold the running sums the atomic
check-and-reserve locks, and ``DailyUsage`` rows hold the same sums per local day for the pages;
both are written in the same transaction as the entry, so both always equal sums of the ledger.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.validators import MaxLengthValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from workspace.billing.periods import ADJECTIVES, Period

_NO_FK = {"on_delete": models.DO_NOTHING, "db_constraint": False, "null": True, "blank": True}


class PriceVariant(models.TextChoices):
    STANDARD = "", "Standard"
    # Audio switched off, where the provider charges less for it (Veo on fal and Runway).
    SILENT = "silent", "Without audio"


class Price(models.Model):
    """A list price per second for one channel, model and size, from ``effective_from`` on.

    A change of price is a new row, never an edit of an old one: each generation records the
    price it was reserved at, and rows that took effect are read-only in the admin.
    """

    channel = models.ForeignKey(
        "providers.Channel", on_delete=models.CASCADE, related_name="prices"
    )
    model = models.CharField(max_length=80)
    size = models.CharField(max_length=20, help_text="Resolution, e.g. 1280x720.")
    variant = models.CharField(
        max_length=20,
        choices=PriceVariant.choices,
        default=PriceVariant.STANDARD,
        blank=True,
        help_text="Standard is the model's default output (with sound where it makes sound).",
    )
    usd_per_second = models.DecimalField(
        "US$ per second",
        max_digits=9,
        decimal_places=4,
        validators=[MinValueValidator(Decimal(0))],
    )
    effective_from = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["channel_id", "model", "size", "variant", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "model", "size", "variant", "effective_from"],
                name="one_price_per_moment",
            )
        ]

    def __str__(self) -> str:
        since = f"{self.effective_from:%Y-%m-%d}"
        variant = f" {self.get_variant_display().lower()}" if self.variant else ""
        return f"{self.model} {self.size}{variant} ${self.usd_per_second}/s from {since}"

    def cents_for(self, seconds: int) -> int:
        cents = self.usd_per_second * seconds * 100
        return int(cents.quantize(Decimal(1), rounding=ROUND_HALF_UP))


class Scope(models.TextChoices):
    ORGANISATION = "organisation", "Organisation"
    MEMBER = "member", "Member"
    PROJECT = "project", "Project"


class Budget(models.Model):
    """A cap on spend (and optionally seconds of video and models) per period.

    A member budget without a user is the default for every member who has none of their own.
    """

    scope = models.CharField(max_length=20, choices=Scope.choices, default=Scope.MEMBER)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="budgets",
        help_text="Member budgets only. Leave empty for the default budget of every member.",
    )
    project = models.ForeignKey(
        "projects.Project",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="budgets",
        help_text="Project budgets only.",
    )
    period = models.CharField(max_length=10, choices=Period.choices, default=Period.MONTH)
    limit_cents = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Spend cap in US cents per period; empty: no money cap."
    )
    limit_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds of video per period; empty: no cap."
    )
    allowed_models = models.JSONField(
        default=list,
        blank=True,
        help_text="Member budgets only: model ids the member may use; empty: every model.",
    )
    is_active = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(scope="organisation", user__isnull=True, project__isnull=True)
                    | models.Q(scope="member", project__isnull=True)
                    | models.Q(scope="project", user__isnull=True, project__isnull=False)
                ),
                name="budget_subject_matches_scope",
            ),
            models.UniqueConstraint(
                fields=["scope"],
                condition=models.Q(scope="organisation"),
                name="one_organisation_budget",
            ),
            models.UniqueConstraint(
                fields=["scope"],
                condition=models.Q(scope="member", user__isnull=True),
                name="one_default_member_budget",
            ),
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(scope="member", user__isnull=False),
                name="one_budget_per_member",
            ),
            models.UniqueConstraint(
                fields=["project"],
                condition=models.Q(scope="project"),
                name="one_budget_per_project",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def title(self) -> str:
        adjective = ADJECTIVES[Period(self.period)]
        if self.scope == Scope.ORGANISATION:
            return f"Organisation {adjective} budget"
        if self.scope == Scope.PROJECT:
            return f"{adjective.capitalize()} budget of project “{self.project}”"
        if self.user_id is None:
            return f"Default member {adjective} budget"
        return f"{adjective.capitalize()} budget of {self.user}"

    def name_for(self, *, member_id: int | None) -> str:
        """How a message addressed to ``member_id`` names this budget."""
        adjective = ADJECTIVES[Period(self.period)]
        if self.scope == Scope.MEMBER and (self.user_id is None or self.user_id == member_id):
            return f"your {adjective} budget"
        if self.scope == Scope.ORGANISATION:
            return f"the organisation's {adjective} budget"
        return self.title[0].lower() + self.title[1:]


class BudgetCounter(models.Model):
    """Running sums of one budget for one period (and one member, for member budgets).

    The row the check-and-reserve step locks (``SELECT … FOR UPDATE``). Created from the ledger
    when first needed, so a budget added mid-period starts from what was already spent.
    """

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="counters")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, related_name="+"
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField(null=True)
    spent_cents = models.BigIntegerField(default=0)
    reserved_cents = models.BigIntegerField(default=0)
    spent_seconds = models.BigIntegerField(default=0)
    reserved_seconds = models.BigIntegerField(default=0)
    # The highest warning threshold (80 or 100 %) already sent for this period.
    warned_percent = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "user", "period_start"],
                condition=models.Q(user__isnull=False),
                name="one_counter_per_member_period",
            ),
            models.UniqueConstraint(
                fields=["budget", "period_start"],
                condition=models.Q(user__isnull=True),
                name="one_counter_per_period",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.budget} from {self.period_start:%Y-%m-%d}"


class Kind(models.TextChoices):
    RESERVE = "reserve", "Reserve"
    SETTLE = "settle", "Settle"
    RELEASE = "release", "Release"
    ADJUSTMENT = "adjustment", "Adjustment"


CLOSING_KINDS = (Kind.SETTLE, Kind.RELEASE)


class LedgerEntry(models.Model):
    """One append-only movement of money (see the module docstring for the deltas).

    Rows are never updated or deleted. The references are plain ids without database
    constraints so that deleting a project, a generation or a member never rewrites the ledger.
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", **_NO_FK)  # type: ignore[arg-type]
    project = models.ForeignKey("projects.Project", related_name="+", **_NO_FK)  # type: ignore[arg-type]
    channel = models.ForeignKey("providers.Channel", related_name="+", **_NO_FK)  # type: ignore[arg-type]
    generation = models.ForeignKey(
        "generations.Generation",
        related_name="ledger_entries",
        **_NO_FK,  # type: ignore[arg-type]
    )
    model = models.CharField(max_length=80, blank=True)
    size = models.CharField(max_length=20, blank=True)
    seconds = models.PositiveIntegerField(default=0)
    # The price the generation was reserved at, kept on every entry of the job.
    price = models.ForeignKey(
        Price, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    usd_per_second = models.DecimalField(max_digits=9, decimal_places=4, null=True, blank=True)
    spent_cents = models.BigIntegerField(default=0)
    reserved_cents = models.BigIntegerField(default=0)
    spent_seconds = models.BigIntegerField(default=0)
    reserved_seconds = models.BigIntegerField(default=0)
    # Closing entries: how the generation ended (completed / failed / canceled) and why.
    outcome = models.CharField(max_length=20, blank=True)
    error_class = models.CharField(max_length=40, blank=True)
    reason = models.TextField(
        blank=True, max_length=1000, validators=[MaxLengthValidator(1000)]
    )
    # The moment whose budget period the entry counts in: the reservation's for every entry of a
    # generation, so a job reserved on the 31st and finished on the 1st stays in the old month.
    accounted_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", **_NO_FK)  # type: ignore[arg-type]

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(
                fields=["generation"],
                condition=models.Q(kind="reserve"),
                name="one_reservation_per_generation",
            ),
            models.UniqueConstraint(
                fields=["generation"],
                condition=models.Q(kind__in=["settle", "release"]),
                name="one_outcome_per_generation",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="adjustment") | ~models.Q(reason=""),
                name="adjustments_have_a_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "accounted_at"], name="ledger_user_time"),
            models.Index(fields=["project", "accounted_at"], name="ledger_project_time"),
            models.Index(fields=["accounted_at"], name="ledger_time"),
            models.Index(fields=["created_at"], name="ledger_written"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class Dimension(models.TextChoices):
    MODEL = "model", "Model"
    MEMBER = "member", "Member"
    PROJECT = "project", "Project"
    OUTCOME = "outcome", "Outcome"
    # A member's own spend split by project and by model, for their usage page.
    MEMBER_PROJECT = "member_project", "Member and project"
    MEMBER_MODEL = "member_model", "Member and model"


class DailyUsage(models.Model):
    """The ledger summed per local day and per model, member, project or outcome.

    Maintained in the same transaction as each entry (an upsert that adds the entry's deltas),
    so the usage pages read a few thousand rows instead of a million entries. ``key`` is the
    model id, the user id, the project id ("" for none), ``<user id>:<project id or model>``
    for the member breakdowns (which also set ``member``, for their index) or, for outcomes,
    ``completed``, ``canceled`` or ``failed:<error class>``.
    """

    day = models.DateField()
    dimension = models.CharField(max_length=16, choices=Dimension.choices)
    key = models.CharField(max_length=120)
    member = models.BigIntegerField(null=True, blank=True)
    spent_cents = models.BigIntegerField(default=0)
    reserved_cents = models.BigIntegerField(default=0)
    spent_seconds = models.BigIntegerField(default=0)
    reserved_seconds = models.BigIntegerField(default=0)
    reservations = models.BigIntegerField(default=0)
    settlements = models.BigIntegerField(default=0)
    releases = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "daily usage"
        constraints = [
            models.UniqueConstraint(
                fields=["dimension", "day", "key"], name="one_rollup_per_day_and_key"
            )
        ]
        indexes = [
            models.Index(
                fields=["member", "dimension", "day"],
                name="rollup_member_day",
                condition=models.Q(member__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.dimension}={self.key}"


class UsagePanel(LedgerEntry):
    """The admin's usage panel; a proxy so it has a place and permissions in the admin."""

    class Meta:
        proxy = True
        verbose_name = "usage panel"
        verbose_name_plural = "usage panel"
        # One permission of its own: the panel and its export show the whole ledger.
        default_permissions = ()
        permissions = [("view_usage_panel", "Can see the usage panel and export the ledger")]
