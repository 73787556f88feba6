"""Channel keys in the admin: write-only, encrypted at rest, never on a page; the check-key action."""

import logging

from django.urls import reverse

from workspace.providers.models import Channel
from workspace.providers.services import channel_check_key

from .channel_form import channel_admin_change as change

KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


def test_a_key_is_write_only_and_encrypted(admin_client, channel, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    answer = change(admin_client, channel, new_api_key=KEY)
    assert answer.status_code == 302
    stored = Channel.objects.get(pk=channel.pk)
    assert KEY not in stored.api_key_encrypted  # encrypted at rest
    assert stored.api_key() == KEY
    assert stored.api_key_hint == "sk-…6789"
    for url in (
        reverse("admin:providers_channel_change", args=[channel.pk]),
        reverse("admin:providers_channel_changelist"),
    ):
        page = admin_client.get(url).content.decode()
        assert KEY not in page
        assert stored.api_key_encrypted not in page
    assert KEY not in caplog.text
    # Leaving the field blank keeps the key; clearing forgets it.
    change(admin_client, Channel.objects.get(pk=channel.pk))
    assert Channel.objects.get(pk=channel.pk).api_key() == KEY
    change(admin_client, Channel.objects.get(pk=channel.pk), clear_api_key="on")
    assert Channel.objects.get(pk=channel.pk).api_key_encrypted == ""


def test_check_key_says_what_the_provider_said(channel, simulator) -> None:  # type: ignore[no-untyped-def]
    assert channel_check_key(channel=channel).verdict == "valid"
    simulator.update_config(api_keys=["something-else-entirely"])
    assert channel_check_key(channel=channel).verdict == "invalid key"
    simulator.update_config(api_keys=None, fail_5xx_rate=1.0)
    assert channel_check_key(channel=channel).verdict == "provider trouble"


def test_the_check_key_action_reports_in_the_admin(admin_client, channel, simulator) -> None:  # type: ignore[no-untyped-def]
    answer = admin_client.post(
        reverse("admin:providers_channel_changelist"),
        {"action": "check_key", "_selected_action": [channel.pk]},
        follow=True,
    )
    assert "valid. The key works with the provider simulator." in answer.content.decode()


def test_the_channel_page_says_which_limit_binds_and_how_to_choose_the_cap(admin_client, channel, project, teammate) -> None:  # type: ignore[no-untyped-def]
    from workspace.generations.models import Generation, Status
    from workspace.generations.submission import generation_submit
    from workspace.providers.services import limiter_for_channel

    url = reverse("admin:providers_channel_change", args=[channel.pk])
    page = admin_client.get(url).content.decode()
    assert "Limit that binds now" in page
    assert "Nothing: no work waiting" in page
    assert "the provider&#x27;s own concurrency" in page or "the provider's own concurrency" in page
    channel.max_in_flight = 1
    channel.save()
    first, _ = (
        generation_submit(project=project, user=teammate, model="sora-2", prompt=f"p{n}", size="1280x720", seconds=4)
        for n in range(2)
    )
    assert "Requests per minute: 2 queued" in admin_client.get(url).content.decode()
    Generation.objects.filter(pk=first.pk).update(status=Status.IN_PROGRESS)
    assert "In-flight cap: 1 of 1 generating" in admin_client.get(url).content.decode()
    limiter_for_channel(channel=channel).pushback(60)
    assert "Provider pause" in admin_client.get(url).content.decode()
