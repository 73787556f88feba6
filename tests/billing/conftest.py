"""Billing fixtures: an admin with a mailbox, budgets, and a one-line submit."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from tests.conftest import PASSWORD
from workspace.billing.models import Budget, LedgerEntry, Scope
from workspace.billing.periods import Period
from workspace.generations.models import Generation
from workspace.generations.submission import generation_submit


@pytest.fixture
def admin_user(db: None) -> User:
    return User.objects.create_user(
        username="ada",
        password=PASSWORD,
        email="ada@example.test",
        is_staff=True,
        is_superuser=True,
    )


def submit(project, user, prompt: str = "A lighthouse in fog", **overrides) -> Generation:  # type: ignore[no-untyped-def]
    fields = {"model": "sora-2", "size": "1280x720", "seconds": 4, **overrides}
    return generation_submit(project=project, user=user, prompt=prompt, **fields)


def budget(scope: str = Scope.MEMBER, *, cents: int | None = None, **fields) -> Budget:  # type: ignore[no-untyped-def]
    return Budget.objects.create(
        scope=scope, limit_cents=cents, period=fields.pop("period", Period.MONTH), **fields
    )


def kinds(generation: Generation) -> list[str]:
    return list(
        LedgerEntry.objects.filter(generation_id=generation.pk)
        .order_by("id")
        .values_list("kind", flat=True)
    )
