"""After a restore: the dump's queued work is checked against the provider before it is sent,
and finished videos whose files the restored store lacks are fetched again or marked lost.
The whole drill (processes, a hot backup, a fresh database and an empty Redis) is
bench/restore_drill.py; tests/bench/test_restore_drill_short.py runs it small."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from workspace.billing.models import LedgerEntry
from workspace.generations import following, recovery, submission
from workspace.generations.models import Generation, Status
from workspace.providers.adapters.base import VideoRequest
from workspace.providers.models import SIMULATOR_KEY
from workspace.providers.services import adapter_for_channel

pytestmark = pytest.mark.django_db(transaction=True)


def submit(project, user, prompt: str) -> Generation:  # type: ignore[no-untyped-def]
    return submission.generation_submit(
        project=project, user=user, prompt=prompt, model="sora-2", size="1280x720", seconds=4
    )


def finished(generation: Generation):  # type: ignore[no-untyped-def]
    return lambda: Generation.objects.get(pk=generation.pk).is_terminal


def restored_with_an_empty_redis(redis_conn, **options) -> int:  # type: ignore[no-untyped-def]
    """What `manage restore` and the scheduler's first sweep do, in this process."""
    redis_conn.flushdb()
    moved = recovery.generations_prepare_after_restore(**options)
    recovery.generations_resume_stalled(jobs_lost=True)
    return moved


def test_a_queued_generation_the_lost_system_sent_after_the_dump_is_adopted(
    project, teammate, simulator, run_workers, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    generation = submit(project, teammate, "A lighthouse in fog")
    other = submit(project, teammate, "A harbour at dawn")
    # The dump shows both queued; after it, the lost system sent the first one's create.
    lost_system_job = adapter_for_channel(channel=generation.channel).create(
        VideoRequest(model="sora-2", prompt="A lighthouse in fog", size="1280x720", seconds=4)
    )
    assert restored_with_an_empty_redis(redis_conn) == 2
    assert set(Generation.objects.values_list("status", flat=True)) == {Status.SUBMITTING}
    run_workers(lambda: finished(generation)() and finished(other)())
    generation.refresh_from_db()
    other.refresh_from_db()
    assert (generation.status, other.status) == (Status.COMPLETED, Status.COMPLETED)
    assert generation.provider_job_id == lost_system_job.id  # adopted, not created again
    counters = simulator.counters()
    assert counters["creates"] == 2  # the lost system's, and the other one sent once now
    spent = sum(LedgerEntry.objects.values_list("spent_cents", flat=True))
    assert spent == counters["billed_cents"]


def test_without_the_check_the_same_restore_pays_twice(
    project, teammate, simulator, run_workers, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    # The trap the check closes, shown: a dump trusted as cold although it was not.
    generation = submit(project, teammate, "A lighthouse in fog")
    adapter_for_channel(channel=generation.channel).create(
        VideoRequest(model="sora-2", prompt="A lighthouse in fog", size="1280x720", seconds=4)
    )
    assert restored_with_an_empty_redis(redis_conn, queued_may_have_been_sent=False) == 0
    assert Generation.objects.get(pk=generation.pk).status == Status.QUEUED
    run_workers(finished(generation))
    assert simulator.counters()["creates"] == 2


def test_the_check_looks_only_at_jobs_made_since_the_dump(project, teammate, redis_conn) -> None:  # type: ignore[no-untyped-def]
    generation = submit(project, teammate, "A lighthouse in fog")
    latest = Generation.objects.get(pk=generation.pk).updated_at
    recovery.generations_prepare_after_restore()
    generation.refresh_from_db()
    assert generation.status == Status.SUBMITTING
    assert generation.submit_started_at == latest
    assert generation.submit_attempts == 0  # nothing was sent by this system


def stored(project, user, simulator, run_workers, prompt: str) -> Generation:  # type: ignore[no-untyped-def]
    generation = submit(project, user, prompt)
    run_workers(finished(generation))
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    return generation


def test_a_lost_file_the_provider_still_has_is_fetched_again(
    project, teammate, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    generation = stored(project, teammate, simulator, run_workers, "A lighthouse in fog")
    kept = generation.thumbnail.name
    default_storage.delete(generation.video.name)
    creates = simulator.counters()["creates"]
    assert following.generations_files_check() == [str(generation.pk)]
    run_workers(lambda: default_storage.exists(generation.video.name))
    refetched = Generation.objects.get(pk=generation.pk)
    assert refetched.video.name == generation.video.name
    assert refetched.thumbnail.name == kept  # what was not lost is left alone
    with default_storage.open(refetched.video.name) as video:
        assert video.read(12)[4:8] == b"ftyp"
    assert simulator.counters()["creates"] == creates  # fetched, not made again
    assert following.generations_files_check(enqueue=False) == []


def test_a_lost_file_fetched_while_retention_removed_the_row_is_not_put_back(
    project, teammate, simulator, run_workers, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    generation = stored(project, teammate, simulator, run_workers, "A lighthouse in fog")
    default_storage.delete(generation.video.name)
    fetch = following._store_variant

    def retention_meanwhile(*args, **kwargs):  # type: ignore[no-untyped-def]
        name, size = fetch(*args, **kwargs)
        Generation.objects.filter(pk=generation.pk).update(
            files_removed_at=timezone.now(), video="", thumbnail="", spritesheet=""
        )
        return name, size

    monkeypatch.setattr(following, "_store_variant", retention_meanwhile)
    following.generation_refetch_files(generation_id=str(generation.pk))
    generation.refresh_from_db()
    assert generation.files_removed_at is not None and not generation.video
    assert not default_storage.exists(generation.storage_name("video.mp4"))


def test_a_lost_file_the_provider_no_longer_has_is_marked_lost(
    project, teammate, simulator, run_workers, signed_in
) -> None:  # type: ignore[no-untyped-def]
    generation = stored(project, teammate, simulator, run_workers, "A lighthouse in fog")
    default_storage.delete(generation.video.name)
    deleted = httpx.delete(
        f"{simulator.url}/v1/videos/{generation.provider_job_id}",
        headers={"Authorization": f"Bearer {SIMULATOR_KEY}"},
    )
    assert deleted.status_code == 200
    following.generation_refetch_files(generation_id=str(generation.pk))
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED  # it was made and paid for
    assert not generation.video
    assert generation.thumbnail  # still there
    assert "lost" in generation.error_message
    # Storage used counts what the store holds now, not the size the dump recorded.
    assert generation.stored_bytes == sum(
        default_storage.size(f.name) for f in (generation.thumbnail, generation.spritesheet)
    )
    client = signed_in(teammate)
    for page in (
        reverse("projects:detail", args=[project.pk]),
        reverse("generations:detail", args=[project.pk, generation.pk]),
    ):
        assert "The stored video was lost" in client.get(page).content.decode(), page
    assert following.generations_files_check(enqueue=False) == []


def test_an_expired_provider_copy_is_marked_without_asking_the_provider(
    project, teammate, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    generation = stored(project, teammate, simulator, run_workers, "A lighthouse in fog")
    Generation.objects.filter(pk=generation.pk).update(
        provider_expires_at=timezone.now() - timedelta(minutes=1)
    )
    for name in (generation.video.name, generation.thumbnail.name):
        default_storage.delete(name)
    requests = simulator.counters()["requests_total"]
    following.generation_refetch_files(generation_id=str(generation.pk))
    generation.refresh_from_db()
    assert not generation.video and not generation.thumbnail
    assert generation.spritesheet  # its file is still stored
    assert "its copy expired" in generation.error_message
    assert generation.stored_bytes == default_storage.size(generation.spritesheet.name)
    assert simulator.counters()["requests_total"] == requests


def test_a_generation_the_dump_caught_saving_is_fetched_again_and_billed_once(
    project, teammate, simulator, run_workers, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    generation = stored(project, teammate, simulator, run_workers, "A lighthouse in fog")
    # The dump caught it between the provider finishing and the video being stored; the media
    # copy taken after the dump holds the file, the restored database names none.
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.DOWNLOADING, video="", thumbnail="", spritesheet="", completed_at=None
    )
    LedgerEntry.objects.filter(kind="settle").delete()
    assert restored_with_an_empty_redis(redis_conn) == 0
    run_workers(finished(generation))
    restored = Generation.objects.get(pk=generation.pk)
    assert restored.status == Status.COMPLETED
    assert restored.video.name == generation.video.name  # the same name, overwritten
    counters = simulator.counters()
    assert counters["creates"] == 1
    spent = sum(LedgerEntry.objects.values_list("spent_cents", flat=True))
    assert spent == counters["billed_cents"]
