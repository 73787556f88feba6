"""The two records every layer writes: notifications for a person and the audit log.

They live in ``core`` because code at every level writes them (``admins_notify`` from workers
and providers, budget warnings from billing, the audit signals for budgets, prices, channels
and memberships) and ``core`` is the one app everything may import. Neither refers to a model
above ``core``: a notification points at its page by URL, an audit event at its target by
type, id and description, so deleting the target never rewrites the log.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

NOTIFICATION_MESSAGE_MAX_LENGTH = 4000


class Notification(models.Model):
    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    title = models.CharField(max_length=200)
    # Written by code (admins_notify, budget warnings), truncated to this on write.
    message = models.TextField(
        blank=True,
        max_length=NOTIFICATION_MESSAGE_MAX_LENGTH,
        validators=[MaxLengthValidator(NOTIFICATION_MESSAGE_MAX_LENGTH)],
    )
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return self.title


class AuditEvent(models.Model):
    """Who changed which budget, price, channel (including key names) or membership, and how.

    Channels name the environment variables that hold keys, never the keys, so the log records
    those names only.
    """

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        CHANGED = "changed", "Changed"
        DELETED = "deleted", "Deleted"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=40)
    target_repr = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.actor_name or 'system'} {self.action} {self.target_type} {self.target_repr}"

    @classmethod
    def record(
        cls,
        *,
        actor: AbstractBaseUser | AnonymousUser | None,
        action: str,
        target_type: str,
        target_id: object,
        target_repr: str,
        changes: dict[str, Any],
        actor_name: str = "",
        created_at: datetime | None = None,
    ) -> AuditEvent:
        """Write one entry: ``actor`` None is the system (``actor_name`` may say which part);
        the target's description is cut to fit."""
        person = actor if actor is not None and actor.is_authenticated else None
        return cls.objects.create(
            actor_id=person.pk if person is not None else None,
            actor_name=person.get_username() if person is not None else actor_name,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            target_repr=target_repr[:200],
            changes=changes,
            created_at=created_at or timezone.now(),
        )
