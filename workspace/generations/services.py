"""Generation workflows: submitting, sending to the provider, polling, saving the files.

The web form, the ``generation_submit`` command and the RQ jobs all come through here.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from workspace.billing.services import (
    reservation_close_failed,
    reservation_create,
    reservation_release,
    reservation_settle,
)
from workspace.core.media_types import SNIFF_BYTES, describe, sniff
from workspace.core.notify import admins_notify
from workspace.core.rq import enqueue_on_commit
from workspace.generations.dispatch import channel_kick_on_commit, generations_fail_over
from workspace.generations.models import PROMPT_MAX_LENGTH, Generation, Status
from workspace.generations.render_times import (
    POLL_MARGIN_SECONDS,
    check_margin_seconds,
    expected_render_seconds,
    typical_render_seconds,
)
from workspace.projects.models import Membership, Project
from workspace.providers.adapters.base import JobStatus, ProviderJob, VideoAdapter, VideoRequest
from workspace.providers.catalog import ModelSpec
from workspace.providers.errors import CreateOutcome, ErrorClass, ProviderError
from workspace.providers.limiter import ChannelLimiter, Throttled
from workspace.providers.models import Channel
from workspace.providers.services import (
    adapter_for_channel,
    channel_available,
    channel_get_default,
    channel_halt,
    route_alternative,
)

logger = logging.getLogger(__name__)

# How often a create that provably never reached the provider is tried again before giving up.
MAX_SUBMIT_ATTEMPTS = 8
# How long a generation may stay with the provider before we stop waiting for it.
MAX_PROVIDER_AGE = timedelta(hours=6)
# A create with an unknown outcome is matched against the provider's list for this long.
RECONCILE_WINDOW = timedelta(minutes=10)
# What each file of a finished job must be, judged by its bytes (core/media_types.py).
VARIANT_KINDS = {"video": "video", "thumbnail": "image", "spritesheet": "image"}


def _delay(seconds: float) -> float:
    # Tests shrink every wait to zero and benchmarks run time faster; production waits as computed.
    scale = float(getattr(settings, "REELHOUSE_DELAY_SCALE", 1.0)) / settings.REELHOUSE_TIME_SCALE
    return max(0.0, seconds * scale)


def _backoff(attempt: int, *, base: float = 2.0, cap: float = 120.0) -> float:
    # Full jitter, so retries from many rows never line up into a burst.
    return random.uniform(0, min(cap, base * 2**attempt))


# --- Submission --------------------------------------------------------------------------------


def generation_submit(
    *,
    project: Project,
    user: User,
    model: str,
    prompt: str,
    size: str,
    seconds: int,
    channel: Channel | None = None,
) -> Generation:
    """Accept a generation request from a member and queue it for the workers."""
    membership = Membership.objects.filter(project=project, user_id=user.pk).first()
    if membership is None or not membership.can_generate:
        raise PermissionDenied("Only owners and editors of this project can generate videos.")
    channel = channel or channel_get_default()
    if not channel_available(channel=channel):
        # Halted or failing: equivalent models on another channel take new work, if configured.
        alternative = route_alternative(channel=channel, model=model, size=size, seconds=seconds)
        if alternative is not None:
            channel, model = alternative
    spec = generation_validate(
        channel=channel, model=model, prompt=prompt, size=size, seconds=seconds
    )
    with transaction.atomic():
        generation = Generation.objects.create(
            project=project,
            created_by=user,
            channel=channel,
            model=spec.id,
            prompt=prompt.strip(),
            size=size,
            seconds=seconds,
            estimated_cost_cents=spec.cents_per_second.get(size, 0) * seconds,
        )
        # Checks every budget and reserves the cost atomically; refusing rolls back the row.
        reservation_create(generation=generation)
        channel_kick_on_commit(channel_id=channel.pk)
    logger.info("generation %s queued by user %s in project %s", generation.pk, user.pk, project.pk)
    return generation


def generation_validate(
    *, channel: Channel, model: str, prompt: str, size: str, seconds: int
) -> ModelSpec:
    errors: dict[str, str] = {}
    prompt = prompt.strip()
    if not prompt:
        errors["prompt"] = "Describe the video you want: the prompt is empty."
    elif len(prompt) > PROMPT_MAX_LENGTH:
        errors["prompt"] = (
            f"The prompt is {len(prompt)} characters long; the limit is {PROMPT_MAX_LENGTH}."
        )
    elif "\x00" in prompt:
        # The form refuses it too; the database would refuse it with an error of its own.
        errors["prompt"] = "The prompt contains a NUL character; remove it."
    spec = channel.catalog.get(model)
    if spec is None:
        names = ", ".join(m.id for m in channel.catalog.models)
        errors["model"] = f"{channel.name} has no model {model!r}; choose one of {names}."
    else:
        errors.update(spec.validate(size=size, seconds=seconds))
    if errors:
        raise ValidationError(errors)
    assert spec is not None
    return spec


def generation_cancel(*, generation: Generation, user: User) -> None:
    """Cancel a generation that has not reached the provider yet.

    Once a provider accepted a job it cannot be stopped (the OpenAI protocol has no cancel), so
    only queued work can be canceled and nothing paid is ever abandoned half-way.
    """
    membership = Membership.objects.filter(project=generation.project, user_id=user.pk).first()
    allowed = membership is not None and (
        membership.can_manage or (membership.can_generate and generation.created_by_id == user.pk)
    )
    if not allowed:
        raise PermissionDenied("Only its author or a project owner can cancel a generation.")
    if not generation.transition(Status.CANCELED, from_=Status.QUEUED, completed_at=timezone.now()):
        raise ValidationError(
            "It has already been sent to the provider and can no longer be canceled."
        )
    reservation_release(generation=generation, reason="Canceled before it was sent.")


# --- Sending to the provider -----------------------------------------------------------------


def _fail(generation: Generation, error: ProviderError, *, from_: str | set[str]) -> bool:
    failed = generation.transition(
        Status.FAILED,
        from_=from_,
        error_class=error.error_class.value,
        error_message=error.message[:2000],
        completed_at=timezone.now(),
    )
    if failed:
        # Its place at the provider (or in the in-flight cap) is free for the next one.
        channel_kick_on_commit(channel_id=generation.channel_id)
        # Released, or settled when the provider bills this kind of failure (billing/policy.py).
        reservation_close_failed(generation=generation)
    return failed


def send_create(*, generation: Generation, limiter: ChannelLimiter) -> None:
    """Send the create for a generation this process has just claimed (status ``submitting``).

    The row was committed as ``submitting`` before this call, so a crash or a duplicated job
    finds it there and reconciles instead of creating a second, separately billed job.
    """
    adapter = adapter_for_channel(channel=generation.channel, limiter=limiter)
    try:
        job = adapter.create(
            VideoRequest(
                model=generation.model,
                prompt=generation.prompt,
                size=generation.size,
                seconds=generation.seconds,
            )
        )
    except Throttled as throttled:
        # Nothing was sent: the channel was paused between taking the slot and sending.
        _requeue(generation, None, wait=0, refund_attempt=True)
        logger.info("generation %s: not sent, %s", generation.pk, throttled)
        return
    except ProviderError as error:
        _handle_create_error(generation, error)
        return
    finally:
        adapter.close()
    _accept_provider_job(generation, job)


def _accept_provider_job(generation: Generation, job: ProviderJob) -> None:

    accepted = generation.transition(
        Status.IN_PROGRESS,
        from_=Status.SUBMITTING,
        provider_job_id=job.id,
        submitted_at=timezone.now(),
        progress=job.progress,
        error_class="",
        error_message="",
    )
    if accepted:
        logger.info("generation %s accepted by provider as %s", generation.pk, job.id)
        _schedule_poll(generation, delay=_poll_delay(generation, job))


def _handle_create_error(generation: Generation, error: ProviderError) -> None:
    from workspace.generations import jobs

    logger.warning("generation %s: create failed: %r", generation.pk, error)
    if error.create_outcome is CreateOutcome.AMBIGUOUS:
        # The provider may have started (and will bill) a job: find it before anything else.
        Generation.objects.filter(pk=generation.pk, status=Status.SUBMITTING).update(
            error_class=ErrorClass.AMBIGUOUS_CREATE.value, error_message=error.message[:2000]
        )
        enqueue_on_commit(jobs.generation_reconcile_job, str(generation.pk), delay=_delay(2))
        return
    if error.error_class is ErrorClass.RATE_LIMITED:
        # The channel is paused for everyone (limiter pushback); this is waiting, not failing.
        _requeue(generation, error, wait=0, refund_attempt=True)
        return
    if error.error_class in CHANNEL_HALTING:
        # No retry fixes a refused key or an empty account: hold the work, call an admin.
        channel_halt(channel=generation.channel, reason=_halt_reason(error))
        _requeue(generation, error, wait=0, refund_attempt=True)
        return
    if error.transient and generation.submit_attempts < MAX_SUBMIT_ATTEMPTS:
        wait = (
            error.retry_after
            if error.retry_after is not None
            else _backoff(generation.submit_attempts)
        )
        _requeue(generation, error, wait=wait)
        return
    _fail(generation, error, from_=Status.SUBMITTING)


CHANNEL_HALTING = {ErrorClass.AUTH, ErrorClass.QUOTA_EXHAUSTED}
# A job the provider failed for its own reasons (heavy load) is sent again this often, and only
# while it is this young; the provider does not bill such failures.
MAX_PROVIDER_RETRIES = 3
MAX_RETRY_AGE = timedelta(hours=1)


def _halt_reason(error: ProviderError) -> str:
    return f"{error.member_message} The provider said: {error.message}"


def _requeue(
    generation: Generation,
    error: ProviderError | None,
    *,
    wait: float,
    refund_attempt: bool = False,
) -> None:
    wait = _delay(wait)
    extra = {"submit_attempts": F("submit_attempts") - 1} if refund_attempt else {}
    requeued = generation.transition(
        Status.QUEUED,
        from_=Status.SUBMITTING,
        **extra,
        next_attempt_at=timezone.now() + timedelta(seconds=wait),
        error_class=error.error_class.value if error else "",
        error_message=error.message[:2000] if error else "",
    )
    if requeued:
        channel_kick_on_commit(channel_id=generation.channel_id, delay=wait)


def generation_reconcile_create(*, generation_id: str) -> None:
    """Resolve a create whose outcome is unknown by looking for the job at the provider.

    Matches on prompt, model, size, seconds and creation time, skipping provider jobs already
    linked to another generation. Found: adopt it. Not listed within the reconcile window: the
    provider never created it, so the generation queues again. Never re-sends blindly.
    """
    from workspace.generations import jobs

    generation = Generation.objects.select_related("channel").get(pk=generation_id)
    if generation.status != Status.SUBMITTING or generation.submit_started_at is None:
        return
    adapter = adapter_for_channel(channel=generation.channel)
    if not getattr(adapter, "can_list", True):
        adapter.close()
        _hold(
            generation,
            f"{generation.channel.name} cannot list its recent jobs, so there is no way to tell "
            "whether this create reached it. It was not re-sent.",
        )
        return
    try:
        candidates = adapter.list_recent(
            limit=100, since=generation.submit_started_at - timedelta(seconds=60)
        )
    except Throttled as throttled:
        enqueue_on_commit(jobs.generation_reconcile_job, generation_id, delay=throttled.wait)
        return
    except ProviderError as error:
        if timezone.now() - generation.submit_started_at < RECONCILE_WINDOW:
            enqueue_on_commit(
                jobs.generation_reconcile_job, generation_id, delay=_delay(_backoff(3, cap=60))
            )
        else:
            _hold(
                generation,
                "Could not check the provider's list to see whether the video was created "
                f"({error.message}). It was not re-sent.",
            )
        return
    finally:
        adapter.close()
    match = _match_candidate(generation, candidates)
    if match is not None:
        logger.info("generation %s: ambiguous create resolved to %s", generation.pk, match.id)
        _accept_provider_job(generation, match)
        return
    if timezone.now() - generation.submit_started_at < timedelta(seconds=_delay(30)):
        # A job can show up in the list a moment after the create; look again before deciding.
        enqueue_on_commit(jobs.generation_reconcile_job, generation_id, delay=_delay(10))
        return
    _requeue(generation, None, wait=0)


def _hold(generation: Generation, reason: str) -> None:
    """Nobody can tell whether the provider has (and bills) this job: an admin decides between
    sending it again and canceling it, rather than the system paying twice."""
    if generation.transition(
        Status.HELD,
        from_=Status.SUBMITTING,
        error_class=ErrorClass.AMBIGUOUS_CREATE.value,
        error_message=reason[:2000],
    ):
        admins_notify(
            subject="A generation is held for you",
            message=(
                f"Generation {generation.pk} may or may not have been created at "
                f"{generation.channel.name}: {reason} Retry or cancel it in the admin "
                "(Generations, status: held for an admin)."
            ),
        )


def generation_release_hold(*, generation: Generation, resend: bool) -> bool:
    """An admin's decision on a held generation: send it again (accepting that the provider may
    bill twice) or cancel it."""
    if resend:
        moved = generation.transition(
            Status.QUEUED, from_=Status.HELD, next_attempt_at=None, error_message=""
        )
        if moved:
            channel_kick_on_commit(channel_id=generation.channel_id)
        return moved
    return generation.transition(Status.CANCELED, from_=Status.HELD, completed_at=timezone.now())


def _match_candidate(generation: Generation, candidates: list[ProviderJob]) -> ProviderJob | None:
    """The provider job this generation's latest create made, if the provider lists it.

    Never a job that is, or once was, another attempt: the jobs of earlier attempts (a job the
    provider failed and we sent again) and jobs linked to other generations are excluded, or a
    retry could adopt its own failed predecessor while the new, billed job went unclaimed.
    """
    assert generation.submit_started_at is not None
    earliest = generation.submit_started_at - timedelta(seconds=60)
    same_request = Generation.objects.filter(
        channel=generation.channel,
        model=generation.model,
        size=generation.size,
        seconds=generation.seconds,
        prompt=generation.prompt,
    ).values_list("pk", "provider_job_id", "provider_job_history")
    taken: set[str] = set()
    for pk, current, history in same_request:
        taken.update(history or [])
        if current and pk != generation.pk:
            taken.add(current)
    linked = (
        Generation.objects.filter(
            channel=generation.channel, provider_job_id__in=[c.id for c in candidates]
        )
        .exclude(pk=generation.pk)
        .values_list("provider_job_id", flat=True)
    )
    taken.update(job_id for job_id in linked if job_id)
    matches = [
        c
        for c in candidates
        if c.id not in taken
        and c.model == generation.model
        and c.size == generation.size
        and c.seconds == generation.seconds
        and (c.prompt is None or c.prompt == generation.prompt)
        and (c.created_at is None or c.created_at >= earliest)
    ]
    # Closest to this attempt's send: clock skew aside, that is the one it created.
    started = generation.submit_started_at
    matches.sort(key=lambda c: abs(((c.created_at or started) - started).total_seconds()))
    return matches[0] if matches else None


# --- Following the provider's job ------------------------------------------------------------


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


def _poll_delay(generation: Generation, job: ProviderJob) -> float:
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
        expected = learned or typical_render_seconds(
            channel=generation.channel, model=generation.model
        )
        remaining = expected - age
        if remaining > 0:
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
    return wait * float(getattr(settings, "REELHOUSE_DELAY_SCALE", 1.0))


def generation_check_now(*, channel: Channel, provider_job_id: str) -> bool:
    """The provider says this job changed: check it at once instead of at the next poll."""
    from workspace.generations import jobs

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
    from workspace.generations import jobs
    from workspace.generations.dispatch import follow_up_due

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


def _schedule_poll(generation: Generation, *, delay: float) -> None:
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
        _schedule_poll(generation, delay=throttled.wait)
        return
    except ProviderError as error:
        _handle_poll_error(generation, error)
        return
    finally:
        adapter.close()
    now = timezone.now()
    polled = {"poll_count": F("poll_count") + 1, "last_polled_at": now}
    generation.poll_count += 1
    if job.status is JobStatus.COMPLETED:
        finished_at, render = _observed_finish(generation, job, now)
        if generation.transition(
            Status.DOWNLOADING,
            from_=Status.IN_PROGRESS,
            progress=100,
            provider_expires_at=job.expires_at,
            provider_finished_at=finished_at or now,
            render_seconds=render,
            **polled,
        ):
            channel_kick_on_commit(channel_id=generation.channel_id)
            # Fetch the files in this same job: outputs expire, and a separate job would only
            # add a queue round trip.
            generation_download(generation_id=generation_id)
        return
    if job.status in (JobStatus.FAILED, JobStatus.CANCELED):
        Generation.objects.filter(pk=generation.pk, status=Status.IN_PROGRESS).update(**polled)
        reason = job.error or ProviderError(
            ErrorClass.PROVIDER_FAILED, "The provider stopped the job."
        )
        if reason.transient and _may_send_again(generation):
            _send_again(generation, reason)
        else:
            _fail(generation, reason, from_=Status.IN_PROGRESS)
        return
    delay = _poll_delay(generation, job)
    still_running = Generation.objects.filter(pk=generation.pk, status=Status.IN_PROGRESS).update(
        progress=job.progress,
        next_poll_at=now + timedelta(seconds=delay),
        updated_at=now,
        **polled,
    )
    if still_running:
        _enqueue_poll(generation, generation.poll_count, delay=delay)


def _may_send_again(generation: Generation) -> bool:
    return (
        generation.provider_retries < MAX_PROVIDER_RETRIES
        and timezone.now() - generation.created_at < MAX_RETRY_AGE
    )


def _send_again(generation: Generation, reason: ProviderError) -> None:
    """The provider failed this job for its own reasons: queue a fresh create after a backoff."""
    wait = _delay(_backoff(generation.provider_retries + 2, cap=300))
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


def _handle_poll_error(generation: Generation, error: ProviderError) -> None:

    logger.warning("generation %s: status check failed: %r", generation.pk, error)
    if error.error_class in CHANNEL_HALTING:
        channel_halt(channel=generation.channel, reason=_halt_reason(error))
    started = generation.submitted_at or generation.created_at
    too_old = timezone.now() - started > MAX_PROVIDER_AGE
    if error.error_class in (ErrorClass.NOT_FOUND, ErrorClass.EXPIRED) or too_old:
        _fail(generation, error, from_=Status.IN_PROGRESS)
        return
    # Rate limits, outages and even a revoked key are waited out: the job keeps running at the
    # provider, and its result is still ours once the channel works again.
    wait = error.retry_after if error.retry_after is not None else _backoff(4, cap=60)
    _schedule_poll(generation, delay=_delay(max(wait, 1.0)))


def _store_variant(generation: Generation, adapter: VideoAdapter, variant: str) -> str:
    """Download one file and store it, but only when its bytes are a media type we serve.

    The provider's Content-Type is ignored: a gateway could label an HTML page ``video/mp4``,
    and we would then serve its script from our own origin to every member of the project.
    """
    assert generation.provider_job_id is not None
    with tempfile.TemporaryFile() as scratch:
        claimed = adapter.download(generation.provider_job_id, variant=variant, destination=scratch)
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
        name = f"generations/{generation.project_id}/{generation.pk}/{variant}.{media.extension}"
        # A repeated download overwrites the same name instead of piling up copies.
        if default_storage.exists(name):
            default_storage.delete(name)
        scratch.seek(0)
        return default_storage.save(name, File(scratch))


def generation_download(*, generation_id: str) -> None:
    """Copy a finished job's files into our own storage; completed once the video is stored.

    The video comes first and makes the generation playable at once; the poster and the
    spritesheet follow in the same job (each is one more request under the channel's limit,
    and nobody should wait for a thumbnail to watch the video). A poster that cannot be fetched
    leaves the player without one, nothing more.
    """
    from workspace.generations import jobs

    generation = Generation.objects.select_related("channel").get(pk=generation_id)
    if generation.status != Status.DOWNLOADING:
        return
    adapter = adapter_for_channel(channel=generation.channel)
    try:
        try:
            video = _store_variant(generation, adapter, adapter.variants[0])
        except Throttled as throttled:
            enqueue_on_commit(jobs.generation_download_job, generation_id, delay=throttled.wait)
            return
        except ProviderError as error:
            logger.warning("generation %s: download failed: %r", generation.pk, error)
            if error.transient and timezone.now() - generation.updated_at < MAX_PROVIDER_AGE:
                wait = error.retry_after if error.retry_after is not None else _backoff(3, cap=60)
                Generation.objects.filter(pk=generation.pk, status=Status.DOWNLOADING).update(
                    error_class=error.error_class.value, error_message=error.message[:2000]
                )
                enqueue_on_commit(jobs.generation_download_job, generation_id, delay=_delay(wait))
            else:
                _fail(generation, error, from_=Status.DOWNLOADING)
            return
        if generation.transition(
            Status.COMPLETED,
            from_=Status.DOWNLOADING,
            completed_at=timezone.now(),
            error_class="",
            error_message="",
            video=video,
        ):
            reservation_settle(generation=generation)
            logger.info("generation %s completed", generation.pk)
        extras: dict[str, str] = {}
        for variant in adapter.variants[1:]:
            if variant not in ("thumbnail", "spritesheet"):
                continue
            try:
                extras[variant] = _store_variant(generation, adapter, variant)
            except (Throttled, ProviderError) as error:
                logger.warning("generation %s: no %s: %r", generation.pk, variant, error)
        if extras:
            Generation.objects.filter(pk=generation.pk, status=Status.COMPLETED).update(**extras)
    finally:
        adapter.close()


# --- Recovery ---------------------------------------------------------------------------------


def generations_resume_stalled(*, stale_after: timedelta = timedelta(minutes=2)) -> int:
    """Re-enqueue the next step of every generation whose job seems lost (e.g. Redis restarted).

    Returns how many steps it enqueued: one dispatch kick per channel with queued work, plus one
    job per stalled generation that the provider already has.
    The database is the queue of record; every job is a conditional update, so a generation that
    was not actually stalled merely gets a harmless duplicate.
    """
    from workspace.generations import jobs

    cutoff = timezone.now() - stale_after
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
    stalled = Generation.objects.filter(status__in=list(steps), updated_at__lt=cutoff).only(
        "id", "status", "next_attempt_at", "next_poll_at"
    )
    for generation in stalled.iterator():
        if generation.status == Status.IN_PROGRESS and (
            generation.next_poll_at and generation.next_poll_at >= cutoff
        ):
            continue  # its next check is scheduled and not overdue
        if generation.next_attempt_at and generation.next_attempt_at > timezone.now():
            continue
        enqueue_on_commit(steps[Status(generation.status)], str(generation.pk))
        resumed += 1
    return resumed
