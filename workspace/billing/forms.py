from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import forms
from django.utils import timezone

from workspace.billing.models import Budget, LedgerEntry, Price, Scope
from workspace.billing.periods import local_date
from workspace.billing.services import price_validate
from workspace.providers.registry import PROVIDERS

# The longest range the panel charts at once; the CSV export has no limit.
MAX_RANGE_DAYS = 731
# Bounds on amounts an admin types: up to $9,999,999,999.99 (a "1E+400" would otherwise reach
# the cents conversion and fail there) and a billion seconds of video.
MONEY_MAX_DIGITS = 12
EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(9998, 12, 31)
SECONDS_MAX = 10**9


def model_choices() -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for provider in PROVIDERS.values():
        for spec in provider.catalog.models:
            seen.setdefault(spec.id, f"{spec.label} ({spec.id})")
    return list(seen.items())


def _cents(dollars: Decimal | None) -> int | None:
    if dollars is None:
        return None
    return int((dollars * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class RangeForm(forms.Form):
    """The usage panel's date range, in the organisation's calendar days (inclusive)."""

    # None: no limit on the range.
    max_days: int | None = MAX_RANGE_DAYS

    first = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    last = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))

    @staticmethod
    def default_range(days: int = 30) -> tuple[date, date]:
        today = local_date(timezone.now())
        return today - timedelta(days=days - 1), today

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, last = cleaned.get("first"), cleaned.get("last")
        for day in (first, last):
            if day and not EARLIEST_DAY <= day <= LATEST_DAY:
                # The panel's buckets and period bounds step past the range's ends: at
                # 9999-12-31 that overflowed into a server error.
                raise forms.ValidationError(
                    f"Choose days between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}."
                )
        if first and last:
            if first > last:
                raise forms.ValidationError("“From” must not be after “To”.")
            if self.max_days is not None and (last - first).days >= self.max_days:
                raise forms.ValidationError(
                    f"Choose at most {self.max_days} days; the CSV export takes any range."
                )
        return cleaned

    def range(self) -> tuple[date, date]:
        if self.is_valid():
            return self.cleaned_data["first"], self.cleaned_data["last"]
        return self.default_range()


class ExportRangeForm(RangeForm):
    max_days = None


class BudgetAdminForm(forms.ModelForm):
    """Budgets in dollars and a checklist of models, stored as cents and model ids."""

    limit_dollars = forms.DecimalField(
        label="Spend limit (US$)",
        required=False,
        min_value=Decimal(0),
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=2,
        help_text="Per period. Empty: no money cap.",
    )
    allowed_models = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Member budgets only. None ticked: every model.",
    )

    class Meta:
        model = Budget
        fields = [
            "scope",
            "user",
            "project",
            "period",
            "limit_dollars",
            "limit_seconds",
            "allowed_models",
            "is_active",
            "note",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        models_field: forms.MultipleChoiceField = self.fields["allowed_models"]  # type: ignore[assignment]
        models_field.choices = model_choices()
        if self.instance.pk and self.instance.limit_cents is not None:
            self.initial["limit_dollars"] = Decimal(self.instance.limit_cents) / 100

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        scope = cleaned.get("scope")
        if scope == Scope.ORGANISATION and (cleaned.get("user") or cleaned.get("project")):
            raise forms.ValidationError("An organisation budget has no member and no project.")
        if scope == Scope.PROJECT and not cleaned.get("project"):
            self.add_error("project", "Choose the project this budget is for.")
        if scope != Scope.PROJECT and cleaned.get("project"):
            self.add_error("project", "Only project budgets name a project.")
        if scope == Scope.PROJECT and cleaned.get("user"):
            self.add_error("user", "A project budget covers every member of the project.")
        if scope != Scope.MEMBER and cleaned.get("allowed_models"):
            self.add_error("allowed_models", "Only member budgets restrict models.")
        return cleaned

    def _post_clean(self) -> None:
        self.instance.limit_cents = _cents(self.cleaned_data.get("limit_dollars"))
        super()._post_clean()  # type: ignore[misc]


class PriceAdminForm(forms.ModelForm):
    class Meta:
        model = Price
        fields = ["channel", "model", "size", "variant", "usd_per_second", "effective_from", "note"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        channel = cleaned.get("channel")
        if channel is not None and cleaned.get("model") and cleaned.get("size"):
            try:
                price_validate(
                    channel=channel,
                    model=cleaned["model"],
                    size=cleaned["size"],
                    variant=cleaned.get("variant") or "",
                    effective_from=cleaned.get("effective_from"),
                    now=timezone.now(),
                )
            except forms.ValidationError as error:
                for name, messages in error.message_dict.items():
                    for message in messages:
                        self.add_error(name if name in self.fields else None, message)
        return cleaned


class AdjustmentForm(forms.ModelForm):
    """An admin's correction of a member's spend: an adjustment entry in the ledger."""

    amount = forms.DecimalField(
        label="Amount (US$)",
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=2,
        help_text="Positive charges the member; negative refunds (e.g. -1.20).",
    )
    seconds_delta = forms.IntegerField(
        label="Seconds of video",
        required=False,
        initial=0,
        min_value=-SECONDS_MAX,
        max_value=SECONDS_MAX,
        help_text="Optional: correct seconds-of-video budgets too (negative gives back).",
    )

    class Meta:
        model = LedgerEntry
        fields = ["user", "project", "generation", "reason"]
        labels = {"user": "Member"}
        help_texts = {
            "generation": "Optional: the generation this corrects; its member, project and "
            "budget period are then used.",
            "reason": "Required: kept in the ledger for good.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("user") and not cleaned.get("generation"):
            self.add_error("user", "Choose the member (or the generation) to adjust.")
        if cleaned.get("amount") == 0 and not cleaned.get("seconds_delta"):
            self.add_error("amount", "An adjustment has to change the amount or the seconds.")
        self.instance.kind = "adjustment"
        return cleaned

    @property
    def amount_cents(self) -> int:
        return _cents(self.cleaned_data["amount"]) or 0
