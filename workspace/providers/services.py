from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError

from workspace.core.rq import get_redis
from workspace.providers.adapters.base import VideoAdapter
from workspace.providers.adapters.openai_videos import OpenAIVideosAdapter
from workspace.providers.limiter import ChannelLimiter
from workspace.providers.models import Channel, Protocol

DEFAULT_CHANNEL_SLUG = "openai"


def channel_get_default() -> Channel:
    """The channel new work goes to: the first active one, created on first use.

    A fresh install has exactly one channel, driven by ``OPENAI_API_KEY``/``OPENAI_BASE_URL``
    (the simulator while no key is set).
    """
    channel = Channel.objects.filter(is_active=True).order_by("id").first()
    if channel is not None:
        return channel
    try:
        channel, _ = Channel.objects.get_or_create(
            slug=DEFAULT_CHANNEL_SLUG,
            defaults={"name": "OpenAI Videos", "protocol": Protocol.OPENAI_VIDEOS},
        )
    except IntegrityError:  # created concurrently by another process
        channel = Channel.objects.get(slug=DEFAULT_CHANNEL_SLUG)
    return channel


def limiter_for_channel(*, channel: Channel) -> ChannelLimiter:
    return ChannelLimiter(
        get_redis(),
        channel_id=channel.pk,
        requests_per_minute=channel.requests_per_minute,
        creates_per_minute=channel.creates_per_minute,
        time_scale=settings.REELHOUSE_TIME_SCALE,
    )


def adapter_for_channel(*, channel: Channel, limiter: ChannelLimiter | None = None) -> VideoAdapter:
    """The channel's adapter; every call it makes waits for a slot from the channel's limiter."""
    connection = channel.connection()
    if channel.protocol == Protocol.OPENAI_VIDEOS:
        return OpenAIVideosAdapter(
            base_url=connection.base_url,
            api_key=connection.api_key,
            connect_timeout=settings.PROVIDER_CONNECT_TIMEOUT,
            read_timeout=settings.PROVIDER_READ_TIMEOUT,
            download_timeout=settings.PROVIDER_DOWNLOAD_TIMEOUT,
            pacer=limiter or limiter_for_channel(channel=channel),
        )
    raise ValueError(f"Channel {channel.slug} uses an unknown protocol {channel.protocol!r}.")
