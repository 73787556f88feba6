"""Recovery: sending again a job the provider failed, and resuming work whose job was lost."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import F, Max
from django.utils import timezone

from workspace.core.rq import enqueue_on_commit
from workspace.generations import jobs
from workspace.generations.failover import generations_fail_over
from workspace.generations.lanes import channel_kick_on_commit
from workspace.generations.models import Generation, Status
from workspace.generations.outcomes import backoff, scaled_delay
from workspace.providers.errors import ProviderError
from workspace.providers.models import Channel

logger = logging.getLogger(__name__)


# A job the provider failed for its own reasons (heavy load) is sent again this often, and only
# while it is this young; the provider does not bill such failures.
MAX_PROVIDER_RETRIES = 3
MAX_RETRY_AGE = timedelta(hours=1)


def may_send_again(generation: Generation) -> bool:
    return (
        generation.provider_retries < MAX_PROVIDER_RETRIES
        and timezone.now() - generation.created_at < MAX_RETRY_AGE
    )


def send_again(generation: Generation, reason: ProviderError) -> None:
    """The provider failed this job for its own reasons: queue a fresh create after a backoff."""
    wait = scaled_delay(backoff(generation.provider_retries + 2, cap=300))
    history = [*generation.provider_job_history, generation.provider_job_id]
    if generation.transition(
        Status.QUEUED,
        from_=Status.IN_PROGRESS,
        provider_job_id=None,
        provider_job_history=history,
        provider_retries=F("provider_retries") + 1,
        progress=0,
        next_attempt_at=timezone.now() + timedelta(seconds=wait),
        error_class=reason.error_class.value,
        error_message=reason.message[:2000],
    ):
        logger.info("generation %s: provider failed it (%s); sending again", generation.pk, reason)
        channel_kick_on_commit(channel_id=generation.channel_id, delay=wait)


def generations_resume_stalled(
    *, stale_after: timedelta = timedelta(minutes=2), jobs_lost: bool = False
) -> int:
    """Re-enqueue the next step of every generation whose job seems lost (e.g. Redis restarted).

    Returns how many steps it enqueued: one dispatch kick per channel with queued work, plus one
    job per stalled generation that the provider already has.
    The database is the queue of record; every job is a conditional update, so a generation that
    was not actually stalled merely gets a harmless duplicate.

    ``jobs_lost``: Redis started empty, so every queued and scheduled job is gone. Then every
    generation in flight is resumed however recent its progress: a scheduled status check runs
    now, and a step waiting out a backoff is scheduled again for when it falls due.
    """

    now = timezone.now()
    cutoff = now - stale_after
    steps = {
        Status.SUBMITTING: jobs.generation_reconcile_job,
        Status.IN_PROGRESS: jobs.generation_poll_job,
        Status.DOWNLOADING: jobs.generation_download_job,
    }
    resumed = 0
    waiting_channels = set(
        Generation.objects.filter(status=Status.QUEUED).values_list("channel_id", flat=True)
    )
    for channel in Channel.objects.filter(pk__in=waiting_channels):
        generations_fail_over(channel=channel)
        channel_kick_on_commit(channel_id=channel.pk)
        resumed += 1
    stalled = Generation.objects.filter(status__in=list(steps)).only(
        "id", "status", "next_attempt_at", "next_poll_at"
    )
    if not jobs_lost:
        stalled = stalled.filter(updated_at__lt=cutoff)
    for generation in stalled.iterator():
        step = steps[Status(generation.status)]
        due = generation.next_attempt_at
        backing_off = due is not None and due > now
        if jobs_lost:
            delay = (due - now).total_seconds() if due is not None and backing_off else 0.0
            enqueue_on_commit(step, str(generation.pk), delay=delay)
            resumed += 1
            continue
        if generation.status == Status.IN_PROGRESS and (
            generation.next_poll_at and generation.next_poll_at >= cutoff
        ):
            continue  # its next check is scheduled and not overdue
        if backing_off:
            continue
        enqueue_on_commit(step, str(generation.pk))
        resumed += 1
    return resumed


def generations_prepare_after_restore(*, queued_may_have_been_sent: bool = True) -> int:
    """Make a database just restored from a dump safe to run again; returns the rows it moved.

    A dump is a moment in the past, and the provider lives in the present: the system that was
    lost may have sent, after the dump, the create of a generation the dump still shows as
    ``queued``. Sending it again would pay twice. So every such row is put where a create of
    unknown outcome goes, ``submitting``, as if its create had started at the dump's moment:
    the recovery sweep then reconciles it against the provider's list (adopting the job the lost
    system made, else queueing it again to be sent; held for an admin where the provider cannot
    list its jobs). The latest change the dump holds is the dump's moment at the latest, so
    every create sent after the dump is listed from there.

    ``queued_may_have_been_sent=False`` when the dump was taken with the workers stopped
    (nothing can have been sent after it): queued rows then stay queued.

    Run before any worker or scheduler starts on the restored database. Everything else in
    flight needs nothing: ``submitting`` rows reconcile, ``in_progress`` ones are polled and
    ``downloading`` ones fetched again by the sweep that follows an empty Redis.
    """
    if not queued_may_have_been_sent:
        return 0
    dumped_at = Generation.objects.aggregate(latest=Max("updated_at"))["latest"]
    if dumped_at is None:
        return 0
    moved = Generation.objects.filter(status=Status.QUEUED).update(
        status=Status.SUBMITTING,
        submit_started_at=dumped_at,
        next_attempt_at=None,
        updated_at=timezone.now(),
    )
    if moved:
        logger.warning(
            "%d generations were queued when the dump was taken: each is checked against the "
            "provider's list before it is sent",
            moved,
        )
    return moved

