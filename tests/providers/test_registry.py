"""The provider registry: one spec per provider, and everything per provider derived from it."""

from __future__ import annotations

import dataclasses
import io
import logging
import subprocess
import sys
import types
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

from workspace.billing.policy import UNREGISTERED, failure_is_charged
from workspace.providers import registry
from workspace.providers.adapters.base import HTTPAdapter
from workspace.providers.apps import check_simulated_apis
from workspace.providers.errors import ErrorClass
from workspace.providers.integrations.openai_videos.adapter import OpenAIVideosAdapter
from workspace.providers.models import Channel
from workspace.providers.registry import (
    INTEGRATIONS,
    PROVIDERS,
    UnknownProvider,
    load,
    provider,
    provider_choices,
    provider_env_names,
)
from workspace.providers.services import adapter_for_channel, channel_files_per_video
from workspace.providers.spec import BillingPolicy, ProviderSpec, SpecError
from workspace.simulator.server import SimulatorServer, simulated_api_class

REPO = Path(__file__).resolve().parents[2]
OPENAI = provider("openai_videos")


def spec_fields(**changes: Any) -> dict[str, Any]:
    """A valid spec's fields (OpenAI's, renamed so nothing clashes), with ``changes``."""
    fields = {field.name: getattr(OPENAI, field.name) for field in dataclasses.fields(OPENAI)}
    return {**fields, "kind": "newcomer", "simulator_path": "/newcomer", **changes}


def test_the_registry_lists_every_integration_folder_once() -> None:
    assert tuple(PROVIDERS) == INTEGRATIONS
    folders = {
        path.name
        for path in (REPO / "workspace/providers/integrations").iterdir()
        if (path / "spec.py").exists()
    }
    assert folders == set(INTEGRATIONS), "a folder with a spec.py that is not registered"


def test_the_channel_choices_are_the_registry() -> None:
    field = Channel._meta.get_field("protocol")
    assert (
        list(field.choices)
        == provider_choices()
        == [(spec.kind, spec.label) for spec in PROVIDERS.values()]
    )
    assert field.default == registry.DEFAULT_KIND == INTEGRATIONS[0]


def test_adding_a_provider_needs_no_migration(monkeypatch: pytest.MonkeyPatch, db: None) -> None:
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    newcomer = ProviderSpec(**spec_fields())
    monkeypatch.setattr(
        registry, "PROVIDERS", MappingProxyType({**PROVIDERS, "newcomer": newcomer})
    )
    assert ("newcomer", newcomer.label) in Channel._meta.get_field("protocol").choices
    # The choices are named by reference in the migration, so this still finds nothing to do.
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.parametrize("kind", INTEGRATIONS)
def test_a_channel_is_wired_from_its_spec(kind: str, simulator, monkeypatch, db) -> None:  # type: ignore[no-untyped-def]
    spec = provider(kind)
    channel = Channel.objects.create(slug=kind, name=kind, protocol=kind, api_key_env="NEW_KEY")
    assert channel.provider is spec and channel.catalog is spec.catalog
    # No key: the simulator, under the path the spec names.
    assert channel.connection().base_url == simulator.url + spec.simulator_path
    assert channel_files_per_video(channel=channel) == len(spec.variants)
    adapter = adapter_for_channel(channel=channel)
    assert type(adapter) is spec.adapter
    adapter.close()
    # A key: the SDK's base-URL variable, else the official address.
    monkeypatch.setenv("NEW_KEY", "key-0123456789")
    assert channel.connection().base_url == spec.official_base_url
    monkeypatch.setenv(spec.base_url_env, "https://gateway.example/x")
    assert channel.connection().base_url == "https://gateway.example/x"


def test_only_providers_that_send_webhooks_accept_them(monkeypatch, db) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_WEBHOOK_SECRET", "whsec_c2VjcmV0")
    by_kind = {kind: Channel(slug=kind, protocol=kind) for kind in INTEGRATIONS}
    assert {kind: c.webhooks_enabled for kind, c in by_kind.items()} == {
        kind: provider(kind).webhooks for kind in INTEGRATIONS
    }
    assert by_kind["openai_videos"].webhooks_enabled and not by_kind["runway"].webhooks_enabled


def test_a_stray_kind_fails_loudly() -> None:
    with pytest.raises(UnknownProvider, match="No provider 'sora_classic' is registered"):
        provider("sora_classic")
    with pytest.raises(UnknownProvider):
        channel_files_per_video(channel=Channel(slug="x", protocol="sora_classic"))


def test_the_simulator_mounts_each_provider_where_its_spec_says(simulator: SimulatorServer) -> None:
    routes = simulator.routes
    assert set(routes) == {spec.simulator_path for spec in PROVIDERS.values()} | {"/cdn"}
    for spec in PROVIDERS.values():
        module, _, name = spec.simulator.partition(":")
        assert type(routes[spec.simulator_path]).__module__ == module
        assert type(routes[spec.simulator_path]).__name__ == name


def test_a_simulated_api_mounted_elsewhere_than_its_spec_says_is_refused() -> None:
    moved = ProviderSpec(**spec_fields(simulator_path="/elsewhere"))
    with pytest.raises(SpecError, match="serves '/v1', but the spec mounts it at '/elsewhere'"):
        simulated_api_class(moved)
    missing = ProviderSpec(**spec_fields(simulator="workspace.simulator.protocols.nothing:Api"))
    with pytest.raises(SpecError, match="cannot import"):
        simulated_api_class(missing)
    not_an_api = ProviderSpec(**spec_fields(simulator="workspace.simulator.core:SimClock"))
    with pytest.raises(SpecError, match="is not a SimulatedAPI"):
        simulated_api_class(not_an_api)


@pytest.mark.parametrize("kind", INTEGRATIONS)
def test_billing_reads_each_provider_policy_from_its_spec(kind: str) -> None:
    policy = provider(kind).billing
    for error_class in ErrorClass:
        for accepted in (False, True):
            expected = error_class.value in policy.charged_failures or (
                accepted and error_class.value in policy.charged_after_acceptance
            )
            assert (
                failure_is_charged(
                    kind=kind,
                    error_class=error_class.value,
                    provider_finished=False,
                    provider_accepted=accepted,
                )
                is expected
            ), (kind, error_class, accepted)


def test_an_unregistered_kind_is_billed_conservatively_and_logged(caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.ERROR, logger="workspace.billing.policy")
    for error_class in UNREGISTERED.charged_after_acceptance:
        assert failure_is_charged(
            kind="removed_provider",
            error_class=error_class,
            provider_finished=False,
            provider_accepted=True,
        )
    assert "no provider 'removed_provider' is registered" in caplog.text


@pytest.mark.parametrize(
    "missing",
    [
        "kind",
        "label",
        "adapter",
        "api_key_env",
        "base_url_env",
        "official_base_url",
        "billing",
        "simulator",
        "simulator_path",
    ],
)
def test_a_spec_missing_a_piece_cannot_be_built(missing: str) -> None:
    fields = spec_fields()
    del fields[missing]
    with pytest.raises(TypeError, match=missing):
        ProviderSpec(**fields)


class _Unfinished(HTTPAdapter):
    catalog = OPENAI.catalog
    classify = OpenAIVideosAdapter.classify

    def create(self, request):  # type: ignore[no-untyped-def]
        raise NotImplementedError


class _Unclassified(OpenAIVideosAdapter):
    classify = HTTPAdapter.classify


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"billing": None}, "billing must be a BillingPolicy"),
        ({"billing": {"charged_failures": frozenset()}}, "billing must be a BillingPolicy"),
        ({"label": " "}, "label must be a non-empty string"),
        ({"kind": "New-Provider"}, "kind must be"),
        ({"adapter": object}, "adapter must be an HTTPAdapter subclass"),
        ({"adapter": _Unfinished}, "_Unfinished does not implement download, retrieve"),
        ({"adapter": _Unclassified}, "_Unclassified does not set classify"),
        ({"api_key_env": "NEWCOMER_PASSWORD"}, "must end in _KEY, _SECRET or _TOKEN"),
        ({"base_url_env": "newcomer url"}, "is not an environment variable name"),
        ({"official_base_url": "http://api.example"}, "must be an https:// address"),
        ({"simulator": "NewcomerAPI"}, "must name 'package.module:Class'"),
        ({"simulator_path": "/cdn"}, "not one the simulator keeps"),
        ({"simulator_path": "newcomer"}, "must be like /name"),
    ],
)
def test_a_malformed_spec_is_refused_with_the_reason(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        ProviderSpec(**spec_fields(**change))


def test_a_policy_is_a_required_piece_of_every_spec() -> None:
    spec = ProviderSpec(**spec_fields(billing=BillingPolicy(charged_failures=frozenset())))
    assert spec.billing.charges_finished_renders


def _fake_integration(monkeypatch: pytest.MonkeyPatch, name: str, spec: object) -> None:
    module = types.ModuleType(f"workspace.providers.integrations.{name}.spec")
    module.SPEC = spec  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)


def test_the_registry_refuses_a_folder_without_a_usable_spec(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError, match="provider 'nowhere': no module"):
        load(["openai_videos", "nowhere"])
    _fake_integration(monkeypatch, "nospec", None)
    with pytest.raises(SpecError, match="SPEC must be a ProviderSpec"):
        load(["nospec"])
    _fake_integration(monkeypatch, "renamed", ProviderSpec(**spec_fields()))
    with pytest.raises(SpecError, match="its spec's kind is 'newcomer'"):
        load(["renamed"])
    with pytest.raises(SpecError, match="listed twice"):
        load(["runway", "runway"])


def test_the_registry_refuses_providers_that_clash(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Everything but kind and path is OpenAI's: the same adapter, so the same model ids.
    _fake_integration(monkeypatch, "newcomer", ProviderSpec(**spec_fields()))
    with pytest.raises(SpecError, match="share the adapter"):
        load(["openai_videos", "newcomer"])
    _fake_integration(monkeypatch, "newcomer", ProviderSpec(**spec_fields(simulator_path="/fal")))
    with pytest.raises(SpecError, match="share the simulator_path '/fal'"):
        load(["fal", "newcomer"])
    assert load(["newcomer"])["newcomer"].adapter is OpenAIVideosAdapter


def test_the_tests_clear_every_provider_variable() -> None:
    names = provider_env_names()
    assert {"OPENAI_API_KEY", "RUNWAYML_BASE_URL"} <= set(names)
    assert len(names) == 2 * len(PROVIDERS)


def test_the_admin_names_each_provider_and_its_variables(admin_client) -> None:  # type: ignore[no-untyped-def]
    page = admin_client.get(reverse("admin:providers_channel_add")).content.decode()
    for spec in PROVIDERS.values():
        assert f'<option value="{spec.kind}"' in page
        assert spec.api_key_env in page and spec.base_url_env in page


def test_the_simulator_and_registry_load_without_django() -> None:
    code = (
        "import sys, workspace.simulator.server, workspace.providers.registry as r; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'django imported'; "
        "print(','.join(r.PROVIDERS))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == ",".join(INTEGRATIONS)
    usage = subprocess.run(
        [sys.executable, "-m", "workspace.simulator", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    for spec in PROVIDERS.values():
        assert f"{spec.label} under {spec.simulator_path}" in " ".join(usage.stdout.split())


def test_a_wrong_simulator_pointer_fails_the_start_up_checks(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert check_simulated_apis() == []
    moved = dataclasses.replace(OPENAI, simulator_path="/v2")
    monkeypatch.setattr(
        "workspace.providers.registry.PROVIDERS", {**PROVIDERS, "openai_videos": moved}
    )
    [error] = check_simulated_apis()
    assert error.id == "providers.E001" and "mounts it at '/v2'" in error.msg
