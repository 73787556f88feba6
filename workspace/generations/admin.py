from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from workspace.generations.models import Generation, Status
from workspace.generations.sending import generation_release_hold


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "created_by",
        "channel",
        "model",
        "size",
        "seconds",
        "status",
        "progress",
        "error_class",
        "created_at",
    ]
    list_filter = ["status", "model", "channel", "error_class"]
    search_fields = ["prompt", "provider_job_id", "created_by__username", "project__name"]
    readonly_fields = [
        f.name for f in Generation._meta.get_fields() if getattr(f, "concrete", False)
    ]
    date_hierarchy = "created_at"
    actions = ["send_held_again", "cancel_held"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Generations enter only through the submit service, which validates and queues them.
        return False

    @admin.action(description="Held: send again (the provider may bill twice)")
    def send_held_again(self, request: HttpRequest, queryset: QuerySet[Generation]) -> None:
        self._release(request, queryset, resend=True)

    @admin.action(description="Held: cancel")
    def cancel_held(self, request: HttpRequest, queryset: QuerySet[Generation]) -> None:
        self._release(request, queryset, resend=False)

    def _release(
        self, request: HttpRequest, queryset: QuerySet[Generation], *, resend: bool
    ) -> None:
        done = sum(
            generation_release_hold(generation=generation, resend=resend)
            for generation in queryset.filter(status=Status.HELD)
        )
        skipped = queryset.exclude(status=Status.HELD).count()
        verb = "sent again" if resend else "canceled"
        self.message_user(request, f"{done} held generation(s) {verb}.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} selected generation(s) were not held and were left alone.",
                messages.WARNING,
            )
