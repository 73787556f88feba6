"""A channel's key goes only where it was meant to: key variable names follow a rule that no
Reelhouse setting can pass, and moving a channel forgets its stored key or asks to confirm."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from workspace.core.models import AuditEvent
from workspace.providers.models import Channel
from workspace.providers.registry import PROVIDERS
from workspace.providers.validators import key_env_problem

from .channel_form import channel_admin_change

KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
OTHER_KEY = "sk-proj-zyxwvutsrqponmlkjihgfedcba9876543210"
OWN_SETTINGS = [
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "REELHOUSE_KEY_ENCRYPTION_KEY",
    "REELHOUSE_ANYTHING_KEY",
    "DJANGO_SUPERUSER_PASSWORD",
    "DJANGO_SECRET_KEY",
    "EMAIL_HOST_PASSWORD",
    "AWS_SECRET_ACCESS_KEY",
]


def change(admin_client, channel: Channel, **fields):  # type: ignore[no-untyped-def]
    return channel_admin_change(admin_client, channel, follow=True, **fields)


@pytest.mark.parametrize(
    "name",
    # Every provider SDK's own key variable must be accepted, plus other conventional names.
    [
        *(spec.api_key_env for spec in PROVIDERS.values()),
        "GOOGLE_API_KEY",
        "LUMA_AGENTS_API_KEY",
        "OPENAI_WEBHOOK_SECRET",
        "GATEWAY_B_TOKEN",
    ],
)
def test_provider_key_names_pass(name: str) -> None:
    assert key_env_problem(name) is None


@pytest.mark.parametrize(
    "name", [*OWN_SETTINGS, "openai_api_key", "OPENAI_BASE_URL", "PATH", "HOME", "K", "1_KEY"]
)
def test_other_names_are_refused(name: str) -> None:
    assert key_env_problem(name)


@pytest.mark.parametrize("name", OWN_SETTINGS)
@pytest.mark.parametrize("field", ["api_key_env", "webhook_secret_env"])
def test_full_clean_refuses_reelhouse_settings(channel, name, field) -> None:  # type: ignore[no-untyped-def]
    setattr(channel, field, name)
    with pytest.raises(ValidationError) as caught:
        channel.full_clean()
    assert field in caught.value.message_dict


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "REELHOUSE_KEY_ENCRYPTION_KEY"])
def test_the_admin_form_refuses_reelhouse_settings(admin_client, channel, name, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(name, "an-installation-secret-0123456789")
    answer = change(admin_client, channel, api_key_env=name)
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "one of Reelhouse&#x27;s own settings" in page
    assert "This would send the key" not in page  # refused outright, not up for confirmation
    assert Channel.objects.get(pk=channel.pk).api_key_env == "OPENAI_API_KEY"
    assert not AuditEvent.objects.filter(action="changed", target_type="channel").exists()


def test_a_row_written_around_the_rule_still_never_reads_the_setting(channel, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REELHOUSE_KEY_ENCRYPTION_KEY", "the-installation-secret-000000")
    Channel.objects.filter(pk=channel.pk).update(
        api_key_env="SECRET_KEY", webhook_secret_env="REELHOUSE_KEY_ENCRYPTION_KEY"
    )
    monkeypatch.setenv("SECRET_KEY", "django-insecure-but-secret-0123456789")
    stored = Channel.objects.get(pk=channel.pk)
    assert stored.api_key() == ""
    assert stored.connection().simulated
    assert stored.webhook_secret() is None
    assert "may not hold a key" in stored.key_source


def test_changing_the_base_url_forgets_the_stored_key_and_says_so(admin_client, channel) -> None:  # type: ignore[no-untyped-def]
    change(admin_client, channel, new_api_key=KEY)
    assert Channel.objects.get(pk=channel.pk).api_key() == KEY
    answer = change(
        admin_client, Channel.objects.get(pk=channel.pk), base_url="https://gateway.example/v1"
    )
    page = answer.content.decode()
    assert "the stored key was cleared because the base URL changed; enter it again" in page
    moved = Channel.objects.get(pk=channel.pk)
    assert moved.base_url == "https://gateway.example/v1"
    assert moved.api_key_encrypted == "" and moved.api_key_hint == ""
    assert moved.connection().simulated  # nothing is sent to the new host
    event = AuditEvent.objects.filter(target_type="channel", action="changed").first()
    assert event is not None and event.actor_name == "root"
    assert event.changes["base_url"] == ["", "https://gateway.example/v1"]
    assert event.changes["api_key_encrypted"] == ["(a key is stored)", "(no key stored)"]
    assert "forgotten because the base URL changed" in event.changes["note"][1]
    assert KEY not in str(event.changes)


def test_changing_the_protocol_forgets_the_stored_key(admin_client, channel) -> None:  # type: ignore[no-untyped-def]
    change(admin_client, channel, new_api_key=KEY)
    answer = change(
        admin_client,
        Channel.objects.get(pk=channel.pk),
        protocol="runway",
        api_key_env="RUNWAYML_API_SECRET",
    )
    assert "cleared because the protocol changed" in answer.content.decode()
    assert Channel.objects.get(pk=channel.pk).api_key_encrypted == ""


def test_a_key_entered_with_the_move_is_kept(admin_client, channel) -> None:  # type: ignore[no-untyped-def]
    change(admin_client, channel, new_api_key=KEY)
    answer = change(
        admin_client,
        Channel.objects.get(pk=channel.pk),
        base_url="https://gateway.example/v1",
        new_api_key=OTHER_KEY,
    )
    assert "cleared" not in answer.content.decode()
    moved = Channel.objects.get(pk=channel.pk)
    assert moved.api_key() == OTHER_KEY
    assert moved.connection().base_url == "https://gateway.example/v1"


def test_other_changes_keep_the_stored_key(admin_client, channel) -> None:  # type: ignore[no-untyped-def]
    change(admin_client, channel, new_api_key=KEY)
    change(admin_client, Channel.objects.get(pk=channel.pk), requests_per_minute=30)
    assert Channel.objects.get(pk=channel.pk).api_key() == KEY


def test_a_move_outside_the_admin_forgets_the_key_too(channel) -> None:  # type: ignore[no-untyped-def]
    channel.set_api_key(KEY)
    channel.save()
    channel.base_url = "https://elsewhere.example/v1"
    channel.save(update_fields=["base_url"])
    assert channel.key_cleared
    assert Channel.objects.get(pk=channel.pk).api_key_encrypted == ""


def test_sending_an_environment_key_to_a_new_address_needs_confirming(
    admin_client, channel, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    answer = change(admin_client, channel, base_url="https://gateway.example/v1")
    page = answer.content.decode()
    assert (
        "This would send the key in OPENAI_API_KEY to https://gateway.example/v1. "
        "Type OPENAI_API_KEY here to allow it."
    ) in page
    assert Channel.objects.get(pk=channel.pk).base_url == ""
    # Naming another variable for the same address is a new destination for that key too.
    monkeypatch.setenv("OTHER_GATEWAY_KEY", OTHER_KEY)
    answer = change(admin_client, channel, api_key_env="OTHER_GATEWAY_KEY")
    assert "Type OTHER_GATEWAY_KEY here to allow it." in answer.content.decode()

    change(
        admin_client,
        channel,
        base_url="https://gateway.example/v1",
        confirm_key_env="OPENAI_API_KEY",
    )
    moved = Channel.objects.get(pk=channel.pk)
    assert moved.connection().base_url == "https://gateway.example/v1"
    event = AuditEvent.objects.filter(target_type="channel", action="changed").get()
    assert event.actor_name == "root"
    assert event.changes == {"base_url": ["", "https://gateway.example/v1"]}
    # Unchanged destination: no question asked.
    change(admin_client, moved, requests_per_minute=30)
    assert Channel.objects.get(pk=channel.pk).requests_per_minute == 30


def test_changing_the_key_variable_is_audited(admin_client, channel) -> None:  # type: ignore[no-untyped-def]
    change(admin_client, channel, api_key_env="GATEWAY_B_API_KEY")  # unset: nothing is sent
    event = AuditEvent.objects.filter(target_type="channel", action="changed").get()
    assert event.changes["api_key_env"] == ["OPENAI_API_KEY", "GATEWAY_B_API_KEY"]
