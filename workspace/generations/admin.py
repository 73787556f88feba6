from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from workspace.core.models import AuditEvent
from workspace.generations.models import Generation, RetentionPolicy, Status
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
    list_filter = [
        "status",
        "model",
        "channel",
        "error_class",
        ("files_removed_at", admin.EmptyFieldListFilter),
    ]
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


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    """The organisation's default (the row without a project) and the projects' own policies;
    owners set their project's on its settings page."""

    list_display = ["scope", "describe", "updated_at", "updated_by"]
    list_select_related = ["project", "updated_by"]
    autocomplete_fields = ["project"]
    readonly_fields = ["updated_at", "updated_by"]

    @admin.display(description="Applies to")
    def scope(self, policy: RetentionPolicy) -> str:
        return "Organisation default" if policy.project is None else str(policy.project)

    @admin.display(description="Policy")
    def describe(self, policy: RetentionPolicy) -> str:
        return policy.describe()

    def save_model(
        self, request: HttpRequest, obj: RetentionPolicy, form: ModelForm, change: bool
    ) -> None:
        before = None
        if change and obj.pk:
            previous = RetentionPolicy.objects.filter(pk=obj.pk).first()
            before = previous.describe() if previous else None
        obj.updated_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
        self._audit(request, obj, before=before, after=obj.describe())

    def delete_model(self, request: HttpRequest, obj: RetentionPolicy) -> None:
        before = obj.describe()
        super().delete_model(request, obj)
        self._audit(request, obj, before=before, after=None)

    def _audit(
        self, request: HttpRequest, obj: RetentionPolicy, *, before: str | None, after: str | None
    ) -> None:
        if before == after:
            return
        project = obj.project
        AuditEvent.record(
            actor=request.user,
            action=AuditEvent.Action.CHANGED,
            # A project's own policy is its event (its activity feed shows it).
            target_type="project" if project else "retention policy",
            target_id=str(project.pk) if project else "default",
            target_repr=project.name if project else "Organisation default",
            changes={"retention": [before, after]},
        )
