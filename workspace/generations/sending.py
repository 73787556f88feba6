"""Sending a claimed generation's create to the provider, and resolving creates whose outcome
is unknown (reconcile, or hold it for an admin)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from workspace.core.notify import admins_notify
from workspace.core.rq import enqueue_on_commit
from workspace.generations import jobs
from workspace.generations.following import poll_delay, schedule_poll
from workspace.generations.lanes import channel_kick_on_commit
from workspace.generations.models import CHANGING_OPERATIONS, Generation, Status
from workspace.generations.outcomes import CHANNEL_HALTING, backoff, fail, halt_reason, scaled_delay
from workspace.providers.adapters.base import InputImage, ProviderJob, VideoRequest
from workspace.providers.adapters.base import Operation as AdapterOperation
from workspace.providers.errors import CreateOutcome, ErrorClass, ProviderError
from workspace.providers.limiter import ChannelLimiter, Throttled
from workspace.providers.services import adapter_for_channel, channel_halt

logger = logging.getLogger(__name__)


# How often a create that provably never reached the provider is tried again before giving up.
MAX_SUBMIT_ATTEMPTS = 8
# A create with an unknown outcome is matched against the provider's list for this long.
RECONCILE_WINDOW = timedelta(minutes=10)


def send_create(*, generation: Generation, limiter: ChannelLimiter) -> None:
    """Send the create for a generation this process has just claimed (status ``submitting``).

    The row was committed as ``submitting`` before this call, so a crash or a duplicated job
    finds it there and reconciles instead of creating a second, separately billed job.
    """
    try:
        request = video_request_for(generation)
    except SourceGone as gone:
        fail(
            generation,
            ProviderError(ErrorClass.INVALID_REQUEST, str(gone)),
            from_=Status.SUBMITTING,
        )
        return
    adapter = adapter_for_channel(channel=generation.channel, limiter=limiter)
    try:
        job = adapter.create(request)
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


class SourceGone(Exception):
    """What a request is made from can no longer be sent (a file or a provider copy is gone)."""


def video_request_for(generation: Generation) -> VideoRequest:
    """The provider-neutral request for a generation: its prompt, options, images and source."""
    options = generation.options or {}
    images = []
    for item in generation.inputs.all():
        try:
            with item.image.open("rb") as handle:
                content = handle.read()
        except (OSError, ValueError) as error:
            raise SourceGone(
                f"Its {item.get_role_display().lower()} could not be read ({error}); nothing "
                "was sent."
            ) from None
        images.append(
            InputImage(
                role=item.role,
                content=content,
                content_type=item.content_type,
                width=item.width,
                height=item.height,
                filename=(item.image.name or "input").rsplit("/", 1)[-1],
            )
        )
    source_job_id = None
    if generation.operation in CHANGING_OPERATIONS:
        parent = generation.parent
        if parent is None or not parent.provider_job_id:
            raise SourceGone("The video it changes is gone, so there is nothing to send.")
        if parent.provider_expires_at is not None and parent.provider_expires_at <= timezone.now():
            raise SourceGone(
                "The provider's copy of the video it changes expired before it could be sent."
            )
        source_job_id = parent.provider_job_id
    return VideoRequest(
        model=generation.model,
        prompt=generation.prompt,
        size=generation.size,
        seconds=generation.seconds,
        operation=AdapterOperation(generation.operation),
        source_job_id=source_job_id,
        source_seconds=generation.source_seconds,
        images=tuple(images),
        characters=tuple(
            c.provider_character_id for c in generation.characters.all() if c.provider_character_id
        ),
        audio=options.get("audio"),
        seed=options.get("seed"),
        negative_prompt=options.get("negative_prompt", ""),
    )


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
        schedule_poll(generation, delay=poll_delay(generation, job))


def _handle_create_error(generation: Generation, error: ProviderError) -> None:

    logger.warning("generation %s: create failed: %r", generation.pk, error)
    if error.create_outcome is CreateOutcome.AMBIGUOUS:
        # The provider may have started (and will bill) a job: find it before anything else.
        Generation.objects.filter(pk=generation.pk, status=Status.SUBMITTING).update(
            error_class=ErrorClass.AMBIGUOUS_CREATE.value, error_message=error.message[:2000]
        )
        enqueue_on_commit(jobs.generation_reconcile_job, str(generation.pk), delay=scaled_delay(2))
        return
    if error.error_class is ErrorClass.RATE_LIMITED:
        # The channel is paused for everyone (limiter pushback); this is waiting, not failing.
        _requeue(generation, error, wait=0, refund_attempt=True)
        return
    if error.error_class in CHANNEL_HALTING:
        # No retry fixes a refused key or an empty account: hold the work, call an admin.
        channel_halt(channel=generation.channel, reason=halt_reason(error))
        _requeue(generation, error, wait=0, refund_attempt=True)
        return
    if error.transient and generation.submit_attempts < MAX_SUBMIT_ATTEMPTS:
        wait = (
            error.retry_after
            if error.retry_after is not None
            else backoff(generation.submit_attempts)
        )
        _requeue(generation, error, wait=wait)
        return
    fail(generation, error, from_=Status.SUBMITTING)


def _requeue(
    generation: Generation,
    error: ProviderError | None,
    *,
    wait: float,
    refund_attempt: bool = False,
) -> None:
    wait = scaled_delay(wait)
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

    generation = Generation.objects.select_related("channel").get(pk=generation_id)
    if generation.status != Status.SUBMITTING or generation.submit_started_at is None:
        return
    adapter = adapter_for_channel(channel=generation.channel)
    if not adapter.can_list:
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
                jobs.generation_reconcile_job, generation_id, delay=scaled_delay(backoff(3, cap=60))
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
    if timezone.now() - generation.submit_started_at < timedelta(seconds=scaled_delay(30)):
        # A job can show up in the list a moment after the create; look again before deciding.
        enqueue_on_commit(jobs.generation_reconcile_job, generation_id, delay=scaled_delay(10))
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
    source_job_id = generation.parent.provider_job_id if generation.parent is not None else None
    matches = [
        c
        for c in candidates
        if c.id not in taken
        and c.model == generation.model
        and c.size == generation.size
        # An extension's job may report the stitched length (OpenAI does) or the segment's.
        and c.seconds in (generation.seconds, generation.total_seconds)
        and (c.prompt is None or c.prompt == generation.prompt)
        and (c.created_at is None or c.created_at >= earliest)
        # A job that names its source (a remix) must name this generation's source.
        and (c.source_id is None or c.source_id == source_job_id)
    ]
    # Closest to this attempt's send: clock skew aside, that is the one it created.
    started = generation.submit_started_at
    matches.sort(key=lambda c: abs(((c.created_at or started) - started).total_seconds()))
    return matches[0] if matches else None
