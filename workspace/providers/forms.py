from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from django import forms
from django.db import models

from workspace.providers.models import API_KEY_MAX_LENGTH, Channel, provider_base_url
from workspace.providers.registry import DEFAULT_KIND, PROVIDERS, provider
from workspace.providers.validators import key_env_problem


def https_url_fields(field: models.Field[Any, Any], **kwargs: Any) -> forms.Field | None:
    """Form fields for the channel's model fields; a bare host in a URL field means https://."""
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class ChannelAdminForm(forms.ModelForm):
    """The channel form of the admin: the key can be replaced or cleared, never read back."""

    new_api_key = forms.CharField(
        required=False,
        strip=True,
        max_length=API_KEY_MAX_LENGTH,
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
    confirm_key_env = forms.CharField(
        required=False,
        max_length=80,
        label="Confirm the key variable",
        help_text=(
            "Only asked for when a change would send the key from an environment variable to "
            "a new address: type that variable's name to allow it."
        ),
    )

    class Meta:
        model = Channel
        formfield_callback = https_url_fields
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
            "max_takes",
            "webhook_secret_env",
            "private_output_hosts",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Each provider's conventional variables, from the registry, next to the fields.
        hints = {
            "api_key_env": lambda spec: spec.api_key_env,
            "base_url": lambda spec: f"{spec.base_url_env}, else {spec.official_base_url}",
        }
        for name, hint in hints.items():
            field = self.fields.get(name)
            if field is not None:
                by_provider = "; ".join(
                    f"{spec.label}: {hint(spec)}" for spec in PROVIDERS.values()
                )
                field.help_text = f"{field.help_text} ({by_provider})"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        key = cleaned.get("new_api_key", "")
        if key and cleaned.get("clear_api_key"):
            self.add_error("clear_api_key", "Either enter a new key or forget the stored one.")
        kind = cleaned.get("protocol") or self.instance.protocol or DEFAULT_KIND
        chosen = self.instance._state.adding or "protocol" in self.changed_data
        if chosen and kind in PROVIDERS and (why := provider(kind).legacy):
            self.add_error(
                "protocol",
                f"{provider(kind).label} is kept only for the channels that already use it: "
                f"{why}",
            )
        if key and kind in PROVIDERS and (problem := provider(kind).adapter.key_problem(key)):
            self.add_error("new_api_key", problem)
        self._confirm_env_key_destination(cleaned)
        return cleaned

    def _confirm_env_key_destination(self, cleaned: dict[str, Any]) -> None:
        """A key read from the environment goes wherever the channel points; sending it to a
        new address (new channel, base URL, protocol or variable) takes typing its name.

        A stored key is simply forgotten on such a change (Channel.save); an environment
        variable cannot be, so the editor confirms, and the audit log records who did it.
        """
        if self.errors or cleaned.get("new_api_key"):
            return  # a key entered now goes to the new address: whoever entered it knows it
        env = cleaned.get("api_key_env", "")
        if key_env_problem(env):
            return  # refused by the field's own validator, with its own message
        keeps_stored_key = (
            self.instance.pk is not None
            and self.instance.api_key_encrypted
            and not cleaned.get("clear_api_key")
            and not {"base_url", "protocol"} & set(self.changed_data)
        )
        if keeps_stored_key or not os.environ.get(env, "").strip():
            return  # the stored key stays where it was, or there is no environment key
        before = _destination(self.initial) if self.instance.pk is not None else None
        after = _destination(cleaned)
        if before == (env, after[1]) or cleaned.get("confirm_key_env", "").strip() == env:
            return
        self.add_error(
            "confirm_key_env",
            f"This would send the key in {env} to {after[1]}. Type {env} here to allow it.",
        )

    @property
    def key_cleared(self) -> bool:
        return bool(getattr(self.instance, "key_cleared", False))

    def save(self, commit: bool = True) -> Channel:
        channel: Channel = super().save(commit=False)
        if self.cleaned_data.get("new_api_key"):
            channel.set_api_key(self.cleaned_data["new_api_key"])
        elif self.cleaned_data.get("clear_api_key"):
            channel.set_api_key("")
        if commit:
            channel.save()
        return channel


def _destination(values: Mapping[str, Any]) -> tuple[str, str]:
    """(key variable, address) a channel with these values sends an environment key to."""
    spec = provider(values.get("protocol") or DEFAULT_KIND)
    address = provider_base_url(spec, values.get("base_url") or "")
    return str(values.get("api_key_env", "")), address
