"""The generation pipeline against the real simulator, with real RQ workers and real Redis."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from workspace.generations import following, recovery, sending, submission
from workspace.generations.dispatch import channel_dispatch_once, channel_resume_dispatch
from workspace.generations.models import Generation, Status
from workspace.providers.errors import ErrorClass
from workspace.providers.models import Channel
from workspace.providers.services import limiter_for_channel

pytestmark = pytest.mark.django_db(transaction=True)


def submit(project, user, prompt: str = "A lighthouse in fog", **overrides):  # type: ignore[no-untyped-def]
    fields = {"model": "sora-2", "size": "1280x720", "seconds": 4, **overrides}
    return submission.generation_submit(project=project, user=user, prompt=prompt, **fields)


def send_now(generation: Generation) -> None:
    """Send the next create of the generation's channel in this process, as a lane would."""
    channel = generation.channel
    sent = channel_dispatch_once(
        channel=channel, limiter=limiter_for_channel(channel=channel), max_wait=5
    )
    assert sent is not None
    assert sent.pk == generation.pk


def finished(generation: Generation):  # type: ignore[no-untyped-def]
    return lambda: Generation.objects.get(pk=generation.pk).is_terminal


def test_a_generation_runs_to_completion_and_its_files_are_stored(
    project, teammate, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    generation = submit(project, teammate)
    run_workers(finished(generation))
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED, generation.error_message
    assert generation.progress == 100
    assert generation.provider_job_id and generation.provider_job_id.startswith("video_")
    with default_storage.open(generation.video.name) as video:
        assert video.read(12)[4:8] == b"ftyp"
    for image in (generation.thumbnail, generation.spritesheet):
        with default_storage.open(image.name) as handle:
            assert handle.read(3) == b"\xff\xd8\xff"
    # Each file's size is recorded as it is stored: the usage panel sums it, never the store.
    assert generation.stored_bytes == sum(
        default_storage.size(f.name)
        for f in (generation.video, generation.thumbnail, generation.spritesheet)
    )
    counters = simulator.counters()
    assert counters["creates"] == 1
    assert counters["jobs_billed"] == 1
    assert counters["downloads"] == 3


@pytest.mark.parametrize(
    ("trigger", "error_class"),
    [("[moderation]", ErrorClass.MODERATION), ("[processing_error]", ErrorClass.OVERLOADED)],
)
def test_a_job_the_provider_fails_ends_failed_with_its_reason(
    project, teammate, simulator, run_workers, trigger, error_class
) -> None:  # type: ignore[no-untyped-def]
    generation = submit(project, teammate, prompt=f"A harbour at night {trigger}")
    run_workers(finished(generation))
    generation.refresh_from_db()
    assert generation.status == Status.FAILED
    assert generation.error_class == error_class
    assert generation.error_message  # the provider's own words
    assert not generation.video
    if error_class == ErrorClass.OVERLOADED:
        # "Under heavy load" is the provider's trouble: it was sent again, a bounded number of times.
        assert generation.provider_retries == 3
        assert len(generation.provider_job_history) == 3
        assert simulator.counters()["creates"] == 4
    else:
        assert simulator.counters()["creates"] == 1


def test_an_exhausted_balance_halts_the_channel_and_holds_the_work(project, teammate, owner, channel, simulator, run_workers, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The worker is another process: it writes its mail to files this test can read.
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    owner.is_staff, owner.email = True, "olivia@example.com"
    owner.save()
    simulator.update_config(insufficient_quota=True)
    generation = submit(project, teammate)
    channel.refresh_from_db()
    run_workers(lambda: Channel.objects.get(pk=channel.pk).halted_at is not None)
    generation.refresh_from_db()
    # Not failed: the work waits for an admin, who was told in plain words.
    assert (generation.status, generation.error_class) == (Status.QUEUED, ErrorClass.QUOTA_EXHAUSTED)
    assert generation.submit_attempts == 0
    assert simulator.counters()["creates"] == 0
    mails = [p.read_text() for p in (tmp_path / "mail").iterdir()]
    assert len(mails) == 1
    assert "To: olivia@example.com" in mails[0]
    assert "run out of credit" in mails[0]
    halted = Channel.objects.get(pk=channel.pk)
    assert "credit" in halted.halted_reason
    from workspace.core.models import Notification

    alert = Notification.objects.get(user=owner)  # in the app too, for every admin
    assert "halted" in alert.title
    # The admin tops up the account and resumes the channel: the held work goes through.
    simulator.update_config(insufficient_quota=False)
    channel_resume_dispatch(channel=halted)
    run_workers(finished(generation))
    assert Generation.objects.get(pk=generation.pk).status == Status.COMPLETED


@pytest.mark.parametrize(
    "fault", [{"reset_after_create_rate": 1.0}, {"fail_5xx_after_create_rate": 1.0}]
)
def test_an_ambiguous_create_is_adopted_never_paid_twice(
    project, teammate, simulator, run_workers, fault
) -> None:  # type: ignore[no-untyped-def]
    generation = submit(project, teammate)
    simulator.update_config(**fault)
    send_now(generation)
    generation.refresh_from_db()
    assert (generation.status, generation.error_class) == (
        Status.SUBMITTING,
        ErrorClass.AMBIGUOUS_CREATE,
    )
    simulator.update_config(reset_after_create_rate=0.0, fail_5xx_after_create_rate=0.0)
    run_workers(finished(generation))
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    assert simulator.counters()["creates"] == 1
    assert generation.provider_job_id == simulator.creates()[0]["id"]


def test_a_create_slower_than_the_timeout_is_adopted(
    project, teammate, simulator, run_workers, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.PROVIDER_READ_TIMEOUT = 0.3
    simulator.update_config(slow_rate=1.0, slow_seconds=1.0)
    generation = submit(project, teammate)
    send_now(generation)
    simulator.update_config(slow_rate=0.0)
    run_workers(finished(generation))
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    assert simulator.counters()["creates"] == 1


def test_a_create_that_never_arrived_is_sent_again_once(
    project, teammate, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(reset_rate=1.0)
    generation = submit(project, teammate)
    send_now(generation)
    simulator.update_config(reset_rate=0.0)
    run_workers(finished(generation))
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    assert generation.submit_attempts == 2
    assert simulator.counters()["creates"] == 1


def test_duplicated_jobs_change_nothing(project, teammate, simulator, run_workers) -> None:  # type: ignore[no-untyped-def]
    generation = submit(project, teammate)
    run_workers(finished(generation))
    before = Generation.objects.get(pk=generation.pk)
    key = str(generation.pk)
    channel = generation.channel
    limiter = limiter_for_channel(channel=channel)
    assert channel_dispatch_once(channel=channel, limiter=limiter, max_wait=5) is None
    sending.generation_reconcile_create(generation_id=key)
    following.generation_poll(generation_id=key)
    following.generation_download(generation_id=key)
    after = Generation.objects.get(pk=generation.pk)
    assert (after.status, after.updated_at, after.video.name) == (
        before.status,
        before.updated_at,
        before.video.name,
    )
    assert simulator.counters()["creates"] == 1


def test_outputs_that_expired_before_download_are_reported(project, teammate, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(content_ttl_seconds=0.001)
    generation = submit(project, teammate)
    key = str(generation.pk)
    send_now(generation)
    for _ in range(2000):  # the simulated render finishes within a few hundred status calls
        following.generation_poll(generation_id=key)
        if Generation.objects.get(pk=key).status != Status.IN_PROGRESS:
            break
    following.generation_download(generation_id=key)
    generation.refresh_from_db()
    assert (generation.status, generation.error_class) == (Status.FAILED, ErrorClass.EXPIRED)


def test_the_sweeper_resumes_work_lost_with_redis(
    project, teammate, simulator, run_workers, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    generation = submit(project, teammate)
    redis_conn.flushdb()  # the queued job is gone, as after a restart of the embedded Redis
    assert recovery.generations_resume_stalled(stale_after=timedelta(0)) == 1
    run_workers(finished(generation))
    assert Generation.objects.get(pk=generation.pk).status == Status.COMPLETED


def test_a_retry_never_adopts_its_own_failed_predecessor(project, teammate, simulator, run_workers) -> None:  # type: ignore[no-untyped-def]
    # The provider fails the first job for its own reasons; the retry's create then has an
    # unknown outcome. Reconciliation must adopt the retry's job, not the failed first one.
    generation = submit(project, teammate, prompt="Harbour lights")
    simulator.update_config(processing_error_rate=1.0)
    send_now(generation)
    key = str(generation.pk)
    for _ in range(2000):  # bounded: the simulated render fails within a few hundred checks
        following.generation_poll(generation_id=key)
        if Generation.objects.get(pk=key).status != Status.IN_PROGRESS:
            break
    generation.refresh_from_db()
    assert generation.status == Status.QUEUED
    first_job = generation.provider_job_history[-1]
    simulator.update_config(processing_error_rate=0.0, reset_after_create_rate=1.0)
    Generation.objects.filter(pk=key).update(next_attempt_at=None)
    send_now(generation)
    simulator.update_config(reset_after_create_rate=0.0)
    run_workers(finished(generation))
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    assert generation.provider_job_id != first_job
    assert simulator.counters()["jobs_billed"] == 1


def test_matching_skips_earlier_attempts_and_prefers_the_closest_job(project, teammate, redis_conn) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from workspace.generations.sending import _match_candidate
    from workspace.providers.adapters.base import JobStatus, ProviderJob

    generation = submit(project, teammate, prompt="Harbour lights")
    sent = timezone.now()
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.SUBMITTING, submit_started_at=sent, provider_job_history=["video_first"]
    )
    generation.refresh_from_db()

    def job(job_id: str, seconds_before: float) -> ProviderJob:
        return ProviderJob(
            id=job_id, status=JobStatus.IN_PROGRESS, model="sora-2", prompt="Harbour lights",
            size="1280x720", seconds=4, created_at=sent - timedelta(seconds=seconds_before),
        )

    candidates = [job("video_retry", 0), job("video_first", 20), job("video_stranger", 50)]
    assert _match_candidate(generation, candidates).id == "video_retry"  # type: ignore[union-attr]
    assert _match_candidate(generation, [job("video_first", 20)]) is None


def test_a_worker_that_died_after_sending_is_recovered_without_a_second_create(project, teammate, simulator, run_workers) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from workspace.generations.dispatch import _claim_next
    from workspace.providers.adapters.base import VideoRequest
    from workspace.providers.services import adapter_for_channel, limiter_for_channel

    generation = submit(project, teammate, prompt="Night train")
    # What a SIGKILLed worker leaves behind: the claim committed, the create sent and accepted
    # by the provider, and nothing recorded after it.
    claimed, _ = _claim_next(generation.channel, limiter_for_channel(channel=generation.channel))
    assert claimed is not None
    assert claimed.pk == generation.pk
    adapter_for_channel(channel=generation.channel).create(
        VideoRequest(model="sora-2", prompt="Night train", size="1280x720", seconds=4)
    )
    assert Generation.objects.get(pk=generation.pk).status == Status.SUBMITTING
    # The recovery sweep finds it and reconciles instead of sending again.
    assert recovery.generations_resume_stalled(stale_after=timedelta(0)) >= 1
    run_workers(finished(generation))
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    assert simulator.counters()["creates"] == 1
    assert generation.provider_job_id == simulator.creates()[0]["id"]
