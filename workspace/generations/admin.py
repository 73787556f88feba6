from django.contrib import admin

from workspace.generations.models import Generation


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "created_by",
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

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        # Generations enter only through the submit service, which validates and queues them.
        return False
