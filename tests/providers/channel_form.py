"""Posting the channel form of the admin, as an admin editing a channel would."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from workspace.providers.models import Channel


def channel_admin_change(
    admin_client: Client, channel: Channel, *, follow: bool = False, **fields: Any
) -> Any:
    """Submit the channel's change form with its current values, ``fields`` overriding them."""
    data = {
        "name": channel.name,
        "slug": channel.slug,
        "protocol": channel.protocol,
        "base_url": channel.base_url,
        "is_active": "on",
        "api_key_env": channel.api_key_env,
        "requests_per_minute": channel.requests_per_minute,
        "creates_per_minute": "",
        "max_in_flight": channel.max_in_flight,
        "member_max_in_flight": channel.member_max_in_flight,
        "member_max_queued": channel.member_max_queued,
        "max_takes": channel.max_takes,
        "webhook_secret_env": channel.webhook_secret_env,
        **fields,
    }
    url = reverse("admin:providers_channel_change", args=[channel.pk])
    return admin_client.post(url, data, follow=follow)
