"""Numbers and days typed in the admin are bounded: a form error, never a server error."""

from __future__ import annotations

import pytest
from django.urls import reverse

from workspace.billing.models import Budget, LedgerEntry


@pytest.mark.parametrize("amount", ["1E+400", "99999999999999999999"])
def test_absurd_amounts_are_form_errors_not_500s(admin_client, teammate, amount) -> None:  # type: ignore[no-untyped-def]
    admin_client.raise_request_exception = False
    answer = admin_client.post(
        reverse("admin:billing_ledgerentry_add"),
        {"user": teammate.pk, "amount": amount, "seconds_delta": "0", "reason": "typo"},
    )
    assert answer.status_code == 200
    assert "Ensure that there are no more than 12 digits in total." in answer.content.decode()
    answer = admin_client.post(
        reverse("admin:billing_budget_add"),
        {"scope": "organisation", "period": "month", "limit_dollars": amount, "is_active": "on"},
    )
    assert answer.status_code == 200
    assert "Ensure that there are no more than 12 digits in total." in answer.content.decode()
    assert not Budget.objects.exists()
    answer = admin_client.post(
        reverse("admin:billing_ledgerentry_add"),
        {"user": teammate.pk, "amount": "1", "seconds_delta": "9" * 30, "reason": "typo"},
    )
    assert "Ensure this value is less than or equal to 1000000000." in answer.content.decode()
    assert not LedgerEntry.objects.filter(kind="adjustment").exists()


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_the_usage_panel_refuses_days_at_the_calendar_s_ends(admin_client, day) -> None:  # type: ignore[no-untyped-def]
    admin_client.raise_request_exception = False
    for name in ("admin:billing_usagepanel_changelist", "admin:billing_usagepanel_export"):
        answer = admin_client.get(reverse(name), {"first": day, "last": day})
        if answer.streaming:
            b"".join(answer.streaming_content)
        assert answer.status_code == 200, name
