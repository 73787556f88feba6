"""Moving queued work off a channel that cannot take it to equivalent models elsewhere."""

from __future__ import annotations

import logging

from django.utils import timezone

from workspace.generations.lanes import channel_kick_on_commit
from workspace.generations.models import Generation, Status
from workspace.providers.models import Channel
from workspace.providers.services import channel_available, route_alternative

logger = logging.getLogger(__name__)


def generations_fail_over(*, channel: Channel) -> int:
    """Move this unavailable channel's queued work to equivalent models on available channels.

    Only queued generations move: nothing of theirs has reached a provider yet. Returns how many
    moved; each target channel is kicked.
    """

    if channel_available(channel=channel):
        return 0
    moved = 0
    targets: set[int] = set()
    waiting = Generation.objects.filter(channel=channel, status=Status.QUEUED).only(
        "id", "model", "size", "seconds"
    )
    for generation in waiting.iterator():
        alternative = route_alternative(
            channel=channel,
            model=generation.model,
            size=generation.size,
            seconds=generation.seconds,
        )
        if alternative is None:
            continue
        target, model = alternative
        if Generation.objects.filter(
            pk=generation.pk, channel=channel, status=Status.QUEUED
        ).update(channel=target, model=model, updated_at=timezone.now()):
            moved += 1
            targets.add(target.pk)
    for target_id in targets:
        channel_kick_on_commit(channel_id=target_id)
    if moved:
        logger.info(
            "channel %s unavailable: %d queued generations failed over", channel.slug, moved
        )
    return moved
