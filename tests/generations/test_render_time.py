"""Render times are learned from the provider's own clock, and checks are planned from them."""

from __future__ import annotations

import time

import pytest

from workspace.generations.dispatch import channel_dispatch_once
from workspace.generations.following import generation_poll, poll_delay
from workspace.generations.models import Generation, Status
from workspace.generations.render_times import expected_render_seconds
from workspace.generations.submission import generation_submit
from workspace.providers.adapters.base import JobStatus, ProviderJob
from workspace.providers.services import limiter_for_channel

pytestmark = pytest.mark.django_db(transaction=True)

RENDER = 3.0  # seconds, at time scale 1: the provider's whole-second timestamps must resolve it


def test_learned_render_time_matches_the_provider_not_our_lag(
    project, channel, teammate, simulator, settings
) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(render_seconds=RENDER, time_scale=1.0)
    channel.max_in_flight = channel.member_max_in_flight = 60
    channel.save()
    generations = [
        generation_submit(
            project=project,
            user=teammate,
            model="sora-2",
            prompt=f"fixed length {n}",
            size="1280x720",
            seconds=4,
        )
        for n in range(50)
    ]
    limiter = limiter_for_channel(channel=channel)
    for _ in generations:
        assert channel_dispatch_once(channel=channel, limiter=limiter, max_wait=5) is not None
    # Every check comes late, as under a busy channel: two seconds after the provider finished.
    time.sleep(RENDER + 2.0)
    for generation in generations:
        generation_poll(generation_id=str(generation.pk))
    assert Generation.objects.filter(status=Status.COMPLETED).count() == 50
    learned = expected_render_seconds(channel_id=channel.pk, model="sora-2", seconds=4)
    assert learned is not None
    assert abs(learned - RENDER) <= 0.1 * RENDER
    # Another length of the same model is scaled from it until it has its own samples.
    longer = expected_render_seconds(channel_id=channel.pk, model="sora-2", seconds=8)
    assert longer is not None and abs(longer - 2 * RENDER) <= 0.2 * RENDER

    # The first check of the next job is planned just after its expected end, not before it.
    settings.REELHOUSE_DELAY_SCALE = 1.0
    fresh = generation_submit(
        project=project, user=teammate, model="sora-2", prompt="next", size="1280x720", seconds=4
    )
    assert channel_dispatch_once(channel=channel, limiter=limiter, max_wait=5) is not None
    fresh.refresh_from_db()
    queued = ProviderJob(id=fresh.provider_job_id or "", status=JobStatus.QUEUED, poll_after=1.0)
    delay = poll_delay(fresh, queued)
    assert RENDER <= delay <= RENDER + 0.7


def test_without_a_provider_completion_time_the_end_is_estimated_never_our_check_time(
    project, teammate
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from workspace.generations.following import _observed_finish

    generation = generation_submit(
        project=project, user=teammate, model="sora-2", prompt="p", size="1280x720", seconds=4
    )
    sent = timezone.now() - timedelta(seconds=70)
    done = ProviderJob(id="x", status=JobStatus.COMPLETED, progress=100)
    # Seen finished at the first check: nothing is known about when, so nothing is learned.
    generation.submitted_at = sent
    assert _observed_finish(generation, done, timezone.now()) == (None, None)
    # A check 30 s in saw 50 %: linear progress puts the end at 60 s, not at this late check.
    generation.last_polled_at, generation.progress = sent + timedelta(seconds=30), 50
    finished, render = _observed_finish(generation, done, sent + timedelta(seconds=70))
    assert render == pytest.approx(60.0)
    assert finished == sent + timedelta(seconds=60)
    # No progress reported (Gemini): the middle of the span between the two checks.
    generation.progress = 0
    _, render = _observed_finish(generation, done, sent + timedelta(seconds=70))
    assert render == pytest.approx(50.0)
    # The provider's own times win over everything (OpenAI's created_at / completed_at).
    stamped = ProviderJob(
        id="x",
        status=JobStatus.COMPLETED,
        created_at=sent,
        finished_at=sent + timedelta(seconds=42),
    )
    assert _observed_finish(generation, stamped, sent + timedelta(seconds=70))[1] == 42.0


def test_progress_of_jobs_at_different_ages_is_not_misled_by_their_queued_start(
    project, channel, teammate
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from workspace.generations.render_times import progress_render_seconds

    # A 60 s render whose first 6 s are spent queued at 0 %: progress = (age - 6) / 54. One
    # reading at a time says 135 s (10 s in), 77 s (20 s in) or 68 s (30 s in).
    now = timezone.now()
    for age in (10, 20, 30, 40):
        generation = generation_submit(
            project=project, user=teammate, model="sora-2", prompt="p", size="1280x720", seconds=4
        )
        Generation.objects.filter(pk=generation.pk).update(
            status=Status.IN_PROGRESS,
            submitted_at=now - timedelta(seconds=age),
            last_polled_at=now,
            progress=round(100 * (age - 6) / 54),
        )
    estimate = progress_render_seconds(channel_id=channel.pk, model="sora-2", seconds=4)
    assert estimate == pytest.approx(60.0, rel=0.05)


def test_before_any_render_finished_the_progress_of_running_jobs_is_the_estimate(
    project, channel, teammate, settings
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from workspace.generations.render_times import progress_render_seconds, render_seconds_estimate

    settings.REELHOUSE_DELAY_SCALE = 1.0
    generation = generation_submit(
        project=project, user=teammate, model="sora-2", prompt="p", size="1280x720", seconds=4
    )
    typical = render_seconds_estimate(channel=channel, model="sora-2", seconds=4)
    assert typical == channel.catalog.get("sora-2").typical_render_seconds  # type: ignore[union-attr]
    # A check 10 s in saw 25 %: at that pace the render takes 40 s, whatever the catalog says.
    sent = timezone.now() - timedelta(seconds=10)
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.IN_PROGRESS, submitted_at=sent, last_polled_at=timezone.now(), progress=25
    )
    estimate = progress_render_seconds(channel_id=channel.pk, model="sora-2", seconds=4)
    assert estimate == pytest.approx(40.0, rel=0.01)
    assert render_seconds_estimate(channel=channel, model="sora-2", seconds=8) == pytest.approx(
        80.0, rel=0.01
    )
    # Its own next check goes by its own pace between two checks, not by the catalog: 10 % at
    # the last check (10 s ago), 35 % now, so 26 s are left (a queued start, at 0 %, does not
    # make the render look longer).
    begun = timezone.now()
    generation.refresh_from_db()
    generation.submitted_at = begun - timedelta(seconds=20)
    generation.last_polled_at, generation.progress = begun - timedelta(seconds=10), 10
    running = ProviderJob(id="x", status=JobStatus.IN_PROGRESS, progress=35)
    delay = poll_delay(generation, running)
    late = (timezone.now() - begun).total_seconds()  # however long this test took
    assert 26.0 <= delay <= 26.0 + 3 * late + 1.5  # the rest, and the check's margin
    # With a single reading (the first check), the provider's hint says when to look again.
    generation.last_polled_at, generation.progress = None, 0
    hinted = ProviderJob(id="x", status=JobStatus.IN_PROGRESS, progress=35, poll_after=4.0)
    assert poll_delay(generation, hinted) == pytest.approx(4.0)
