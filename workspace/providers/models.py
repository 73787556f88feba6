from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models

from workspace.providers.addresses import parse_private_hosts
from workspace.providers.catalog import Catalog
from workspace.providers.registry import DEFAULT_KIND, provider, provider_choices
from workspace.providers.spec import ProviderSpec
from workspace.providers.validators import key_env_problem, validate_key_env_name


def validate_private_output_hosts(value: str) -> None:
    try:
        parse_private_hosts(value)
    except ValueError as error:
        raise ValidationError(str(error)) from None


SIMULATOR_KEY = "simulator-key"
# Real keys are far shorter (fal's key_id:key_secret is about 100 characters).
# A Google service account's JSON key file (the Agent Platform's key) is about 2.4 KB.
API_KEY_MAX_LENGTH = 4096


@dataclass(frozen=True)
class ChannelConnection:
    base_url: str
    api_key: str
    simulated: bool


class Channel(models.Model):
    """One provider account (one official key) that the organisation's work runs through."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    # The provider's kind (registry.py). The choices are a callable, so a new provider needs
    # no migration; the column keeps its first name.
    protocol = models.CharField(
        "provider", max_length=30, choices=provider_choices, default=DEFAULT_KIND
    )
    base_url = models.URLField(
        blank=True,
        help_text="Leave blank to use the provider's environment variable or official address.",
    )
    api_key_env = models.CharField(
        max_length=80,
        default="OPENAI_API_KEY",
        validators=[validate_key_env_name],
        help_text=(
            "Name of the environment variable holding the key, ending in _KEY, _SECRET or "
            "_TOKEN (never one of Reelhouse's own settings). When it is unset, this channel "
            "talks to the built-in provider simulator."
        ),
    )
    # A key entered in the admin, encrypted at rest (secrets.py); it wins over api_key_env.
    api_key_encrypted = models.TextField(
        blank=True,
        editable=False,
        max_length=6000,  # a Fernet token of a key of at most API_KEY_MAX_LENGTH characters
        validators=[MaxLengthValidator(6000)],
    )
    api_key_hint = models.CharField(max_length=20, blank=True, editable=False)
    private_output_hosts = models.CharField(
        max_length=1000,
        blank=True,
        validators=[validate_private_output_hosts],
        help_text=(
            "Host names, IP addresses or CIDR ranges (comma- or space-separated) that output "
            "files may be fetched from even though they are private: for self-hosted gateways "
            "whose files live on a private network. Files on the base URL's own host and port "
            "are always allowed; everything else must be a public address."
        ),
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # Set by save(): the stored key was forgotten because the channel now points elsewhere
    # (and the audit log's note says so).
    key_cleared = False
    audit_note = ""

    # Limits, enforced for every worker on every machine through Redis (see limiter.py).
    requests_per_minute = models.PositiveIntegerField(
        default=50,
        help_text="Every call to the provider counts: creates, status checks, downloads, retries.",
    )
    creates_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=(
            "Only for providers that count job creation separately: a separate limit for "
            "creates, and then the limit above covers status checks and downloads alone."
        ),
    )
    max_in_flight = models.PositiveIntegerField(
        default=20, help_text="Generations running at the provider at once, for the whole team."
    )
    member_max_in_flight = models.PositiveIntegerField(
        default=5, help_text="Generations one member may have running at the provider at once."
    )
    member_max_queued = models.PositiveIntegerField(
        default=200, help_text="Generations one member may have waiting in the queue."
    )
    max_takes = models.PositiveSmallIntegerField(
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(8)],
        help_text="The most takes (variations) one request may ask for, 1 to 8.",
    )
    # Set when the provider refused the key or the account's credit: nothing more is sent until
    # an admin resumes the channel. Queued work waits; it does not fail.
    halted_at = models.DateTimeField(null=True, blank=True)
    # Written by code (channel_halt), truncated to this on write.
    halted_reason = models.TextField(
        blank=True, max_length=2000, validators=[MaxLengthValidator(2000)]
    )
    webhook_secret_env = models.CharField(
        max_length=80,
        blank=True,
        default="OPENAI_WEBHOOK_SECRET",
        validators=[validate_key_env_name],
        help_text=(
            "Environment variable holding the provider's webhook signing secret (whsec_…); "
            "named like a key variable."
        ),
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.audit_note = ""
        self.key_cleared = self._forget_key_if_moved(kwargs.get("update_fields"))
        if self.key_cleared and kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {
                *kwargs["update_fields"],
                "api_key_encrypted",
                "api_key_hint",
            }
        super().save(*args, **kwargs)

    def _forget_key_if_moved(self, update_fields: Any) -> bool:
        """Forget the stored key when the channel now points elsewhere, unless a key was
        entered with the change; True when it did.

        The stored key was entered for one provider at one address: a new base URL or protocol
        would otherwise send it, unseen, wherever the editor pointed the channel.
        """
        if self.pk is None or self._state.adding or not self.api_key_encrypted:
            return False
        if update_fields is not None and not {"base_url", "protocol"} & set(update_fields):
            return False
        before = (
            Channel.objects.filter(pk=self.pk)
            .values("base_url", "protocol", "api_key_encrypted")
            .first()
        )
        if before is None or before["api_key_encrypted"] != self.api_key_encrypted:
            return False  # no stored row, or a new key comes with this change
        if (before["base_url"], before["protocol"]) == (self.base_url, self.protocol):
            return False
        self.set_api_key("")
        moved = "base URL" if before["base_url"] != self.base_url else "protocol"
        self.audit_note = f"The stored key was forgotten because the {moved} changed."
        return True

    @property
    def provider(self) -> ProviderSpec:
        """Everything known about the channel's provider; UnknownProvider for a stray kind."""
        return provider(self.protocol)

    @property
    def catalog(self) -> Catalog:
        return self.provider.catalog

    def connection(self) -> ChannelConnection:
        """Where to send requests and with which key; the simulator when no key is set."""
        spec = self.provider
        api_key = self.api_key()
        if not api_key:
            base = str(settings.SIMULATOR_URL).rstrip("/")
            return ChannelConnection(
                base_url=base + spec.simulator_path, api_key=SIMULATOR_KEY, simulated=True
            )
        base_url = provider_base_url(spec, self.base_url)
        return ChannelConnection(base_url=base_url, api_key=api_key, simulated=False)

    def api_key(self) -> str:
        """The key to use: the one stored in the admin, else the environment variable's."""
        if self.api_key_encrypted:
            from workspace.providers.secrets import decrypt

            return decrypt(self.api_key_encrypted)
        return _env_key(self.api_key_env)

    def set_api_key(self, key: str) -> None:
        from workspace.providers.secrets import encrypt, mask

        key = key.strip()
        self.api_key_encrypted = encrypt(key) if key else ""
        self.api_key_hint = (self.provider.adapter.key_label(key) or mask(key)) if key else ""

    @property
    def key_source(self) -> str:
        """Where the key comes from, in words an admin reads (never the key itself)."""
        if self.api_key_encrypted:
            return f"stored in Reelhouse ({self.api_key_hint})"
        if key_env_problem(self.api_key_env):
            return f"none ({self.api_key_env} may not hold a key): uses the provider simulator"
        if _env_key(self.api_key_env):
            return f"environment variable {self.api_key_env}"
        return f"none ({self.api_key_env} is unset): uses the provider simulator"

    def webhook_secret(self) -> str | None:
        """The webhook signing secret; None when the provider sends no webhooks or none is set."""
        if not self.webhook_secret_env or not self.provider.webhooks:
            return None
        return _env_key(self.webhook_secret_env) or None

    @property
    def webhooks_enabled(self) -> bool:
        return self.webhook_secret() is not None

    @property
    def is_simulated(self) -> bool:
        return self.connection().simulated


def provider_base_url(spec: ProviderSpec, base_url: str = "") -> str:
    """Where a channel of this provider sends its key: its own base URL, else the SDK's
    environment variable, else the provider's official address."""
    return base_url or os.environ.get(spec.base_url_env, "").strip() or spec.official_base_url


def _env_key(name: str) -> str:
    """The value of a key variable; never of a name the rule refuses.

    The validator stops such names at every form and ``full_clean``; this stops a row written
    around them (an older row, ``QuerySet.update``, a shell) from reading one all the same.
    """
    if key_env_problem(name):
        return ""
    return os.environ.get(name, "").strip()


class WebhookDelivery(models.Model):
    """One accepted webhook, kept so a redelivery of the same ``webhook-id`` is ignored."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    webhook_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=80)
    provider_job_id = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "webhook_id"], name="one_delivery_per_id")
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.webhook_id}"


class FailoverRoute(models.Model):
    """Equivalent models on different channels, in order of preference.

    When a channel is halted or its circuit is open, new work for a model in a route goes to the
    first available later step whose model can make the same size and length; work a provider
    has already accepted stays where it is.
    """

    name = models.CharField(max_length=80, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FailoverStep(models.Model):
    route = models.ForeignKey(FailoverRoute, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    model = models.CharField(max_length=80)

    class Meta:
        ordering = ["route_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["route", "position"], name="one_step_per_position"),
            models.UniqueConstraint(
                fields=["route", "channel", "model"], name="one_step_per_channel_model"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.channel} / {self.model}"
