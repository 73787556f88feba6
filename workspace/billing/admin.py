"""Billing in the Django admin: prices, budgets, the ledger, the audit log and the usage panel."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from workspace.billing import charts
from workspace.billing.forms import (
    AdjustmentForm,
    BudgetAdminForm,
    ExportRangeForm,
    PriceAdminForm,
    RangeForm,
    model_choices,
)
from workspace.billing.models import Budget, LedgerEntry, Price, UsagePanel
from workspace.billing.selectors import (
    LEDGER_EXPORT_COLUMNS,
    budget_pace,
    channel_states,
    ledger_rows,
    panel_usage,
    reported_costs,
)
from workspace.billing.services import adjustment_create, counters_recount, money, prices_seed
from workspace.generations.models import RetentionPolicy
from workspace.generations.retention import retention_policy_default
from workspace.generations.storage_use import storage_by_member, storage_by_project
from workspace.providers.models import Channel


def _is_staff(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff)


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    form = PriceAdminForm
    list_display = [
        "model", "size", "variant", "channel", "per_second", "effective_from", "in_effect", "note"
    ]
    list_filter = ["channel", "model", "size", "variant"]
    ordering = ["channel", "model", "size", "variant", "-effective_from"]

    @admin.display(description="Price")
    def per_second(self, price: Price) -> str:
        return f"${price.usd_per_second}/s"

    @admin.display(description="Status")
    def in_effect(self, price: Price) -> str:
        now = timezone.now()
        if price.effective_from > now:
            return "scheduled"
        current = (
            Price.objects.filter(
                channel_id=price.channel_id,
                model=price.model,
                size=price.size,
                variant=price.variant,
                effective_from__lte=now,
            )
            .order_by("-effective_from")
            .values_list("pk", flat=True)
            .first()
        )
        return "in effect" if current == price.pk else "superseded"

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # The published prices appear here before anyone has generated anything.
        for channel in Channel.objects.all():
            prices_seed(channel=channel)
        return super().changelist_view(request, extra_context)

    def _started(self, price: Price | None) -> bool:
        return price is not None and price.effective_from <= timezone.now()

    def has_change_permission(self, request: HttpRequest, obj: Price | None = None) -> bool:
        # A price that took effect is history: change it by adding a new price.
        return not self._started(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Price | None = None) -> bool:
        return not self._started(obj) and super().has_delete_permission(request, obj)


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    form = BudgetAdminForm
    list_display = ["__str__", "scope", "period", "limit", "limit_seconds", "models", "is_active"]
    list_filter = ["scope", "period", "is_active"]
    autocomplete_fields = ["user", "project"]
    list_select_related = ["user", "project"]
    actions = ["recount"]

    @admin.display(description="Spend limit")
    def limit(self, budget: Budget) -> str:
        return "no cap" if budget.limit_cents is None else money(budget.limit_cents)

    @admin.display(description="Models")
    def models(self, budget: Budget) -> str:
        return ", ".join(budget.allowed_models) or "all"

    @admin.action(description="Recount the selected budgets' counters from the ledger")
    def recount(self, request: HttpRequest, queryset: QuerySet[Budget]) -> None:
        changed = sum(counters_recount(budget=budget) for budget in queryset)
        self.message_user(
            request,
            f"{changed} counter{'s' if changed != 1 else ''} corrected."
            if changed
            else "Every counter already matched the ledger.",
            messages.SUCCESS,
        )


class ModelFilter(admin.SimpleListFilter):
    title = "model"
    parameter_name = "model"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return model_choices()

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(model=self.value()) if self.value() else queryset


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """The ledger, read-only; "Add" writes an adjustment (the only entry an admin can make)."""

    list_display = [
        "id",
        "created_at",
        "kind",
        "user",
        "project",
        "model",
        "seconds",
        "spent",
        "reserved",
        "outcome",
        "reason",
    ]
    # Choices from the catalog: a filter of distinct values would scan the whole ledger.
    list_filter = ["kind", ModelFilter, "outcome"]
    search_fields = ["user__username", "reason", "error_class"]
    list_select_related = ["user", "project"]
    show_full_result_count = False
    autocomplete_fields = ["user", "project"]
    raw_id_fields = ["generation"]

    @admin.display(description="Spent")
    def spent(self, entry: LedgerEntry) -> str:
        return money(entry.spent_cents) if entry.spent_cents else ""

    @admin.display(description="Reserved")
    def reserved(self, entry: LedgerEntry) -> str:
        return money(entry.reserved_cents) if entry.reserved_cents else ""

    def get_fields(  # type: ignore[override]
        self, request: HttpRequest, obj: LedgerEntry | None = None
    ) -> list[str]:
        if obj is None:
            return ["user", "project", "generation", "amount", "seconds_delta", "reason"]
        return [f.name for f in LedgerEntry._meta.concrete_fields]

    def get_readonly_fields(
        self, request: HttpRequest, obj: LedgerEntry | None = None
    ) -> list[str]:
        return [] if obj is None else [f.name for f in LedgerEntry._meta.concrete_fields]

    def get_form(
        self,
        request: HttpRequest,
        obj: LedgerEntry | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[ModelForm]:
        if obj is None:
            kwargs["form"] = AdjustmentForm
        return super().get_form(request, obj, change, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: LedgerEntry | None = None) -> bool:
        return False  # append-only

    def has_delete_permission(self, request: HttpRequest, obj: LedgerEntry | None = None) -> bool:
        return False  # append-only

    def save_model(
        self, request: HttpRequest, obj: LedgerEntry, form: ModelForm, change: bool
    ) -> None:
        assert isinstance(form, AdjustmentForm)
        entry = adjustment_create(
            actor=request.user,  # type: ignore[arg-type]
            member=form.cleaned_data.get("user"),
            project=form.cleaned_data.get("project"),
            generation=form.cleaned_data.get("generation"),
            amount_cents=form.amount_cents,
            seconds=form.cleaned_data.get("seconds_delta") or 0,
            reason=form.cleaned_data["reason"],
        )
        # The admin's "added" message and history point at the entry the service wrote.
        form.instance = entry
        self._saved = entry

    def response_add(
        self, request: HttpRequest, obj: LedgerEntry, post_url_continue: str | None = None
    ) -> HttpResponse:
        return super().response_add(request, getattr(self, "_saved", obj), post_url_continue)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return super().log_addition(request, getattr(self, "_saved", obj), message)


class _Echo:
    """A file-like object whose ``write`` hands the line back, for streaming CSV."""

    def write(self, value: str) -> str:
        return value


# Spreadsheet programs run cells that start with these as formulas.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return "" if value is None else value


@admin.register(UsagePanel)
class UsagePanelAdmin(admin.ModelAdmin):
    """The usage panel: spend, budgets' pace, outcomes, queues and the ledger export.

    Needs ``billing.view_usage_panel`` (superusers have it): the export is the whole ledger.
    The admin site sends anyone who is not staff to its login page; other staff get 403.
    """

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_staff(request) and request.user.has_perm("billing.view_usage_panel")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_view),
            name="billing_usagepanel_export",
        )
        return [export, *super().get_urls()]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        first, last = RangeForm.default_range()
        form = RangeForm(request.GET or None, initial={"first": first, "last": last})
        if request.GET:
            first, last = form.range()
        usage = panel_usage(first=first, last=last)
        storage_projects = storage_by_project()
        labels = usage.buckets.labels
        per = "day" if usage.buckets.step_days == 1 else "week"
        context = {
            **self.admin_site.each_context(request),
            "title": "Usage",
            "opts": self.model._meta,
            "form": form,
            "first": first,
            "last": last,
            "usage": usage,
            "per": per,
            "spend_chart": charts.stacked_bars(
                title=f"Spend per {per} by model, {first} to {last}",
                labels=labels,
                series=usage.spend_by_model,
                unit=lambda cents: money(round(cents)),
            ),
            "member_chart": charts.horizontal_bars(
                title="Spend by member",
                rows=[(r.label, r.spent_cents) for r in usage.by_member],
                unit=lambda cents: money(round(cents)),
            ),
            "project_chart": charts.horizontal_bars(
                title="Spend by project",
                rows=[(r.label, r.spent_cents) for r in usage.by_project],
                unit=lambda cents: money(round(cents)),
            ),
            "error_chart": charts.stacked_bars(
                title=f"Failed generations per {per} by error class",
                labels=labels,
                series=usage.outcomes,
                unit=lambda n: f"{n:.0f}",
                height=180,
            ),
            # Storage is what is stored now, not a range: files outlive the days they were made.
            "storage_by_project": storage_projects,
            "storage_by_member": storage_by_member(),
            "storage_total": sum(row.bytes for row in storage_projects),
            "retention_default": retention_policy_default(),
            "retention_overrides": RetentionPolicy.objects.filter(project__isnull=False).count(),
            "pace": budget_pace(),
            "reported_costs": reported_costs(first=first, last=last),
            "channels": channel_states(),
            "export_url": reverse("admin:billing_usagepanel_export")
            + f"?first={first.isoformat()}&last={last.isoformat()}",
            **(extra_context or {}),
        }
        return TemplateResponse(request, "billing/admin/usage_panel.html", context)

    def export_view(self, request: HttpRequest) -> StreamingHttpResponse:
        """The ledger entries written in a range of days, streamed as CSV (any size)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = ExportRangeForm(request.GET)
        first, last = form.range()
        writer = csv.writer(_Echo())

        def lines() -> Iterator[str]:
            yield writer.writerow([header for header, _ in LEDGER_EXPORT_COLUMNS])
            for row in ledger_rows(first=first, last=last):
                yield writer.writerow([_csv_cell(value) for value in row])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="reelhouse-ledger-{first.isoformat()}-{last.isoformat()}.csv"'
        )
        return response
