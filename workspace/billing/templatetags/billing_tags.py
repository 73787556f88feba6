from __future__ import annotations

from typing import Any

from django import template
from django.contrib.auth.models import AnonymousUser, User

from workspace.billing.selectors import BudgetStatus, budget_statuses
from workspace.billing.services import money as _money
from workspace.core.models import Notification
from workspace.projects.models import Project

register = template.Library()


@register.filter
def money(cents: int | None) -> str:
    """Cents as dollars: 1234 → "$12.34"; None → "no cap"."""
    return "no cap" if cents is None else _money(int(cents))


@register.inclusion_tag("billing/_nav.html", takes_context=True)
def billing_nav(context: dict[str, Any]) -> dict[str, Any]:
    """The "Usage" link and the notifications bell of the top bar (one query)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    unread = 0
    if user is not None and user.is_authenticated:
        unread = Notification.objects.filter(user_id=user.pk, read_at__isnull=True).count()
    match = getattr(request, "resolver_match", None)
    return {
        "unread": unread,
        "current": match.url_name if match and match.namespace == "billing" else "",
    }


@register.inclusion_tag("billing/_budgets.html")
def budget_strip(user: User | AnonymousUser, project: Project | None = None) -> dict[str, Any]:
    """Spent, reserved, remaining and reset time of every budget that applies here."""
    statuses: list[BudgetStatus] = []
    if isinstance(user, User) and user.is_authenticated:
        statuses = budget_statuses(user=user, project=project)
    return {"statuses": statuses, "compact": True}
