from __future__ import annotations

from typing import Any

from django import forms

from workspace.providers.models import Channel


class ChannelAdminForm(forms.ModelForm):
    """The channel form of the admin: the key can be replaced or cleared, never read back."""

    new_api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        label="New API key",
        help_text=(
            "Write-only: leave blank to keep the current key. Stored encrypted; pages only ever "
            "show its first and last characters."
        ),
    )
    clear_api_key = forms.BooleanField(
        required=False,
        label="Forget the stored key",
        help_text="Then the key comes from the environment variable named above, if it is set.",
    )

    class Meta:
        model = Channel
        fields = [
            "name",
            "slug",
            "protocol",
            "base_url",
            "is_active",
            "api_key_env",
            "requests_per_minute",
            "creates_per_minute",
            "max_in_flight",
            "member_max_in_flight",
            "member_max_queued",
            "webhook_secret_env",
            "private_output_hosts",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        key = cleaned.get("new_api_key", "")
        if key and cleaned.get("clear_api_key"):
            self.add_error("clear_api_key", "Either enter a new key or forget the stored one.")
        if key and (len(key) < 8 or any(c.isspace() for c in key)):
            self.add_error("new_api_key", "That does not look like an API key.")
        return cleaned

    def save(self, commit: bool = True) -> Channel:
        channel: Channel = super().save(commit=False)
        if self.cleaned_data.get("new_api_key"):
            channel.set_api_key(self.cleaned_data["new_api_key"])
        elif self.cleaned_data.get("clear_api_key"):
            channel.set_api_key("")
        if commit:
            channel.save()
        return channel
