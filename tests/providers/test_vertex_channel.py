"""An Agent Platform (Vertex AI) channel: the service account's key file as its key (admin form,
environment variable), what pages show of it, the key check, and the simulator without a key."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.providers.adapter_helpers import wait
from tests.providers.vertex_keys import CLIENT_EMAIL, key_file
from workspace.providers.adapters.base import JobStatus, VideoRequest
from workspace.providers.integrations.vertex.adapter import VertexVeoAdapter
from workspace.providers.integrations.vertex.credentials import TOKENS
from workspace.providers.models import Channel
from workspace.providers.services import adapter_for_channel, channel_check_key

from .channel_form import channel_admin_change as change

KEY_FILE = key_file()
REQUEST = VideoRequest(model="veo-3.1-generate-001", prompt="a kite", size="1280x720", seconds=4)


@pytest.fixture(autouse=True)
def _no_cached_tokens() -> Iterator[None]:
    TOKENS.clear()
    yield
    TOKENS.clear()


@pytest.fixture
def vertex_channel(db) -> Channel:  # type: ignore[no-untyped-def]
    return Channel.objects.create(slug="vertex", name="Veo on Vertex", protocol="vertex",
                                  api_key_env="GOOGLE_SERVICE_ACCOUNT_KEY")


def test_the_key_file_is_accepted_write_only_and_labelled_by_its_key_id(  # type: ignore[no-untyped-def]
    admin_client, vertex_channel, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = change(admin_client, vertex_channel, new_api_key=KEY_FILE)
    assert answer.status_code == 302, answer.content.decode()[:2000]
    stored = Channel.objects.get(pk=vertex_channel.pk)
    assert stored.api_key() == KEY_FILE.strip()
    assert stored.api_key_hint == "key 0123…4567"
    page = admin_client.get(f"/admin/providers/channel/{stored.pk}/change/").content.decode()
    assert "PRIVATE KEY" not in page and "PRIVATE KEY" not in caplog.text


@pytest.mark.parametrize(
    ("key", "problem"),
    [('{"type": "authorized_user", "client_id": "x"}', "not a service-account key file"),
     ('{"type": "service_account", "private_key": "x", "client_email": "a@b", '
      '"private_key_id": "k", "project_id": "p"}', "not an unencrypted PEM key"),
     ("{not json at all}", "not valid JSON")],
)
def test_a_malformed_key_file_is_refused_by_the_form(admin_client, vertex_channel, key,  # type: ignore[no-untyped-def]
                                                     problem) -> None:
    answer = change(admin_client, vertex_channel, new_api_key=key)
    assert answer.status_code == 200 and problem in answer.content.decode()
    assert Channel.objects.get(pk=vertex_channel.pk).api_key_encrypted == ""


def test_without_a_key_the_channel_uses_the_simulator_in_express_mode(  # type: ignore[no-untyped-def]
    vertex_channel, simulator
) -> None:
    assert vertex_channel.is_simulated
    adapter = adapter_for_channel(channel=vertex_channel)
    assert isinstance(adapter, VertexVeoAdapter)
    try:
        job = adapter.create(REQUEST)
        assert wait(adapter, job.id).status is JobStatus.COMPLETED
    finally:
        adapter.close()
    check = channel_check_key(channel=vertex_channel)
    assert check.verdict == "valid" and "simulator" in check.message


def test_the_key_check_exchanges_the_key_file_for_a_token(  # type: ignore[no-untyped-def]
    vertex_channel, simulator, monkeypatch
) -> None:
    monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT_KEY", KEY_FILE)
    vertex_channel.base_url = simulator.url + "/vertex"
    vertex_channel.save()
    simulator.update_config(api_keys=[CLIENT_EMAIL])
    assert channel_check_key(channel=vertex_channel).verdict == "valid"
    assert simulator.routes["/vertex"].tokens_issued == 1  # type: ignore[attr-defined]
    TOKENS.clear()
    simulator.update_config(api_keys=["someone-else@example.iam.gserviceaccount.com"])
    check = channel_check_key(channel=vertex_channel)
    assert check.verdict == "invalid key" and "invalid_grant" in check.message


def test_a_keyed_channel_goes_to_the_regional_endpoint_or_the_sdk_variable(  # type: ignore[no-untyped-def]
    vertex_channel, monkeypatch
) -> None:
    monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT_KEY", KEY_FILE)
    assert vertex_channel.connection().base_url == "https://us-central1-aiplatform.googleapis.com"
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", "https://europe-west4-aiplatform.googleapis.com")
    assert vertex_channel.connection().base_url == (
        "https://europe-west4-aiplatform.googleapis.com")


def test_the_api_key_gemini_surface_is_kept_for_existing_channels_only(admin_client, db) -> None:  # type: ignore[no-untyped-def]
    from django.urls import reverse

    data = {"name": "Veo by key", "slug": "veo-key", "protocol": "gemini", "base_url": "",
            "is_active": "on", "api_key_env": "GEMINI_API_KEY", "requests_per_minute": 50,
            "creates_per_minute": "", "max_in_flight": 20, "member_max_in_flight": 5,
            "member_max_queued": 20, "max_takes": 4, "webhook_secret_env": ""}
    answer = admin_client.post(reverse("admin:providers_channel_add"), data)
    assert answer.status_code == 200
    assert "kept only for the channels that already use it" in answer.content.decode()
    assert not Channel.objects.filter(slug="veo-key").exists()
    # A channel that already speaks it keeps working and can still be edited.
    existing = Channel.objects.create(slug="gemini", name="Gemini", protocol="gemini",
                                      api_key_env="GEMINI_API_KEY")
    assert change(admin_client, existing, name="Gemini (old)").status_code == 302
    assert Channel.objects.get(pk=existing.pk).name == "Gemini (old)"
    # Nor may another channel switch to it.
    other = Channel.objects.create(slug="other", name="Other", protocol="vertex",
                                   api_key_env="GOOGLE_SERVICE_ACCOUNT_KEY")
    assert change(admin_client, other, protocol="gemini").status_code == 200
