"""Share links: a read-only window onto chosen videos of one project, for people without an account.

A link's token is ``<prefix>_<secret>``: the prefix (public, shown on the settings page) finds
the row, the secret is 256 random bits stored only as its SHA-256, like API tokens. Whoever holds
the URL sees the videos until the link expires or a member revokes it; nothing else is reachable
through it.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

# What a member may choose; bounded so a forgotten link does not stay open for ever.
LIFETIME_DAYS = (1, 7, 30)
MAX_VIDEOS_PER_LINK = 50


class ShareLink(models.Model):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="share_links"
    )
    generations = models.ManyToManyField("generations.Generation", related_name="share_links")
    show_prompt = models.BooleanField(default=False)
    prefix = models.CharField(max_length=16, unique=True)
    secret_sha256 = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    open_count = models.PositiveIntegerField(default=0)
    last_opened_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "revoked_at", "expires_at"])]

    def __str__(self) -> str:
        return f"Share link {self.prefix}… of {self.project_id}"

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or timezone.now())

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.is_expired():
            return "expired"
        return "active"
