from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Field, QuerySet, URLField
from django.http import HttpRequest

from workspace.generations.dispatch import channel_resume_dispatch
from workspace.generations.standings import channel_binding_limit
from workspace.providers.forms import ChannelAdminForm
from workspace.providers.models import Channel, FailoverRoute, FailoverStep
from workspace.providers.services import (
    channel_check_key,
    circuit_for_channel,
    limiter_for_channel,
)


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelAdminForm
    list_display = [
        "name",
        "protocol",
        "endpoint",
        "key",
        "requests_per_minute",
        "creates_per_minute",
        "max_in_flight",
        "health",
        "is_active",
    ]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["key", "health", "binding_limit", "halted_at", "halted_reason"]
    actions = ["check_key", "resume"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "protocol", "base_url", "is_active"]}),
        (
            "Key",
            {"fields": ["key", "api_key_env", "new_api_key", "clear_api_key", "confirm_key_env"]},
        ),
        (
            "Limits (shared by every worker)",
            {
                "fields": [
                    "requests_per_minute",
                    "creates_per_minute",
                    "max_in_flight",
                    "member_max_in_flight",
                    "member_max_queued",
                    "max_takes",
                    "binding_limit",
                ]
            },
        ),
        ("Webhooks", {"fields": ["webhook_secret_env"]}),
        ("Output files", {"fields": ["private_output_hosts"]}),
        ("Health", {"fields": ["health", "halted_at", "halted_reason"]}),
    ]

    def save_model(
        self, request: HttpRequest, obj: Channel, form: ChannelAdminForm, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        if obj.key_cleared:
            what = "base URL" if "base_url" in form.changed_data else "protocol"
            self.message_user(
                request,
                f"{obj.name}: the stored key was cleared because the {what} changed; enter it "
                "again (under Key → New API key) to use it with the new address.",
                messages.WARNING,
            )

    def formfield_for_dbfield(
        self, db_field: Field[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> Any:
        # The admin builds its form anew with its own field callback: keep the form's rule.
        if isinstance(db_field, URLField):
            kwargs["assume_scheme"] = "https"
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "max_in_flight" and field is not None:
            field.help_text = (
                "Set it to the provider's own concurrency: how many jobs it renders at once for "
                "this account. Counted while the provider renders (not while we copy the files). "
                "Lower leaves requests per minute unused; higher only queues work at the provider."
            )
        return field

    @admin.display(description="Limit that binds now")
    def binding_limit(self, channel: Channel) -> str:
        return channel_binding_limit(channel=channel)

    @admin.display(description="Talks to")
    def endpoint(self, channel: Channel) -> str:
        connection = channel.connection()
        label = "simulator" if connection.simulated else "provider"
        return f"{connection.base_url} ({label})"

    @admin.display(description="Key")
    def key(self, channel: Channel) -> str:
        return channel.key_source  # where the key comes from; never the key

    @admin.display(description="Health")
    def health(self, channel: Channel) -> str:
        if channel.pk is None:
            return "-"
        if channel.halted_at:
            return f"HALTED: {channel.halted_reason}"
        parts = []
        try:
            circuit = circuit_for_channel(channel=channel).state()
            if circuit.state != "closed":
                parts.append(f"circuit {circuit.state} (probe in {circuit.reopens_in:.0f} s)")
            paused = limiter_for_channel(channel=channel).paused_for()
            if paused > 0:
                parts.append(f"paused by the provider for {paused:.0f} s")
        except Exception:  # Redis unreachable: say so rather than break the admin page
            return "unknown (Redis unreachable)"
        return "; ".join(parts) or "ok"

    @admin.action(description="Check the key (one harmless call)")
    def check_key(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            result = channel_check_key(channel=channel)
            level = messages.SUCCESS if result.verdict == "valid" else messages.WARNING
            self.message_user(request, f"{channel.name}: {result.verdict}. {result.message}", level)

    @admin.action(description="Resume (after fixing the key or the account)")
    def resume(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            channel_resume_dispatch(channel=channel)
            self.message_user(request, f"{channel.name} resumed; queued work is being sent.")


class FailoverStepInline(admin.TabularInline):
    model = FailoverStep
    extra = 2
    ordering = ["position"]


@admin.register(FailoverRoute)
class FailoverRouteAdmin(admin.ModelAdmin):
    list_display = ["name", "steps_summary"]
    inlines = [FailoverStepInline]

    @admin.display(description="Order of preference")
    def steps_summary(self, route: FailoverRoute) -> str:
        return " → ".join(f"{s.channel.name} / {s.model}" for s in route.steps.all())
