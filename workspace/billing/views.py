from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from workspace.billing.selectors import member_usage
from workspace.billing.services import notifications_mark_read
from workspace.core.models import Notification
from workspace.generations.storage_use import storage_of_member


@login_required
@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    """My usage: budgets, this period and the last twelve months, by project and model."""
    storage = storage_of_member(user=request.user)  # type: ignore[arg-type]
    return render(
        request,
        "billing/usage.html",
        {
            "usage": member_usage(user=request.user),  # type: ignore[arg-type]
            "storage": storage,
            "storage_total": sum(row.bytes for row in storage),
        },
    )


@login_required
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    items = Notification.objects.filter(user_id=request.user.pk or 0)[:100]
    return render(request, "billing/notifications.html", {"notifications": items})


@login_required
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    marked = notifications_mark_read(user=request.user)  # type: ignore[arg-type]
    if marked:
        messages.success(request, "Marked as read.")
    return redirect("billing:notifications")
