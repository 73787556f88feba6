from django.contrib import admin

from workspace.providers.models import Channel


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "protocol", "endpoint", "is_active"]
    prepopulated_fields = {"slug": ["name"]}

    @admin.display(description="Talks to")
    def endpoint(self, channel: Channel) -> str:
        connection = channel.connection()
        # The base URL only; the key itself is never rendered.
        label = "simulator" if connection.simulated else "provider"
        return f"{connection.base_url} ({label})"
