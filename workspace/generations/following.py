"""Following a job the provider accepted: status checks (polls and webhooks), then the files."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from workspace.billing.services import reservation_settle
from workspace.core.media_types import SNIFF_BYTES, describe, sniff
from workspace.core.rq import enqueue_on_commit, get_redis
from workspace.generations import jobs
from workspace.generations.lanes import channel_kick_on_commit, follow_up_due
from workspace.generations.models import Generation, Status
from workspace.generations.outcomes import CHANNEL_HALTING, backoff, fail, halt_reason, scaled_delay
from workspace.generations.recovery import may_send_again, send_again
from workspace.generations.render_times import (
    POLL_MARGIN_SECONDS,
    check_margin_seconds,
    expected_render_seconds,
    typical_render_seconds,
)
from workspace.generations.storage_use import generation_measure
from workspace.providers.adapters.base import JobStatus, ProviderJob, VideoAdapter
from workspace.providers.errors import ErrorClass, ProviderError
from workspace.providers.limiter import ChannelLimiter, Throttled
from workspace.providers.models import Channel
from workspace.providers.registry import provider
from workspace.providers.services import (
    adapter_for_channel,
    channel_defers_extras,
    channel_halt,
    limiter_for_channel,
)

logger = logging.getLogger(__name__)


# How long a generation may stay with the provider before we stop waiting for it.
MAX_PROVIDER_AGE = timedelta(hours=6)
# What each file of a finished job must be, judged by its bytes (core/media_types.py).
VARIANT_KINDS = {"video": "video", "thumbnail": "image", "spritesheet": "image"}
# Polling never looks more often than this (simulated seconds), whatever the estimates say.
MIN_POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 120.0


# With webhooks the provider tells us when a job ends; polls are only the safety net.
WEBHOOK_SAFETY_POLL_SECONDS = 300.0
# A scheduled check is due in RQ this long after it is due in fact: the safety net for when no
# dispatch lane is running to release it on time.
FOLLOW_UP_SAFETY_NET_SECONDS = 1.5


def _observed_finish(
    generation: Generation, job: ProviderJob, now: datetime
) -> tuple[datetime | None, float | None]:
    """When the job finished at the provider and how long it rendered, as well as can be known.

    The provider's own completion time where its protocol gives one; else extrapolated from the
    progress the last check saw; else the middle of the span between the last check that saw it
    running and this one. A job seen finished at its first check has no known end: it teaches
    nothing rather than teach our own lag.
    """
    if job.finished_at is not None and job.created_at is not None:
        return job.finished_at, max(0.0, (job.finished_at - job.created_at).total_seconds())
    sent, seen = generation.submitted_at, generation.last_polled_at
    if sent is None or seen is None or seen <= sent:
        return None, None
    finished = seen + (now - seen) / 2
    if 0 < generation.progress < 100:
        # Progress p at the last check, linear since acceptance: the end is at 100/p of it.
        projected = sent + (seen - sent) * (100 / generation.progress)
        finished = min(max(projected, seen), now)
    return finished, (finished - sent).total_seconds()


def _render_from_progress(
    generation: Generation, job: ProviderJob, now: datetime
) -> float | None:
    """How long this job renders in all, from the pace of its progress between the last check
    (still on ``generation``) and this one. Two readings, not one: providers report 0 % while
    a job waits its turn, so the progress since acceptance would make the render look longer."""
    seen, before = generation.last_polled_at, generation.progress
    if seen is None or generation.submitted_at is None or not 0 < job.progress < 100:
        return None
    span = (now - seen).total_seconds()
    if job.progress <= before or span <= 0:
        return None
    left = (100 - job.progress) * span / (job.progress - before)
    return (now - generation.submitted_at).total_seconds() + left


def poll_delay(generation: Generation, job: ProviderJob) -> float:
    """When to look at a running job again, in real seconds.

    Planned to catch the end soon after it happens with few checks: the first check just after
    the expected end (learned per model and length, else the provider's hint, else the catalog's
    typical time); a job still running then is looked at again when its progress says it will
    be done. Never sooner than the provider's hint.
    """
    scale = settings.REELHOUSE_TIME_SCALE
    now = timezone.now()
    age = (now - (generation.submitted_at or now)).total_seconds()
    learned = expected_render_seconds(
        channel_id=generation.channel_id, model=generation.model, seconds=generation.seconds
    )
    margin = POLL_MARGIN_SECONDS / scale
    if learned is None and job.poll_after is not None and age < MIN_POLL_SECONDS / scale:
        # Nothing known yet about this model: the provider's own hint is the best guess.
        wait = job.poll_after
    else:
        # Nothing learned of this model yet: the job's own pace, else the provider's hint, is
        # better than the catalog's typical time, which may be off by a factor of three.
        own = None if learned else _render_from_progress(generation, job, now)
        hinted = learned is None and own is None and job.poll_after is not None
        expected = learned or own or typical_render_seconds(
            channel=generation.channel, model=generation.model
        )
        remaining = expected - age
        if hinted:
            wait = job.poll_after or 0.0
        elif remaining > 0:
            wait = remaining + check_margin_seconds(expected)
        elif 0 < job.progress < 100:
            # Running past the estimate: its own progress says how much is left.
            wait = min(age * (100 - job.progress) / job.progress, expected / 2) + margin
        else:
            overdue = max(0, generation.poll_count - 1)
            wait = max(MIN_POLL_SECONDS / scale, 0.1 * expected) * 1.5 ** min(overdue, 10)
        if job.poll_after is not None and learned is None:
            wait = max(wait, job.poll_after)
    if generation.channel.webhooks_enabled:
        wait = max(wait, WEBHOOK_SAFETY_POLL_SECONDS / scale)
    wait = min(max(wait, MIN_POLL_SECONDS / scale), MAX_POLL_SECONDS)
    return wait * settings.REELHOUSE_DELAY_SCALE


def generation_check_now(*, channel: Channel, provider_job_id: str) -> bool:
    """The provider says this job changed: check it at once instead of at the next poll."""

    generation = Generation.objects.filter(
        channel=channel, provider_job_id=provider_job_id, status=Status.IN_PROGRESS
    ).first()
    if generation is None:
        return False
    # No chain number: this check supersedes the scheduled one, which then stands down.
    enqueue_on_commit(jobs.generation_poll_job, str(generation.pk))
    return True


def _enqueue_poll(generation: Generation, chain: int, *, delay: float) -> None:
    """Schedule check number ``chain`` of this generation ``delay`` seconds from now.

    RQ's scheduler releases delayed jobs on whole seconds, once a second: up to two seconds
    off, which at a time scale (or for a short render) is most of the lag. So the check is
    scheduled in RQ a moment after it is due (the safety net), and the channel's dispatch lanes,
    which run while work waits, release it from there exactly when it is due.
    """

    if delay <= 0:
        enqueue_on_commit(jobs.generation_poll_job, str(generation.pk), chain)
        return
    job_id = f"poll-{generation.pk}-{chain}"
    due = time.time() + delay
    enqueue_on_commit(
        jobs.generation_poll_job,
        str(generation.pk),
        chain,
        delay=delay + FOLLOW_UP_SAFETY_NET_SECONDS,
        job_id=job_id,
    )
    channel_id = generation.channel_id
    transaction.on_commit(lambda: follow_up_due(channel_id=channel_id, job_id=job_id, due=due))


def schedule_poll(generation: Generation, *, delay: float) -> None:
    """Schedule the next status check of this generation's poll chain.

    Each check carries the poll count it expects; when another check ran in between (a webhook,
    a recovery sweep) the count moved on and this one stands down, so chains never multiply.
    """
    Generation.objects.filter(pk=generation.pk, status=Status.IN_PROGRESS).update(
        next_poll_at=timezone.now() + timedelta(seconds=delay)
    )
    _enqueue_poll(generation, generation.poll_count, delay=delay)


def generation_poll(*, generation_id: str, chain: int | None = None) -> None:
    generation = Generation.objects.select_related("channel").get(pk=generation_id)
    if generation.status != Status.IN_PROGRESS or not generation.provider_job_id:
        return
    if chain is not None and chain != generation.poll_count:
        return  # superseded by a check that ran in between
    adapter = adapter_for_channel(channel=generation.channel)
    try:
        job = adapter.retrieve(generation.provider_job_id)
    except Throttled as throttled:
        adapter.close()
        schedule_poll(generation, delay=throttled.wait)
        return
    except ProviderError as error:
        adapter.close()
        _handle_poll_error(generation, error)
        return
    if job.status is not JobStatus.COMPLETED:
        adapter.close()  # only a finished job needs it again, for its files
    now = timezone.now()
    polled: dict[str, Any] = {"poll_count": F("poll_count") + 1, "last_polled_at": now}
    # The provider's own figure for a finished job, written with the job's final transition and
    # before its reservation is closed, so the ledger settles on it. Not for a job that is about
    # to be replaced by a new one (sent again): the new job's figure is the one that counts.
    reported = (
        {"provider_reported_cost_cents": job.reported_cost_cents}
        if job.reported_cost_cents is not None
        else {}
    )
    generation.poll_count += 1
    if job.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED):
        # Its end is seen now, whenever it was predicted: the plan no longer holds a place for it.
        limiter_for_channel(channel=generation.channel).plan_forget(str(generation.pk))
    if job.status is JobStatus.COMPLETED:
        try:
            finished_at, render = _observed_finish(generation, job, now)
            if generation.transition(
                Status.DOWNLOADING,
                from_=Status.IN_PROGRESS,
                progress=100,
                provider_expires_at=job.expires_at,
                provider_finished_at=finished_at or now,
                render_seconds=render,
                **polled,
                **reported,
            ):
                channel_kick_on_commit(channel_id=generation.channel_id)
                # Fetch the files in this same job, with the job this check just read and its
                # adapter: outputs expire, a separate job would only add a queue round trip, and
                # reading the job again would cost one more request under the channel's limit.
                _download_files(generation, adapter, retrieved=job)
        finally:
            adapter.close()
        return
    if job.status in (JobStatus.FAILED, JobStatus.CANCELED):
        Generation.objects.filter(pk=generation.pk, status=Status.IN_PROGRESS).update(**polled)
        reason = job.error or ProviderError(
            ErrorClass.PROVIDER_FAILED, "The provider stopped the job."
        )
        if reason.transient and may_send_again(generation):
            send_again(generation, reason)
        else:
            if reported:
                Generation.objects.filter(pk=generation.pk, status=Status.IN_PROGRESS).update(
                    **reported
                )
            fail(generation, reason, from_=Status.IN_PROGRESS)
        return
    delay = poll_delay(generation, job)
    still_running = Generation.objects.filter(pk=generation.pk, status=Status.IN_PROGRESS).update(
        progress=job.progress,
        next_poll_at=now + timedelta(seconds=delay),
        updated_at=now,
        **polled,
    )
    if still_running:
        _enqueue_poll(generation, generation.poll_count, delay=delay)


def _handle_poll_error(generation: Generation, error: ProviderError) -> None:

    logger.warning("generation %s: status check failed: %r", generation.pk, error)
    if error.error_class in CHANNEL_HALTING:
        channel_halt(channel=generation.channel, reason=halt_reason(error))
    started = generation.submitted_at or generation.created_at
    too_old = timezone.now() - started > MAX_PROVIDER_AGE
    if error.error_class in (ErrorClass.NOT_FOUND, ErrorClass.EXPIRED) or too_old:
        fail(generation, error, from_=Status.IN_PROGRESS)
        return
    # Rate limits, outages and even a revoked key are waited out: the job keeps running at the
    # provider, and its result is still ours once the channel works again.
    wait = error.retry_after if error.retry_after is not None else backoff(4, cap=60)
    schedule_poll(generation, delay=scaled_delay(max(wait, 1.0)))


def _store_variant(
    generation: Generation, adapter: VideoAdapter, variant: str, retrieved: ProviderJob | None
) -> tuple[str, int]:
    """Download one file and store it, but only when its bytes are a media type we serve; its
    name in storage and its size in bytes.

    The provider's Content-Type is ignored: a gateway could label an HTML page ``video/mp4``,
    and we would then serve its script from our own origin to every member of the project.
    """
    assert generation.provider_job_id is not None
    with tempfile.TemporaryFile() as scratch:
        claimed = adapter.download(
            generation.provider_job_id, variant=variant, destination=scratch, retrieved=retrieved
        )
        scratch.seek(0)
        head = scratch.read(SNIFF_BYTES)
        media = sniff(head)
        expected = VARIANT_KINDS.get(variant, "image")
        if media is None or media.kind != expected:
            what = "a file" if variant == "video" else f"a {variant}"
            article = "a" if expected == "video" else "an"
            raise ProviderError(
                ErrorClass.PROVIDER_FAILED,
                f"The provider sent {what} that is not {article} {expected} ({describe(head)}); "
                "nothing was stored.",
            )
        if claimed.split(";")[0].strip().lower() != media.content_type:
            logger.info(
                "generation %s: %s labelled %r is %s", generation.pk, variant, claimed[:100],
                media.content_type,
            )
        name = generation.storage_name(f"{variant}.{media.extension}")
        # A repeated download overwrites the same name instead of piling up copies.
        if default_storage.exists(name):
            default_storage.delete(name)
        size = scratch.seek(0, os.SEEK_END)
        scratch.seek(0)
        return default_storage.save(name, File(scratch)), size


def generation_download(*, generation_id: str) -> None:
    """Copy a finished job's files into our own storage; completed once the video is stored.

    The video comes first and makes the generation playable at once; the poster and the
    spritesheet follow in the same job, or, where every request counts against one limit, with
    slots nothing more urgent needs (``extras_fetch_one``): each is one more request under the
    channel's limit, and nobody should wait for a thumbnail to watch the video, or for another
    video's thumbnail to watch theirs. A poster that cannot be fetched leaves the player
    without one, nothing more.
    """

    generation = Generation.objects.select_related("channel").get(pk=generation_id)
    if generation.status != Status.DOWNLOADING:
        return
    adapter = adapter_for_channel(channel=generation.channel)
    try:
        _download_files(generation, adapter, retrieved=None)
    finally:
        adapter.close()


def _download_files(
    generation: Generation, adapter: VideoAdapter, *, retrieved: ProviderJob | None
) -> None:
    """The body of ``generation_download`` for a row in ``downloading``; ``retrieved`` is the job
    as the status check that saw it finish read it (None when a retry runs on its own)."""
    generation_id = str(generation.pk)
    try:
        video, video_bytes = _store_variant(generation, adapter, adapter.variants[0], retrieved)
    except Throttled as throttled:
        enqueue_on_commit(jobs.generation_download_job, generation_id, delay=throttled.wait)
        return
    except ProviderError as error:
        logger.warning("generation %s: download failed: %r", generation.pk, error)
        if error.transient and timezone.now() - generation.updated_at < MAX_PROVIDER_AGE:
            wait = error.retry_after if error.retry_after is not None else backoff(3, cap=60)
            Generation.objects.filter(pk=generation.pk, status=Status.DOWNLOADING).update(
                error_class=error.error_class.value, error_message=error.message[:2000]
            )
            enqueue_on_commit(
                jobs.generation_download_job, generation_id, delay=scaled_delay(wait)
            )
        else:
            fail(generation, error, from_=Status.DOWNLOADING)
        return
    if generation.transition(
        Status.COMPLETED,
        from_=Status.DOWNLOADING,
        completed_at=timezone.now(),
        error_class="",
        error_message="",
        video=video,
        stored_bytes=video_bytes,
    ):
        reservation_settle(generation=generation)
        logger.info("generation %s completed", generation.pk)
    wanted = [variant for variant in adapter.variants[1:] if variant in EXTRA_VARIANTS]
    if wanted and _extras_wait(generation):
        _extras_defer(generation, wanted)
        return
    for variant in wanted:
        try:
            stored, size = _store_variant(generation, adapter, variant, retrieved)
        except (Throttled, ProviderError) as error:
            logger.warning("generation %s: no %s: %r", generation.pk, variant, error)
            if isinstance(error, ProviderError) and not error.transient:
                _extras_give_up(generation.channel_id, f"{generation.pk}:{variant}")
        else:
            _attach_extra(generation, variant, stored, size)


def _attach_extra(generation: Generation, variant: str, stored: str, size: int) -> None:
    # Not onto a row whose files the retention policy removed meanwhile (an unpicked take can
    # go the moment it is completed): those extras would be files nothing points at. Nor over
    # a file another worker attached first (the recovery sweep may fetch one a dying worker was
    # fetching): its bytes are counted once, and the spare copy goes.
    attached = Generation.objects.filter(
        pk=generation.pk, status=Status.COMPLETED, files_removed_at__isnull=True, **{variant: ""}
    ).update(stored_bytes=F("stored_bytes") + size, **{variant: stored})
    if attached:
        return
    row = Generation.objects.filter(pk=generation.pk).values_list(variant, "files_removed_at")
    kept, removed_at = row.first() or ("", None)
    # A repeated download overwrites the same name: then the spare copy is the attached file.
    if stored != kept or removed_at is not None:
        default_storage.delete(stored)


# What a member is told about a finished video whose stored file is gone for good.
FILE_LOST_MESSAGE = (
    "The stored {what} was lost (the media store was restored without it) and the provider no "
    "longer has a copy ({reason})."
)
VARIANT_FIELDS = {"video": "video", "thumbnail": "thumbnail", "spritesheet": "spritesheet"}


def generation_files_missing(generation: Generation) -> list[str]:
    """The variants this finished generation names that its storage does not hold."""
    return [
        variant
        for variant, field in VARIANT_FIELDS.items()
        if getattr(generation, field).name
        and not default_storage.exists(getattr(generation, field).name)
    ]


# Transient failures (outages, 5xx) while fetching a lost file again are retried this often.
MAX_REFETCH_ATTEMPTS = 8


def generation_refetch_files(*, generation_id: str, attempt: int = 0) -> None:
    """Copy again, from the provider, the files of a finished generation its storage lost.

    A restore can bring back a database that names files the restored media store does not
    hold (a media copy older than the dump, or none). While the provider keeps its copy the
    files are fetched again, judged by their bytes like any download; once it has not, the
    lost file is unlinked from the row and the row says why, so nobody is shown a player for
    a file that is not there. Nothing is billed: the job was paid when it was made.
    """
    generation = Generation.objects.select_related("channel").get(pk=generation_id)
    if generation.status != Status.COMPLETED or not generation.provider_job_id:
        return
    missing = generation_files_missing(generation)
    if not missing:
        return
    now = timezone.now()
    if generation.provider_expires_at is not None and generation.provider_expires_at <= now:
        _files_lost(generation, missing, "its copy expired")
        return
    adapter = adapter_for_channel(channel=generation.channel)
    try:
        for variant in missing:
            if variant not in adapter.variants:
                continue
            stored, _ = _store_variant(generation, adapter, variant, None)
            field = VARIANT_FIELDS[variant]
            # Only onto the row as it was read: not onto one the retention policy has since
            # cleared (the copy would then be a file nothing names).
            if not Generation.objects.filter(
                pk=generation.pk,
                status=Status.COMPLETED,
                files_removed_at__isnull=True,
                **{field: getattr(generation, field).name},
            ).update(**{field: stored}):
                default_storage.delete(stored)
                return
            logger.info("generation %s: lost %s fetched again", generation.pk, variant)
        # The restored row's size counted the lost files; now it counts what the store holds.
        generation_measure(generation=Generation.objects.get(pk=generation.pk))
    except Throttled as throttled:
        enqueue_on_commit(
            jobs.generation_refetch_job, generation_id, attempt, delay=throttled.wait
        )
    except ProviderError as error:
        logger.warning("generation %s: fetching a lost file failed: %r", generation.pk, error)
        if error.transient and attempt < MAX_REFETCH_ATTEMPTS:
            wait = error.retry_after if error.retry_after is not None else backoff(attempt, cap=300)
            enqueue_on_commit(
                jobs.generation_refetch_job, generation_id, attempt + 1, delay=scaled_delay(wait)
            )
        elif error.transient:
            pass  # still failing after hours: left as it is; `restore --check-files` tries again
        else:
            _files_lost(generation, generation_files_missing(generation), error.message)
    finally:
        adapter.close()


def _files_lost(generation: Generation, variants: list[str], reason: str) -> None:
    if not variants:
        return
    what = "video" if "video" in variants else " and ".join(variants)
    fields: dict[str, Any] = {VARIANT_FIELDS[variant]: "" for variant in variants}
    if "video" in variants:
        # The card and the page show this instead of a player (a poster alone is no loss).
        fields["error_class"] = ErrorClass.EXPIRED.value
        fields["error_message"] = FILE_LOST_MESSAGE.format(what=what, reason=reason)[:2000]
    Generation.objects.filter(pk=generation.pk, status=Status.COMPLETED).update(
        updated_at=timezone.now(), **fields
    )
    generation_measure(generation=Generation.objects.get(pk=generation.pk))
    logger.warning("generation %s: %s lost for good: %s", generation.pk, what, reason)


def generations_files_check(*, enqueue: bool = True) -> list[str]:
    """Finished generations whose stored files are missing; each gets a job that fetches them
    again from the provider, or says they are lost. Returns their ids."""
    missing = []
    finished = (
        Generation.objects.filter(status=Status.COMPLETED)
        .exclude(video="", thumbnail="", spritesheet="")
        .only("id", "project_id", "video", "thumbnail", "spritesheet")
    )
    for generation in finished.iterator():
        if generation_files_missing(generation):
            missing.append(str(generation.pk))
            if enqueue:
                enqueue_on_commit(jobs.generation_refetch_job, str(generation.pk))
    return missing


# --- Extras: posters and spritesheets fetched with slots nothing more urgent needs -----------
# Where every request counts against one limit and a backlog waits, a finished video's extra
# files wait in a sorted set per channel (member "<generation id>:<variant>", scored by when it
# was finished) for the channel's dispatch lanes: a lane fetches one with a slot that is free
# now and that no create may take (the follow-up plan is full) or nothing else asked for, and as
# any follow-up does once no video is with the provider. One
# waiting longer than EXTRAS_MAX_DEFER goes ahead of creates: outputs expire at the provider.
EXTRA_VARIANTS = ("thumbnail", "spritesheet")
EXTRAS_MAX_DEFER_SECONDS = 600.0
# A file that keeps failing transiently is given up after this long (the player has no poster).
EXTRAS_GIVE_UP_SECONDS = 3600.0


# Generations that will soon need a status check or a video download (or a create).
_PROMPT_WORK = (Status.SUBMITTING, Status.IN_PROGRESS, Status.DOWNLOADING)


def prompt_work_pending(*, channel_id: int, queued: bool = False) -> bool:
    """Whether videos of this channel are with the provider (or, with ``queued``, waiting to be
    sent): their checks and downloads must not queue behind posters."""
    statuses = (*_PROMPT_WORK, Status.QUEUED) if queued else _PROMPT_WORK
    return Generation.objects.filter(channel_id=channel_id, status__in=statuses).exists()


def _extras_wait(generation: Generation) -> bool:
    """Whether this video's extras wait for spare slots: where every request counts against one
    limit, while other videos wait to be sent or for their checks and downloads (with none,
    they go at once, as any follow-up)."""
    return channel_defers_extras(channel=generation.channel) and prompt_work_pending(
        channel_id=generation.channel_id, queued=True
    )


def _extras_key(channel_id: int) -> str:
    return f"reelhouse:channel:{channel_id}:extras"


def _extras_defer(generation: Generation, variants: list[str]) -> None:
    members = {f"{generation.pk}:{variant}": time.time() for variant in variants}
    key = _extras_key(generation.channel_id)

    def defer_extras() -> None:  # named: Django logs a failing callback by its name
        get_redis().zadd(key, members, nx=True)

    transaction.on_commit(defer_extras, robust=True)
    channel_kick_on_commit(channel_id=generation.channel_id)


def extras_waiting(*, channel_id: int) -> int:
    return int(get_redis().zcard(_extras_key(channel_id)))


def extras_ages(channel: Channel, *, limit: int = 5000) -> list[float]:
    """When each waiting poster or spritesheet began to wait (unix time), oldest first."""
    waiting: list[Any] = get_redis().zrange(
        _extras_key(channel.pk), 0, limit - 1, withscores=True
    )
    return [float(pair[1]) for pair in waiting]


def _extras_pop(channel_id: int, *, overdue_only: bool) -> tuple[str, float] | None:
    connection = get_redis()
    key = _extras_key(channel_id)
    if not overdue_only:
        popped: list[Any] = connection.zpopmin(key)
        if not popped:
            return None
        member, score = popped[0]
    else:
        scale = settings.REELHOUSE_TIME_SCALE
        oldest: list[Any] = connection.zrangebyscore(
            key, "-inf", time.time() - EXTRAS_MAX_DEFER_SECONDS / scale, start=0, num=1,
            withscores=True,
        )
        if not oldest or not connection.zrem(key, oldest[0][0]):
            return None  # none overdue, or another lane took it
        member, score = oldest[0]
    return (member.decode() if isinstance(member, bytes) else str(member)), float(score)


def extras_fetch_one(
    *, channel: Channel, limiter: ChannelLimiter, now_only: bool, overdue_only: bool = False
) -> bool:
    """Fetch one waiting extra file of a finished video; return whether a request was spent.

    ``now_only``: only with a slot free right now (a lane whose create the plan refused), never
    queueing for one. ``overdue_only``: only an extra that waited longer than it should.
    """
    popped = _extras_pop(channel.pk, overdue_only=overdue_only)
    if popped is None:
        return False
    member, score = popped
    if now_only and limiter.take_now("other") > 0:
        get_redis().zadd(_extras_key(channel.pk), {member: score}, nx=True)
        return False
    generation_id, variant = member.rsplit(":", 1)
    generation = Generation.objects.filter(
        pk=generation_id, status=Status.COMPLETED, files_removed_at__isnull=True
    ).first()
    if generation is None or getattr(generation, variant, None) or variant not in EXTRA_VARIANTS:
        limiter.give_back()  # deleted, failed over or already fetched: the slot goes back
        return False
    adapter = adapter_for_channel(channel=channel, limiter=limiter)
    try:
        stored, size = _store_variant(generation, adapter, variant, None)
    except Throttled:
        get_redis().zadd(_extras_key(channel.pk), {member: score}, nx=True)
        return False
    except ProviderError as error:
        # A rate limit or an outage is waited out (the pause applies to everyone): the file
        # waits its turn again, for as long as the provider may keep it.
        keep = EXTRAS_GIVE_UP_SECONDS / settings.REELHOUSE_TIME_SCALE
        if error.transient and time.time() - score < keep:
            get_redis().zadd(_extras_key(channel.pk), {member: score}, nx=True)
        else:
            logger.warning("generation %s: no %s: %r", generation.pk, variant, error)
            _extras_give_up(channel.pk, member)
        return True
    finally:
        limiter.give_back()  # a no-op once the download used its slot
        adapter.close()
    _attach_extra(generation, variant, stored, size)
    return True


def _extras_given_up_key(channel_id: int) -> str:
    return f"reelhouse:channel:{channel_id}:extras-given-up"


def _extras_give_up(channel_id: int, member: str) -> None:
    """Remember a file the provider will not give, so the recovery sweep does not ask for it at
    every pass (forgotten with Redis, which costs one more request per such file)."""
    get_redis().zadd(_extras_given_up_key(channel_id), {member: time.time()})


def generations_extras_recover(*, grace_seconds: float = 60.0, limit: int = 500) -> int:
    """Put back into the extras sets the posters and spritesheets finished videos lack.

    Redis is not the queue of record: an emptied Redis loses the sets, and a worker that dies
    after taking an entry, or between storing a video and fetching its poster, loses the file.
    The database says what is missing: completed videos of the last EXTRAS_GIVE_UP_SECONDS
    (older ones would have been given up anyway) whose channel offers the file, still holding
    their files and a provider copy. Those completed within ``grace_seconds`` are left to the worker
    that is likely still fetching them (a duplicate would be harmless: attaching is
    conditional). Every channel's lanes fetch them, as deferred extras; ZADD NX keeps a file
    already waiting where it is. Returns how many entries were added.
    """
    now = timezone.now()
    offering: dict[int, tuple[str, ...]] = {}
    for channel_id, protocol in Channel.objects.values_list("id", "protocol"):
        variants = tuple(v for v in provider(protocol).variants if v in EXTRA_VARIANTS)
        if variants:
            offering[channel_id] = variants
    if not offering:
        return 0
    scale = settings.REELHOUSE_TIME_SCALE
    window = timedelta(seconds=EXTRAS_GIVE_UP_SECONDS / scale)
    grace = timedelta(seconds=grace_seconds / scale)
    missing = (
        Generation.objects.filter(
            status=Status.COMPLETED,
            channel_id__in=list(offering),
            completed_at__gte=now - window,
            completed_at__lt=now - grace,
            files_removed_at__isnull=True,
            provider_job_id__isnull=False,
        )
        .filter(Q(thumbnail="") | Q(spritesheet=""))
        .filter(Q(provider_expires_at__isnull=True) | Q(provider_expires_at__gt=now))
        .order_by("-completed_at")
        .values_list("id", "channel_id", "completed_at", "thumbnail", "spritesheet")[:limit]
    )
    wanted: dict[int, dict[str, float]] = {}
    for generation_id, channel_id, completed_at, thumbnail, spritesheet in missing:
        have = {"thumbnail": thumbnail, "spritesheet": spritesheet}
        for variant in offering[channel_id]:
            if not have[variant]:
                member = f"{generation_id}:{variant}"
                assert completed_at is not None  # filtered on it
                wanted.setdefault(channel_id, {})[member] = completed_at.timestamp()
    connection = get_redis()
    added = 0
    for channel_id, members in wanted.items():
        given_up_key = _extras_given_up_key(channel_id)
        connection.zremrangebyscore(given_up_key, "-inf", time.time() - window.total_seconds())
        given_up = connection.zmscore(given_up_key, list(members))
        pairs = zip(members.items(), given_up, strict=True)
        members = {member: score for (member, score), gave in pairs if gave is None}
        count = connection.zadd(_extras_key(channel_id), members, nx=True) if members else 0
        if count:
            added += int(count)
            channel_kick_on_commit(channel_id=channel_id)
    return added
