from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html_join

from workspace.core.models import AuditEvent


def _shown(value: Any) -> str:
    return "—" if value in (None, "") else str(value)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only: it is written by the app (billing/audit.py) and nothing else."""

    list_display = ["created_at", "who", "action", "target_type", "target_repr", "summary"]
    list_filter = ["action", "target_type"]
    search_fields = ["target_repr", "actor_name"]
    date_hierarchy = "created_at"

    @admin.display(description="By")
    def who(self, event: AuditEvent) -> str:
        return event.actor_name or "system"

    @admin.display(description="Changes")
    def summary(self, event: AuditEvent) -> str:
        return format_html_join(
            "; ",
            "{}: {} → {}",
            ((name, _shown(old), _shown(new)) for name, (old, new) in event.changes.items()),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: AuditEvent | None = None) -> list[str]:
        return [f.name for f in AuditEvent._meta.concrete_fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False
