"""Outgoing webhooks: a token's ``video.completed`` / ``video.failed`` events, signed the
Standard Webhooks way and delivered to the URL its owner set.

- The URL must lead to public addresses, judged when it is set and again when connecting
  (``providers.http.public_client``, the vetting provider outputs go through), so a member
  cannot aim Reelhouse at its own internal services. An operator may allow private hosts
  (``REELHOUSE_WEBHOOK_PRIVATE_HOSTS``).
- An event is recorded when the transition that ends a video commits (the
  ``generation_finished`` signal), and sent by an RQ job, ``webhook_deliver``. Each attempt
  claims the event with a conditional update, so a duplicated job sends nothing twice, and a
  delivered event is never sent again. Failures and timeouts are retried with exponential
  backoff, at most ``MAX_ATTEMPTS`` times; every attempt is logged for the tokens page.
- The body has OpenAI's webhook event shape; its ``id`` is the ``webhook-id`` of every
  attempt, so receivers can drop the retries of an event they already handled.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import random
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks import Webhook

from workspace.api import jobs
from workspace.api.models import WEBHOOK_URL_MAX_LENGTH, ApiToken, TokenVideo, WebhookAttempt
from workspace.api.models import WebhookEvent as Event
from workspace.billing.audit import audit_actor, audit_record
from workspace.core.models import AuditEvent
from workspace.core.rq import enqueue_on_commit
from workspace.generations.models import Generation, Status
from workspace.generations.outcomes import scaled_delay
from workspace.providers.addresses import OutputPolicy, OutputRefused, parse_private_hosts
from workspace.providers.http import public_client
from workspace.providers.secrets import decrypt, encrypt

logger = logging.getLogger(__name__)

COMPLETED = "video.completed"
FAILED = "video.failed"
# Ten tries over about 13 hours: pauses of 10 s, 40 s, 3 min, 11 min, 43 min, 2.8 h, then 3 h.
MAX_ATTEMPTS = 10
_FIRST_RETRY_SECONDS = 10.0
_RETRY_CAP_SECONDS = 3 * 3600.0
# A claim outlives the slowest attempt by this much before another job may take the event.
_LEASE_MARGIN = timedelta(seconds=30)
_USER_AGENT = "Reelhouse-Webhooks/1"


# --- Setting the URL ---------------------------------------------------------------------------


def _policy() -> OutputPolicy:
    return OutputPolicy.for_channel(
        trusted=(), private_output_hosts=settings.REELHOUSE_WEBHOOK_PRIVATE_HOSTS
    )


def _allowed_private(host: str) -> bool:
    names, networks = parse_private_hosts(settings.REELHOUSE_WEBHOOK_PRIVATE_HOSTS)
    if host in names:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address.version == n.version and address in n for n in networks)


def webhook_url_check(url: str) -> str:
    """``url`` cleaned, once it may receive webhooks; ValidationError saying why not."""
    url = url.strip()
    if len(url) > WEBHOOK_URL_MAX_LENGTH:
        raise ValidationError(f"A webhook URL has at most {WEBHOOK_URL_MAX_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError("That is not a valid URL.") from None
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme not in ("https", "http") or not host:
        raise ValidationError("Enter an https:// URL, e.g. https://example.com/reelhouse-hook.")
    if parts.username or parts.password:
        raise ValidationError(
            "Leave credentials out of the URL (it is shown on the tokens page); check the "
            "signature on each delivery instead."
        )
    if parts.scheme == "http" and not _allowed_private(host):
        raise ValidationError("Use https: deliveries carry your videos' ids and outcomes.")
    try:
        _policy().vet(host, port or (443 if parts.scheme == "https" else 80))
    except OutputRefused:
        raise ValidationError(
            f"{host} leads to a private address (this machine, a local network or a cloud "
            "metadata service); webhooks go only to public addresses."
        ) from None
    except httpcore.ConnectError:
        raise ValidationError(f"{host} does not resolve; check the host name.") from None
    return url


def _new_secret() -> str:
    # 32 random bytes, the Standard Webhooks "whsec_" form that its libraries take as is.
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def token_webhook_set(*, token: ApiToken, actor: User, url: str, new_secret: bool) -> str | None:
    """Point ``token``'s webhooks at ``url`` (empty: stop sending them).

    Answers the new signing secret, the only time it is shown, when one was made: the first
    time a URL is set, or when ``new_secret`` asks for another (the old one stops working).
    """
    if token.owner_id != actor.pk:
        raise PermissionDenied("Only its owner can change a token's webhook.")
    url = webhook_url_check(url) if url.strip() else ""
    secret = None
    if url and (new_secret or not token.webhook_secret_encrypted):
        secret = _new_secret()
    old_url = token.webhook_url
    token.webhook_url = url
    fields = ["webhook_url"]
    if secret is not None:
        token.webhook_secret_encrypted = encrypt(secret)
        fields.append("webhook_secret_encrypted")
    token.save(update_fields=fields)
    changes: dict[str, list[Any]] = {}
    if old_url != url:
        changes["webhook_url"] = [old_url, url]
    if secret is not None:
        changes["webhook_secret"] = ["", "new secret issued"]
    if changes:
        with audit_actor(actor):
            audit_record(action=AuditEvent.Action.CHANGED, target=token, changes=changes)
    return secret


# --- Recording events ---------------------------------------------------------------------------


def video_link_token(*, generation: Generation, token: ApiToken) -> None:
    """Remember that ``token`` created ``generation``, so its end reaches the token's webhook."""
    TokenVideo.objects.create(generation=generation, token=token)


def on_generation_finished(sender: Any, *, generation: Generation, **_: Any) -> None:
    """The ``generation_finished`` receiver. The generation has ended whatever happens here, so
    nothing here may break the workflow that ended it: a failure is logged, not raised."""
    try:
        with transaction.atomic():
            webhook_event_record(generation=generation)
    except Exception:
        logger.exception("could not record the webhook event of generation %s", generation.pk)


def webhook_event_record(*, generation: Generation) -> Event | None:
    """The event for a video that just ended, owed to the webhook of the token that made it.

    Called in the transaction of the ending transition; delivery is enqueued once it commits.
    None when no token with a webhook created the video.
    """
    link = (
        TokenVideo.objects.select_related("token")
        .filter(generation_id=generation.pk)
        .exclude(token__webhook_url="")
        .first()
    )
    if link is None:
        return None
    event_type = COMPLETED if generation.status == Status.COMPLETED else FAILED
    try:
        with transaction.atomic():
            event = Event.objects.create(
                token=link.token,
                event_id=f"evt_{secrets.token_hex(16)}",
                event_type=event_type,
                video_id=generation.pk,
            )
    except IntegrityError:
        return None  # already recorded: the same end reported twice
    event_pk = event.pk

    def enqueue_webhook_delivery() -> None:  # named: Django logs a failing callback by its name
        enqueue_on_commit(jobs.webhook_deliver_job, event_pk)

    # Robust: Redis unreachable at commit must not raise into the workflow that ended the video
    # (the event is committed; the recovery sweep enqueues it later).
    transaction.on_commit(enqueue_webhook_delivery, robust=True)
    return event


def event_payload(event: Event) -> dict[str, Any]:
    """The body, shaped like OpenAI's webhook events; the same for every attempt."""
    return {
        "id": event.event_id,
        "object": "event",
        "type": event.event_type,
        "created_at": int(event.created_at.timestamp()),
        "data": {"id": str(event.video_id)},
    }


# --- Delivering ---------------------------------------------------------------------------------


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: four times longer each
    time, give or take 20 % so that many failed deliveries do not retry in step."""
    base = min(_RETRY_CAP_SECONDS, _FIRST_RETRY_SECONDS * 4 ** (attempts - 1))
    return base * random.uniform(0.8, 1.2)


def _claim(event_id: int) -> Event | None:
    """Take the event for one attempt, or None when it is not due, already delivered or given
    up, or another job holds it: the conditional update lets one job through."""
    now = timezone.now()
    lease = now + _LEASE_MARGIN + timedelta(
        seconds=settings.REELHOUSE_WEBHOOK_CONNECT_TIMEOUT + settings.REELHOUSE_WEBHOOK_TIMEOUT
    )
    due = Q(state=Event.State.PENDING, next_attempt_at__lte=now)
    abandoned = Q(state=Event.State.SENDING, lease_until__lt=now)
    claimed = Event.objects.filter(due | abandoned, pk=event_id).update(
        state=Event.State.SENDING, attempts=F("attempts") + 1, lease_until=lease
    )
    if not claimed:
        return None
    return Event.objects.select_related("token", "token__owner").get(pk=event_id)


def _send(event: Event, secret: str) -> tuple[int | None, str, bool]:
    """One POST of the event: the receiver's status code (None without an answer), what went
    wrong ("" for nothing) and whether trying again could help."""
    body = json.dumps(event_payload(event), separators=(",", ":"))
    now = timezone.now()
    headers = {
        "content-type": "application/json",
        "user-agent": _USER_AGENT,
        "webhook-id": event.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(event.event_id, now, body),
    }
    timeout = httpx.Timeout(
        settings.REELHOUSE_WEBHOOK_TIMEOUT, connect=settings.REELHOUSE_WEBHOOK_CONNECT_TIMEOUT
    )
    try:
        with (
            public_client(
                private_hosts=settings.REELHOUSE_WEBHOOK_PRIVATE_HOSTS, timeout=timeout
            ) as client,
            # Streamed and not read: the receiver's body is not wanted, however big.
            client.stream("POST", event.token.webhook_url, content=body, headers=headers) as r,
        ):
            if r.is_redirect:
                return r.status_code, "Redirects are not followed; give the final URL.", True
            if not r.is_success:
                return r.status_code, f"The receiver answered {r.status_code}.", True
            return r.status_code, "", False
    except OutputRefused:
        # Retrying would only knock on the same private door again.
        return None, "The URL now leads to a private address; nothing was sent.", False
    except httpx.TimeoutException as exc:
        return None, f"No answer in time ({type(exc).__name__}).", True
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500], True


def webhook_deliver(*, event_id: int) -> None:
    """Try to deliver one event; on failure, plan the next try or give up."""
    event = _claim(event_id)
    if event is None:
        return
    token = event.token
    started = timezone.now()
    clock = time.monotonic()
    status: int | None = None
    retryable = False
    if not token.is_usable or not token.owner.is_active:
        error = "The token was revoked or expired; nothing was sent."
    elif not token.webhook_url or not token.webhook_secret_encrypted:
        error = "The token's webhook was removed; nothing was sent."
    else:
        status, error, retryable = _send(event, decrypt(token.webhook_secret_encrypted))
    WebhookAttempt.objects.create(
        event=event,
        number=event.attempts,
        started_at=started,
        duration_ms=int((time.monotonic() - clock) * 1000),
        status_code=status,
        error=error[:500],
    )
    ours = Event.objects.filter(pk=event.pk, state=Event.State.SENDING, attempts=event.attempts)
    if not error:
        ours.update(state=Event.State.DELIVERED, delivered_at=timezone.now(), lease_until=None)
        return
    if not retryable or event.attempts >= MAX_ATTEMPTS:
        ours.update(state=Event.State.FAILED, lease_until=None)
        logger.info("webhook event %s given up after %d attempts", event.event_id, event.attempts)
        return
    delay = scaled_delay(retry_delay(event.attempts))
    if ours.update(
        state=Event.State.PENDING,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        lease_until=None,
    ):
        enqueue_on_commit(jobs.webhook_deliver_job, event.pk, delay=delay)


def webhook_events_resume(*, stale_after: timedelta) -> int:
    """Enqueue again every event whose job was lost (Redis emptied, a worker killed mid-send):
    due for longer than ``stale_after``, or claimed by a worker whose lease ran out."""
    now = timezone.now()
    stale = Event.objects.filter(
        Q(state=Event.State.PENDING, next_attempt_at__lt=now - stale_after)
        | Q(state=Event.State.SENDING, lease_until__lt=now)
    ).values_list("pk", flat=True)[:1000]
    ids = list(stale)
    for pk in ids:
        enqueue_on_commit(jobs.webhook_deliver_job, pk)
    return len(ids)


def webhook_log(*, token: ApiToken, limit: int = 20) -> list[Event]:
    """The token's latest events with their attempts, for its owner's page."""
    return list(token.webhook_events.prefetch_related("attempt_log")[:limit])
