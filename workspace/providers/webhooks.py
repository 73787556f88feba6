"""Incoming provider webhooks: verified, de-duplicated, and turned into an immediate status check.

A webhook only says "look now": the job is always re-fetched with the organisation's key before
anything is settled, so a forged or stale event can at most cause one extra status call, and a
missed one is caught by the (then slow) safety-net polling.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from workspace.providers.models import Channel, WebhookDelivery

logger = logging.getLogger(__name__)

FINISHED_EVENTS = {"video.completed", "video.failed"}


class WebhookRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class WebhookOutcome:
    duplicate: bool
    event_type: str
    provider_job_id: str | None


def webhook_receive(*, channel: Channel, body: bytes, headers: dict[str, str]) -> WebhookOutcome:
    secret = channel.webhook_secret()
    if secret is None:
        raise WebhookRejected(404, "This channel does not accept webhooks.")
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError as error:
        raise WebhookRejected(400, f"Signature check failed: {error}.") from None
    try:
        event: Any = json.loads(body)
    except ValueError:
        raise WebhookRejected(400, "The body is not JSON.") from None
    event_type = str(event.get("type", "")) if isinstance(event, dict) else ""
    data = event.get("data") if isinstance(event, dict) else None
    job_id = str(data["id"]) if isinstance(data, dict) and data.get("id") else None
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(
                channel=channel,
                webhook_id=headers.get("webhook-id", ""),
                event_type=event_type[:80],
                provider_job_id=(job_id or "")[:200],
            )
    except IntegrityError:
        return WebhookOutcome(duplicate=True, event_type=event_type, provider_job_id=job_id)
    if event_type in FINISHED_EVENTS and job_id:
        from workspace.generations.services import generation_check_now

        generation_check_now(channel=channel, provider_job_id=job_id)
    else:
        logger.info("channel %s: ignored webhook event %r", channel.slug, event_type)
    return WebhookOutcome(duplicate=False, event_type=event_type, provider_job_id=job_id)
