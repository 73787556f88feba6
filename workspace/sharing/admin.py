from django.contrib import admin
from django.http import HttpRequest

from workspace.sharing.models import ShareLink


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    """Links are made by members and revoked rather than deleted: the admin only looks."""

    list_display = (
        "prefix",
        "project",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "open_count",
        "last_opened_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "project__name")
    readonly_fields = (
        "project",
        "generations",
        "show_prompt",
        "prefix",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "revoked_by",
        "open_count",
        "last_opened_at",
    )
    exclude = ("secret_sha256",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ShareLink | None = None) -> bool:
        return False
