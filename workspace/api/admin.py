from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from workspace.api.models import ApiToken, WebhookAttempt, WebhookEvent
from workspace.api.services import token_revoke

_HIDDEN = ("secret_sha256", "webhook_secret_encrypted")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "started_at", "duration_ms", "status_code", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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
        "webhook_url",
    ]
    list_filter = ["can_write", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "owner__username", "prefix"]
    # The digest is useless to read, the webhook's signing secret is its owner's alone (even
    # encrypted), and there is nothing else worth editing by hand.
    readonly_fields = [f.name for f in ApiToken._meta.concrete_fields if f.name not in _HIDDEN]
    exclude = list(_HIDDEN)
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


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    """The delivery log of every token's webhook, read-only: what was sent where, and answered."""

    list_display = ["event_type", "video_id", "token", "state", "attempts", "created_at"]
    list_filter = ["state", "event_type"]
    search_fields = ["event_id", "video_id", "token__name", "token__owner__username"]
    readonly_fields = [f.name for f in WebhookEvent._meta.concrete_fields]
    inlines = [WebhookAttemptInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # History, like the audit log; it goes with its token's owner.
        return False
