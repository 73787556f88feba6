from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from workspace.api.models import ApiToken
from workspace.api.services import token_revoke


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "owner",
        "project",
        "can_write",
        "display_prefix",
        "state",
        "created_at",
        "expires_at",
        "last_used_at",
        "last_used_ip",
    ]
    list_filter = ["can_write", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "owner__username", "prefix"]
    # The digest is useless to read and there is nothing else worth editing by hand.
    readonly_fields = [f.name for f in ApiToken._meta.concrete_fields if f.name != "secret_sha256"]
    exclude = ["secret_sha256"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Secrets are issued to their owner on the tokens page, shown once to them only.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        # Revoked, never deleted: the audit log and the last-use record keep meaning something.
        return False

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = sum(
            token_revoke(token=token, actor=request.user)  # type: ignore[arg-type]
            for token in queryset
        )
        messages.success(request, f"Revoked {revoked} token{'s' if revoked != 1 else ''}.")
