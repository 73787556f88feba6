"""/metrics: who may read it, and what it shows moving while generations run for real."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.core.test_settings import start_django
from workspace.billing.models import Budget, Scope
from workspace.generations import submission
from workspace.generations.models import Generation
from workspace.providers.call_counts import ChannelCallCounter, provider_call_counts
from workspace.providers.errors import ErrorClass, ProviderError
from workspace.providers.http import ProviderHTTP

TOKEN = "m" * 40


def scrape(client, token: str = TOKEN) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[no-untyped-def]
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


# --- Who may read it --------------------------------------------------------------------------


@pytest.mark.django_db
def test_not_configured_is_not_found(client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.REELHOUSE_METRICS_TOKEN = None
    settings.REELHOUSE_METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


@pytest.mark.django_db
def test_the_token_is_required_and_checked(client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.REELHOUSE_METRICS_TOKEN = TOKEN
    settings.REELHOUSE_METRICS_ALLOWED_NETWORKS = []
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + "x" * 40).status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    assert b"reelhouse_queue_depth" not in missing.content
    ok = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_HOST="10.0.0.9")
    assert ok.status_code == 200
    assert b"reelhouse_metrics_section_up" in ok.content


@pytest.mark.django_db
def test_the_network_setting_admits_only_its_addresses(client, settings) -> None:  # type: ignore[no-untyped-def]
    import ipaddress

    settings.REELHOUSE_METRICS_TOKEN = None
    settings.REELHOUSE_METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.20.0.0/16")]
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.21.3.4").status_code == 404
    # Both set: the address and the token.
    settings.REELHOUSE_METRICS_TOKEN = TOKEN
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 401
    assert (
        client.get(
            "/metrics", REMOTE_ADDR="10.21.3.4", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
        ).status_code
        == 404
    )
    # Behind one trusted proxy, the address the proxy saw counts, not the proxy's own.
    settings.REELHOUSE_PROXY_COUNT = 1
    allowed = client.get(
        "/metrics",
        REMOTE_ADDR="192.168.1.1",
        HTTP_X_FORWARDED_FOR="10.21.0.1, 10.20.0.5",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )
    assert allowed.status_code == 200


@pytest.mark.parametrize(
    "env",
    [
        {"REELHOUSE_METRICS_TOKEN": "too-short"},
        {"REELHOUSE_METRICS_TOKEN": "a" * 40 + " spaced"},
        {"REELHOUSE_METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,not-a-network"},
        {"REELHOUSE_METRICS_ALLOWED_NETWORKS": "10.0.0.1/8"},  # host bits set: a typo?
        {"REELHOUSE_LOG_FORMAT": "xml"},
        {"REELHOUSE_HEALTH_WORKER_SEEN_SECONDS": "1"},
    ],
)
def test_bad_settings_stop_the_process_naming_the_variable(tmp_path, env) -> None:  # type: ignore[no-untyped-def]
    result = start_django(tmp_path, **env)
    assert result.returncode != 0
    [name] = env
    assert name in result.stderr


# --- Counting provider calls ------------------------------------------------------------------


def test_calls_are_counted_by_outcome_and_error_class(redis_conn) -> None:  # type: ignore[no-untyped-def]
    answers = iter([httpx.Response(200, json={}), httpx.Response(503), httpx.Response(200)])

    def classify(response: httpx.Response) -> ProviderError:
        return ProviderError(ErrorClass.OVERLOADED, "busy")

    http = ProviderHTTP(
        base_url="https://provider.example/v1",
        headers={},
        secret="",
        classify=classify,
        connect_timeout=1,
        read_timeout=1,
        transport=httpx.MockTransport(lambda request: next(answers)),
        counter=ChannelCallCounter(redis_conn, channel_id=7),
    )
    http.request("GET", "videos/1")
    with pytest.raises(ProviderError):
        http.request("GET", "videos/1")
    http.request("GET", "videos/1")
    counts = {(c.channel_id, c.outcome, c.error_class): c.calls for c in provider_call_counts(redis_conn)}
    assert counts == {(7, "ok", ""): 2, (7, "error", "overloaded"): 1}


# --- Moving during a run ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_metrics_move_during_a_simulated_run(  # type: ignore[no-untyped-def]
    client, settings, project, teammate, channel, simulator, run_workers
) -> None:
    settings.REELHOUSE_METRICS_TOKEN = TOKEN
    Budget.objects.create(scope=Scope.ORGANISATION, limit_cents=1_000_000)
    before = scrape(client)
    assert value(before, "reelhouse_queue_depth", channel="openai") == 0
    assert total(before, "reelhouse_provider_calls_total") == 0
    assert value(before, "reelhouse_render_seconds_gcount", channel="openai") == 0

    generations = [
        submission.generation_submit(
            project=project, user=teammate, prompt=f"A lighthouse in fog {n}",
            model="sora-2", size="1280x720", seconds=4,
        )
        for n in range(2)
    ]
    queued = scrape(client)
    assert value(queued, "reelhouse_queue_depth", channel="openai") == 2
    assert value(queued, "reelhouse_generations_active", channel="openai", status="queued") == 2
    budget_labels = {"scope": "organisation", "member": ""}
    assert total(queued, "reelhouse_budget_reserved_cents", **budget_labels) > 0
    assert total(queued, "reelhouse_budget_limit_cents", **budget_labels) == 1_000_000

    run_workers(lambda: all(Generation.objects.get(pk=g.pk).is_terminal for g in generations))
    assert {Generation.objects.get(pk=g.pk).status for g in generations} == {"completed"}

    after = scrape(client)
    assert value(after, "reelhouse_queue_depth", channel="openai") == 0
    assert value(after, "reelhouse_in_flight", channel="openai") == 0
    # Two creates, their status checks and three files each, all answered.
    ok_calls = value(after, "reelhouse_provider_calls_total", channel="openai", outcome="ok", error_class="")
    assert ok_calls >= 2 * (1 + 1 + 3)
    assert value(after, "reelhouse_render_seconds_gcount", channel="openai") == 2
    assert value(after, "reelhouse_render_seconds_bucket", channel="openai", le="+Inf") == 2
    assert value(after, "reelhouse_ready_to_stored_seconds_gcount", channel="openai") == 2
    assert total(after, "reelhouse_budget_spent_cents", **budget_labels) > 0
    assert total(after, "reelhouse_budget_reserved_cents", **budget_labels) == 0
    assert value(after, "reelhouse_channel_limit", channel="openai", limit="requests_per_minute") == 60_000
    assert value(after, "reelhouse_channel_halted", channel="openai") == 0
    for section in ("generations", "channels", "limiter", "provider_calls", "latency", "budgets", "workers"):
        assert value(after, "reelhouse_metrics_section_up", section=section) == 1, section


@pytest.mark.django_db
def test_a_section_that_fails_is_reported_and_the_rest_still_answer(client, settings, channel) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.REELHOUSE_METRICS_TOKEN = TOKEN
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    samples = scrape(client)
    assert value(samples, "reelhouse_metrics_section_up", section="generations") == 1
    assert value(samples, "reelhouse_metrics_section_up", section="limiter") == 0
    assert value(samples, "reelhouse_metrics_section_up", section="workers") == 0
    assert ("reelhouse_queue_depth", (("channel", "openai"),)) in samples
