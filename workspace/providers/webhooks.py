"""Incoming provider webhooks: verified and de-duplicated; the view turns a finished job's event
into an immediate status check (``generations.following.generation_check_now``).

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
from standardwebhooks.webhooks import EmptyWebhookSecretError, WebhookVerificationError

from workspace.providers.models import Channel, WebhookDelivery

logger = logging.getLogger(__name__)

FINISHED_EVENTS = {"video.completed", "video.failed"}
WEBHOOK_ID_MAX = WebhookDelivery._meta.get_field("webhook_id").max_length or 200


def _text(value: object) -> str:
    # PostgreSQL refuses NUL in text columns; JSON may carry one as \u0000.
    return str(value).replace("\x00", "")


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

    @property
    def job_to_check(self) -> str | None:
        """The provider job to check at once: a first delivery that says a job finished."""
        if self.duplicate or self.event_type not in FINISHED_EVENTS:
            return None
        return self.provider_job_id


def webhook_receive(*, channel: Channel, body: bytes, headers: dict[str, str]) -> WebhookOutcome:
    secret = channel.webhook_secret()
    if secret is None:
        raise WebhookRejected(404, "This channel does not accept webhooks.")
    webhook_id = headers.get("webhook-id", "")
    if len(webhook_id) > WEBHOOK_ID_MAX:
        raise WebhookRejected(400, f"The webhook-id is longer than {WEBHOOK_ID_MAX} characters.")
    try:
        verifier = Webhook(secret)
    except (ValueError, EmptyWebhookSecretError):
        # Not base64 (or empty after "whsec_"): the operator's setting is wrong, not the
        # delivery. Say so in the log and let the provider retry later.
        logger.error(
            "channel %s: %s is not a valid whsec_ secret", channel.slug, channel.webhook_secret_env
        )
        raise WebhookRejected(503, "Webhooks are misconfigured here; try again later.") from None
    try:
        # Parsed below, not by the library: its json.loads would escape as a server error.
        verifier.verify(body, headers, json_parse=False)
    except WebhookVerificationError as error:
        raise WebhookRejected(400, f"Signature check failed: {error}.") from None
    except ValueError:
        # The library assumes well-formed input: a body that is not UTF-8, a signature without
        # "v1," or one that is not base64 raise plain ValueErrors (UnicodeDecodeError,
        # binascii.Error) from inside the check. Any of them means "not signed by the provider".
        raise WebhookRejected(400, "Signature check failed: malformed delivery.") from None
    try:
        event: Any = json.loads(body)
    except ValueError:
        raise WebhookRejected(400, "The body is not JSON.") from None
    event_type = _text(event.get("type", "")) if isinstance(event, dict) else ""
    data = event.get("data") if isinstance(event, dict) else None
    job_id = _text(data["id"]) if isinstance(data, dict) and data.get("id") else None
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(
                channel=channel,
                webhook_id=webhook_id,
                event_type=event_type[:80],
                provider_job_id=(job_id or "")[:200],
            )
    except IntegrityError:
        return WebhookOutcome(duplicate=True, event_type=event_type, provider_job_id=job_id)
    outcome = WebhookOutcome(duplicate=False, event_type=event_type, provider_job_id=job_id)
    if outcome.job_to_check is None:
        logger.info("channel %s: ignored webhook event %r", channel.slug, event_type)
    return outcome
