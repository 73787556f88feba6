"""Keeps budget counters honest when a budget changes shape."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import pre_save

from workspace.billing.models import Budget
from workspace.billing.services import budget_counters_reset

# A change to any of these makes a budget count different entries or periods.
_SHAPE = ("scope", "user_id", "project_id", "period", "is_active")


def _budget_before_save(sender: type[Budget], instance: Budget, **kwargs: Any) -> None:
    if kwargs.get("raw") or instance._state.adding:
        return
    before = Budget.objects.filter(pk=instance.pk).values(*_SHAPE).first()
    if before and any(before[name] != getattr(instance, name) for name in _SHAPE):
        # Counters are a cache of the ledger per period; they rebuild on next use.
        budget_counters_reset(budget=instance)


def connect() -> None:
    pre_save.connect(_budget_before_save, sender=Budget, dispatch_uid="billing-budget-shape")
