from django.contrib import admin
from django.http import HttpRequest

from workspace.reviews.models import Comment, ReviewDecision


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    """Moderation: an admin can read and delete comments; members write them in the app."""

    list_display = ["text", "author", "generation", "at_ms", "created_at"]
    list_select_related = ["author", "generation"]
    search_fields = ["text", "author__username"]
    readonly_fields = ["generation", "author", "at_ms", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(admin.ModelAdmin):
    """Review history: written by members' decisions only, never edited."""

    list_display = ["generation", "state", "decided_by", "decided_at", "is_current"]
    list_select_related = ["generation", "decided_by"]
    list_filter = ["state", "is_current"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: ReviewDecision | None = None
    ) -> list[str]:
        return [f.name for f in ReviewDecision._meta.concrete_fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: ReviewDecision | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: ReviewDecision | None = None
    ) -> bool:
        return False
