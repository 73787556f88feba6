from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from workspace.core.notify import admins_notify
from workspace.core.rq import get_redis
from workspace.providers.adapters.base import VideoAdapter
from workspace.providers.call_counts import ChannelCallCounter
from workspace.providers.circuit import ChannelCircuit
from workspace.providers.errors import ErrorClass, ProviderError
from workspace.providers.limiter import ChannelLimiter, Throttled
from workspace.providers.models import Channel, FailoverStep
from workspace.providers.registry import DEFAULT_KIND, provider
from workspace.providers.secrets import KeyUnreadable

logger = logging.getLogger(__name__)

DEFAULT_CHANNEL_SLUG = "openai"


def channel_get_default() -> Channel:
    """The channel new work goes to: the first active one, created on first use.

    A fresh install has exactly one channel, of the registry's first provider and driven by
    its SDK's variables (``OPENAI_API_KEY``/``OPENAI_BASE_URL``; the simulator while no key is
    set).
    """
    channel = Channel.objects.filter(is_active=True).order_by("id").first()
    if channel is not None:
        return channel
    try:
        channel, _ = Channel.objects.get_or_create(
            slug=DEFAULT_CHANNEL_SLUG,
            defaults={"name": "OpenAI Videos", "protocol": DEFAULT_KIND},
        )
    except IntegrityError:  # created concurrently by another process
        channel = Channel.objects.get(slug=DEFAULT_CHANNEL_SLUG)
    return channel


def limiter_for_channel(*, channel: Channel, prompt_follow_ups: float = 0.0) -> ChannelLimiter:
    """The channel's shared limiter; dispatchers pass the status checks and video downloads each
    create brings, which the limiter plans for (see limiter.py)."""
    return ChannelLimiter(
        get_redis(),
        channel_id=channel.pk,
        requests_per_minute=channel.requests_per_minute,
        creates_per_minute=channel.creates_per_minute,
        time_scale=settings.REELHOUSE_TIME_SCALE,
        prompt_follow_ups=prompt_follow_ups,
    )


def circuit_for_channel(*, channel: Channel) -> ChannelCircuit:
    return ChannelCircuit(get_redis(), channel_id=channel.pk)


def channel_circuit_changed(*, channel: Channel, transition: str) -> None:
    if transition == "opened":
        admins_notify(
            subject=f"{channel.name}: provider failing, sending paused",
            message=(
                f"Most recent calls to {channel.name} failed with provider errors (5xx, "
                "overload, timeouts or dropped connections), so Reelhouse stopped sending to it "
                "for a while and will probe it again automatically. Queued work waits; nothing "
                "is lost."
            ),
        )
    elif transition == "reclosed":
        logger.info("channel %s: circuit closed again", channel.slug)


def channel_halt(*, channel: Channel, reason: str) -> bool:
    """Stop sending new work to a channel until an admin resumes it; True if this call did it."""
    halted = Channel.objects.filter(pk=channel.pk, halted_at__isnull=True).update(
        halted_at=timezone.now(), halted_reason=reason[:2000]
    )
    if halted:
        channel.halted_at, channel.halted_reason = timezone.now(), reason
        admins_notify(
            subject=f"{channel.name} halted: an admin is needed",
            message=(
                f"Reelhouse stopped sending new work to {channel.name}: {reason}\n\n"
                "Queued generations wait and are not lost. Fix the key or the account, then "
                "resume the channel in the admin (Providers → Channels → Resume)."
            ),
            url=f"/admin/providers/channel/{channel.pk}/change/",
        )
    return bool(halted)


def channel_resume(*, channel: Channel) -> None:
    """Clear the halt and the circuit. Restarting dispatch is the caller's step
    (``generations.dispatch.channel_resume_dispatch``): providers never call up into generations."""
    Channel.objects.filter(pk=channel.pk).update(halted_at=None, halted_reason="")
    channel.halted_at, channel.halted_reason = None, ""
    circuit_for_channel(channel=channel).reset()


def channel_defers_extras(*, channel: Channel) -> bool:
    """Whether a finished video's poster and spritesheet wait for slots nothing else needs.

    Only where every request counts against one limit (no separate create limit): there each
    extra file is a slot taken from someone's status check, video or create, and "stored and
    playable" needs only the video. With creates counted alone, follow-ups are not scarce.
    """
    return not channel.creates_per_minute and channel_files_per_video(channel=channel) > 1


def channel_files_per_video(*, channel: Channel) -> int:
    """How many files (video, poster, spritesheet) one finished job of this channel brings."""
    return len(provider(channel.protocol).variants)


def adapter_for_channel(*, channel: Channel, limiter: ChannelLimiter | None = None) -> VideoAdapter:
    """The channel's adapter; every call it makes waits for a slot from the channel's limiter.

    A channel whose kind no provider is registered under raises ``UnknownProvider``.
    """
    adapter_class = provider(channel.protocol).adapter
    connection = channel.connection()
    return adapter_class(
        base_url=connection.base_url,
        api_key=connection.api_key,
        connect_timeout=settings.PROVIDER_CONNECT_TIMEOUT,
        read_timeout=settings.PROVIDER_READ_TIMEOUT,
        download_timeout=settings.PROVIDER_DOWNLOAD_TIMEOUT,
        pacer=limiter or limiter_for_channel(channel=channel),
        circuit=circuit_for_channel(channel=channel),
        on_circuit_change=lambda transition: channel_circuit_changed(
            channel=channel, transition=transition
        ),
        private_output_hosts=channel.private_output_hosts,
        counter=ChannelCallCounter(get_redis(), channel_id=channel.pk),
    )


@dataclass(frozen=True)
class KeyCheck:
    verdict: str  # valid, invalid key, no credit, unreachable, provider trouble, rate limited
    message: str


def channel_check_key(*, channel: Channel) -> KeyCheck:
    """Make one harmless call with the channel's key and say in plain words what it showed."""
    try:
        adapter = adapter_for_channel(channel=channel)
    except KeyUnreadable as error:
        return KeyCheck("invalid key", str(error))
    where = "the provider simulator" if channel.is_simulated else channel.connection().base_url
    try:
        if adapter.can_list:
            adapter.list_recent(limit=1)
        else:
            adapter.retrieve("reelhouse-key-check")
    except Throttled as throttled:
        return KeyCheck(
            "rate limited", f"Not checked: the channel is paused for {throttled.wait:.0f} s more."
        )
    except ProviderError as error:
        verdicts = {
            ErrorClass.AUTH: ("invalid key", "The provider refused the key"),
            ErrorClass.QUOTA_EXHAUSTED: (
                "no credit",
                "The key works but the account has no credit or hit its spend limit",
            ),
            ErrorClass.NETWORK: ("unreachable", f"Could not reach {where}"),
            ErrorClass.OVERLOADED: ("provider trouble", "The provider answered with an error"),
            ErrorClass.RATE_LIMITED: (
                "rate limited",
                "The key works; the provider asks to slow down",
            ),
        }
        if error.error_class in (ErrorClass.NOT_FOUND, ErrorClass.INVALID_REQUEST):
            # The probe asked about a job that does not exist: an answer about the job (not
            # about the key) means the key was accepted.
            return KeyCheck("valid", f"The key works with {where}.")
        verdict, words = verdicts.get(error.error_class, ("provider trouble", "Unexpected answer"))
        return KeyCheck(verdict, f"{words}: {error.message}")
    finally:
        adapter.close()
    return KeyCheck("valid", f"The key works with {where}.")


def channel_available(*, channel: Channel) -> bool:
    """May new work be sent to this channel now (not halted, circuit not open)?"""
    if not channel.is_active or channel.halted_at is not None:
        return False
    try:
        return circuit_for_channel(channel=channel).state().state != "open"
    except Exception:  # Redis unreachable: the channel itself may be fine
        logger.warning("circuit state of channel %s unavailable", channel.slug, exc_info=True)
        return True


def route_alternative(
    *, channel: Channel, model: str, size: str, seconds: int
) -> tuple[Channel, str] | None:
    """The preferred available (channel, model) equivalent to this one, per the failover routes."""
    routes = FailoverStep.objects.filter(channel=channel, model=model).values_list(
        "route_id", flat=True
    )
    steps = (
        FailoverStep.objects.filter(route_id__in=list(routes))
        .exclude(channel=channel, model=model)
        .select_related("channel")
        .order_by("route_id", "position")
    )
    for step in steps:
        spec = step.channel.catalog.get(step.model)
        if spec is None or spec.validate(size=size, seconds=seconds):
            continue  # that model cannot make this size or length
        if channel_available(channel=step.channel):
            return step.channel, step.model
    return None
