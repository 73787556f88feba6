"""Personal API tokens: a member's key to the OpenAI-compatible ``/v1/videos`` API.

A token is ``rh_<prefix>_<secret>``. The prefix is public (shown on the tokens page, used to find
the row); the secret is 256 random bits shown once and stored only as its SHA-256. A slow hash
(PBKDF2) buys nothing for a secret that cannot be guessed, and would cost every API call.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_NAME_MAX_LENGTH = 100
WEBHOOK_URL_MAX_LENGTH = 2000


class ApiToken(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=TOKEN_NAME_MAX_LENGTH)
    # NULL: every project the owner belongs to, now or later.
    project = models.ForeignKey(
        "projects.Project",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_tokens",
    )
    can_write = models.BooleanField(
        default=False, help_text="Read-write tokens may create and delete videos."
    )
    prefix = models.CharField(max_length=16, unique=True)
    secret_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    # Where video.completed / video.failed events for the videos this token created are sent;
    # empty: none are. Vetted when set and again when connecting (api/webhooks.py).
    webhook_url = models.URLField(max_length=WEBHOOK_URL_MAX_LENGTH, blank=True)
    # The Standard Webhooks signing secret (whsec_…), encrypted like provider keys: it is
    # needed in clear to sign, and is shown to the owner once, when made.
    webhook_secret_encrypted = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} (rh_{self.prefix}…)"

    @property
    def display_prefix(self) -> str:
        return f"rh_{self.prefix}_…"

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and not self.is_expired()

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.is_expired():
            return "expired"
        return "active"


class TokenVideo(models.Model):
    """Which token created a video: its webhooks report that video's end."""

    generation = models.OneToOneField(
        "generations.Generation",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="api_token_link",
    )
    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="videos")

    def __str__(self) -> str:
        return f"{self.generation_id} by {self.token_id}"


class WebhookEvent(models.Model):
    """One event owed to a token's webhook URL, and where its delivery stands.

    Its ``event_id`` is the body's ``id`` and the ``webhook-id`` header of every attempt, so a
    receiver that saw one attempt recognises the retries. One per (token, video, type): a
    second report of the same end adds nothing.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Being sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Gave up"

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="webhook_events")
    event_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=40)
    # Not a foreign key: the log outlives a deleted video.
    video_id = models.UUIDField()
    created_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # While ``sending``: when the claim lapses and another job may take the event (the worker
    # that claimed it died mid-send).
    lease_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["token", "video_id", "event_type"], name="one_event_per_video_and_type"
            )
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} {self.video_id} ({self.state})"


class WebhookAttempt(models.Model):
    """One try at delivering an event: what the receiver answered, or why there was no answer."""

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["event", "number"]
        constraints = [
            models.UniqueConstraint(fields=["event", "number"], name="one_attempt_per_number")
        ]

    def __str__(self) -> str:
        return f"{self.event_id} #{self.number}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
