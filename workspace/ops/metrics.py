"""Prometheus metrics, read from the shared state at scrape time.

Reelhouse runs as many processes on many machines (gunicorn workers, RQ workers, the
scheduler), and the truth lives in PostgreSQL and Redis: the generation rows, the limiter's and
the circuit's keys, the RQ registries, the budget counters and the provider call counts
(providers/call_counts.py). One collector reads them when scraped, so any web process on any
node gives the same answer and nothing is lost when a worker dies, with no multiprocess
directory to manage. Each section is read on its own: one that fails (Redis down, say) is
reported by ``reelhouse_metrics_section_up`` while the others still answer.

The metric names, labels and the alerts worth setting are listed in docs/operations.md.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta

import redis
from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from rq import Queue

from workspace.billing.models import BudgetCounter
from workspace.core.rq import DISPATCH_QUEUE, QUEUE_NAME, scheduler_heartbeat_age
from workspace.generations.models import Generation, Status
from workspace.ops.health import health_redis, live_workers
from workspace.providers.call_counts import provider_call_counts
from workspace.providers.circuit import ChannelCircuit
from workspace.providers.limiter import ChannelLimiter
from workspace.providers.models import Channel

logger = logging.getLogger(__name__)

IN_FLIGHT = (Status.SUBMITTING, Status.IN_PROGRESS, Status.DOWNLOADING)
# Upper bounds, in seconds, of the latency histograms' buckets.
RENDER_BUCKETS = (15, 30, 60, 90, 120, 180, 300, 600, 1200, 3600)
STORE_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900)
# Latencies come from generations created at most this long before the window opened: it keeps
# the query on the created_at index (a render held more than a day is left out).
CREATED_SLACK = timedelta(days=1)
# The latency histograms read at most this many recent generations per scrape.
LATENCY_ROWS = 20_000

CONTENT_TYPE = CONTENT_TYPE_LATEST


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


def _histogram(
    name: str,
    documentation: str,
    bounds: tuple[float, ...],
    samples: dict[str, list[float]],
) -> GaugeHistogramMetricFamily:
    family = GaugeHistogramMetricFamily(name, documentation, labels=["channel"])
    for channel, values in sorted(samples.items()):
        buckets = [
            (str(float(bound)), float(sum(1 for v in values if v <= bound))) for bound in bounds
        ]
        buckets.append(("+Inf", float(len(values))))
        family.add_metric([channel], buckets, sum(values))
    return family


class ReelhouseCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        sections: list[tuple[str, Callable[[Context], Iterable[Metric]]]] = [
            ("generations", _generations),
            ("channels", _channels),
            ("limiter", _limiter),
            ("provider_calls", _provider_calls),
            ("latency", _latency),
            ("budgets", _budgets),
            ("workers", _workers),
        ]
        up = _gauge(
            "reelhouse_metrics_section_up",
            "1 when this section of the metrics could be read at this scrape, 0 when it failed.",
            ["section"],
        )
        context = Context()
        try:
            for name, section in sections:
                try:
                    # Materialised here so a failure halfway never yields half a section.
                    metrics = list(section(context))
                except Exception:
                    logger.warning("metrics section %s could not be read", name, exc_info=True)
                    up.add_metric([name], 0)
                    continue
                up.add_metric([name], 1)
                yield from metrics
        finally:
            context.close()
        yield up


class Context:
    """What the sections share during one scrape: the channels and one Redis connection."""

    def __init__(self) -> None:
        self._channels: list[Channel] | None = None
        self._redis: redis.Redis | None = None

    @property
    def channels(self) -> list[Channel]:
        if self._channels is None:
            self._channels = list(Channel.objects.order_by("id"))
        return self._channels

    def slug(self, channel_id: int) -> str:
        return next((c.slug for c in self.channels if c.pk == channel_id), str(channel_id))

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            self._redis = health_redis()
        return self._redis

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()


def _generations(context: Context) -> Iterator[Metric]:
    rows = (
        Generation.objects.filter(status__in=[*IN_FLIGHT, Status.QUEUED, Status.HELD])
        .values_list("channel_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_channel: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for channel_id, status, n in rows:
        by_channel[channel_id][status] += n
    queued = _gauge(
        "reelhouse_queue_depth", "Generations queued, not yet sent to the provider.", ["channel"]
    )
    in_flight = _gauge(
        "reelhouse_in_flight",
        "Generations sent and not finished: submitting, rendering at the provider, or saving.",
        ["channel"],
    )
    active = _gauge(
        "reelhouse_generations_active", "Unfinished generations by state.", ["channel", "status"]
    )
    for channel in context.channels:
        counts = by_channel.get(channel.pk, {})
        queued.add_metric([channel.slug], counts.get(Status.QUEUED, 0))
        in_flight.add_metric([channel.slug], sum(counts.get(s, 0) for s in IN_FLIGHT))
        for status in (Status.QUEUED, Status.HELD, *IN_FLIGHT):
            active.add_metric([channel.slug, str(status)], counts.get(status, 0))
    yield from (queued, in_flight, active)


def _channels(context: Context) -> Iterator[Metric]:
    limits = _gauge(
        "reelhouse_channel_limit",
        "The channel's configured limits (requests_per_minute, creates_per_minute, "
        "max_in_flight).",
        ["channel", "limit"],
    )
    halted = _gauge(
        "reelhouse_channel_halted",
        "1 while the channel is halted (no credit, key refused) until an admin resumes it.",
        ["channel"],
    )
    circuit = _gauge(
        "reelhouse_channel_circuit_open",
        "1 while the channel's circuit breaker stops sending (provider failing), else 0.",
        ["channel"],
    )
    for channel in context.channels:
        limits.add_metric([channel.slug, "requests_per_minute"], channel.requests_per_minute)
        if channel.creates_per_minute:
            limits.add_metric([channel.slug, "creates_per_minute"], channel.creates_per_minute)
        limits.add_metric([channel.slug, "max_in_flight"], channel.max_in_flight)
        halted.add_metric([channel.slug], 1 if channel.halted_at else 0)
        state = ChannelCircuit(context.redis, channel_id=channel.pk).state()
        circuit.add_metric([channel.slug], 0 if state.state == "closed" else 1)
    yield from (limits, halted, circuit)


def _limiter(context: Context) -> Iterator[Metric]:
    wait = _gauge(
        "reelhouse_limiter_wait_seconds",
        "How far ahead the channel's next free request slot is: how long a call asking now "
        "would wait (bucket: all calls, or creates when the channel has a creates limit).",
        ["channel", "bucket"],
    )
    paused = _gauge(
        "reelhouse_limiter_paused_seconds",
        "Seconds left of a pause the provider asked for (429, Retry-After); 0 when none.",
        ["channel"],
    )
    for channel in context.channels:
        if not channel.is_active:
            continue
        limiter = ChannelLimiter(
            context.redis,
            channel_id=channel.pk,
            requests_per_minute=channel.requests_per_minute,
            creates_per_minute=channel.creates_per_minute,
            time_scale=settings.REELHOUSE_TIME_SCALE,
        )
        state = limiter.state()
        wait.add_metric([channel.slug, "all"], state.next_slot_at - state.now)
        if channel.creates_per_minute:
            wait.add_metric([channel.slug, "create"], state.next_create_slot_at - state.now)
        paused.add_metric(
            [channel.slug],
            0.0 if state.paused_until is None else max(0.0, state.paused_until - state.now),
        )
    yield from (wait, paused)


def _provider_calls(context: Context) -> Iterator[Metric]:
    calls = CounterMetricFamily(
        "reelhouse_provider_calls",
        "Calls that reached a provider (creates, status checks, downloads), by outcome and "
        "error class; counted in Redis, so they restart from zero if Redis loses its data.",
        labels=["channel", "outcome", "error_class"],
    )
    for count in sorted(
        provider_call_counts(context.redis),
        key=lambda c: (c.channel_id, c.outcome, c.error_class),
    ):
        calls.add_metric(
            [context.slug(count.channel_id), count.outcome, count.error_class], count.calls
        )
    yield calls


def _latency(context: Context) -> Iterator[Metric]:
    window = timedelta(seconds=settings.REELHOUSE_METRICS_WINDOW_SECONDS)
    since = timezone.now() - window
    rows = (
        Generation.objects.filter(
            status=Status.COMPLETED,
            created_at__gte=since - CREATED_SLACK,
            completed_at__gte=since,
        )
        .order_by("-created_at")
        .values_list("channel_id", "render_seconds", "provider_finished_at", "completed_at")[
            :LATENCY_ROWS
        ]
    )
    render: dict[str, list[float]] = defaultdict(list)
    stored: dict[str, list[float]] = defaultdict(list)
    for channel_id, render_seconds, provider_finished_at, completed_at in rows:
        slug = context.slug(channel_id)
        if render_seconds is not None:
            render[slug].append(render_seconds)
        if provider_finished_at is not None and completed_at is not None:
            stored[slug].append(max(0.0, (completed_at - provider_finished_at).total_seconds()))
    yield _histogram(
        "reelhouse_render_seconds",
        "How long the provider took to render, for generations completed within the window "
        "(REELHOUSE_METRICS_WINDOW_SECONDS); a gauge histogram: read it without rate().",
        RENDER_BUCKETS,
        render,
    )
    yield _histogram(
        "reelhouse_ready_to_stored_seconds",
        "From the provider finishing to the video stored and shown as ready, for generations "
        "completed within the window; a gauge histogram: read it without rate().",
        STORE_BUCKETS,
        stored,
    )


def _budgets(context: Context) -> Iterator[Metric]:
    now = timezone.now()
    counters = (
        BudgetCounter.objects.filter(budget__is_active=True, period_start__lte=now)
        .filter(Q(period_end__isnull=True) | Q(period_end__gt=now))
        .select_related("budget")
        .order_by("budget_id", "user_id")
    )
    labels = ["budget", "scope", "member"]
    spent = _gauge(
        "reelhouse_budget_spent_cents", "Spent in the budget's current period.", labels
    )
    reserved = _gauge(
        "reelhouse_budget_reserved_cents",
        "Reserved for generations not finished yet, in the current period.",
        labels,
    )
    limit = _gauge(
        "reelhouse_budget_limit_cents", "The budget's cap per period (budgets with one).", labels
    )
    for counter in counters:
        key = [str(counter.budget_id), counter.budget.scope, str(counter.user_id or "")]
        spent.add_metric(key, counter.spent_cents)
        reserved.add_metric(key, counter.reserved_cents)
        if counter.budget.limit_cents is not None:
            limit.add_metric(key, counter.budget.limit_cents)
    yield from (spent, reserved, limit)


def _workers(context: Context) -> Iterator[Metric]:
    workers = _gauge(
        "reelhouse_rq_workers",
        "RQ workers listening on the queue that beat lately or are in a job, by state "
        "(busy: running a job).",
        ["queue", "state"],
    )
    jobs = _gauge(
        "reelhouse_rq_jobs", "Jobs in the queue's registries.", ["queue", "registry"]
    )
    for name in (QUEUE_NAME, DISPATCH_QUEUE):
        queue = Queue(name, connection=context.redis)
        states: dict[str, int] = {"busy": 0, "idle": 0}
        for worker in live_workers(context.redis, name):
            states["busy" if worker.get_current_job_id() else "idle"] += 1
        for state, n in states.items():
            workers.add_metric([name, state], n)
        jobs.add_metric([name, "queued"], queue.count)
        jobs.add_metric([name, "started"], queue.started_job_registry.count)
        jobs.add_metric([name, "scheduled"], queue.scheduled_job_registry.count)
        jobs.add_metric([name, "failed"], queue.failed_job_registry.count)
    scheduler = _gauge(
        "reelhouse_scheduler_heartbeat_age_seconds",
        "Seconds since the recovery scheduler last looped (absent: it never ran or its "
        "heartbeat expired).",
        [],
    )
    age = scheduler_heartbeat_age(context.redis)
    if age is not None:
        scheduler.add_metric([], age)
    yield from (workers, jobs, scheduler)


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(ReelhouseCollector())


def metrics_text() -> bytes:
    return generate_latest(REGISTRY)
