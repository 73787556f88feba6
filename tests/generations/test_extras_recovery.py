"""Posters and spritesheets are recoverable from the database: a finished video whose poster
went with an emptied Redis (or with a worker that died before fetching it) gets it back from
the scheduler's sweep, once, and only while the provider still has it and retention kept it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.db.models import F
from django.utils import timezone

from workspace.generations import following, submission
from workspace.generations.models import Generation, Status

pytestmark = pytest.mark.django_db(transaction=True)


def finished_without_its_poster(project, user, run_workers) -> tuple[Generation, int]:  # type: ignore[no-untyped-def]
    """A stored video whose worker died before its poster was attached (the file never made it)."""
    generation = submission.generation_submit(
        project=project,
        user=user,
        prompt="A lighthouse in fog",
        model="sora-2",
        size="1280x720",
        seconds=4,
    )
    run_workers(lambda: Generation.objects.get(pk=generation.pk).status == Status.COMPLETED)
    run_workers(lambda: bool(Generation.objects.get(pk=generation.pk).thumbnail))
    generation.refresh_from_db()
    poster_bytes = default_storage.size(generation.thumbnail.name)
    default_storage.delete(generation.thumbnail.name)
    Generation.objects.filter(pk=generation.pk).update(
        thumbnail="",
        stored_bytes=F("stored_bytes") - poster_bytes,
        completed_at=timezone.now() - timedelta(minutes=5),
    )
    return Generation.objects.get(pk=generation.pk), poster_bytes


def waiting(generation: Generation, redis_conn) -> list[str]:  # type: ignore[no-untyped-def]
    key = following._extras_key(generation.channel_id)
    return sorted(m.decode() for m in redis_conn.zrange(key, 0, -1))


def test_a_poster_lost_with_redis_is_fetched_again_by_the_sweep(
    project, teammate, simulator, run_workers, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    generation, poster_bytes = finished_without_its_poster(project, teammate, run_workers)
    redis_conn.flushdb()
    assert following.generations_extras_recover() == 1
    assert following.generations_extras_recover() == 0  # the second sweep adds nothing
    assert waiting(generation, redis_conn) == [f"{generation.pk}:thumbnail"]
    run_workers(lambda: bool(Generation.objects.get(pk=generation.pk).thumbnail))
    recovered = Generation.objects.get(pk=generation.pk)
    assert default_storage.exists(recovered.thumbnail.name)
    assert recovered.stored_bytes == generation.stored_bytes + poster_bytes
    assert following.generations_extras_recover() == 0  # nothing missing any more


def test_a_just_completed_video_is_left_to_its_worker(
    project, teammate, simulator, run_workers, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    generation, _ = finished_without_its_poster(project, teammate, run_workers)
    Generation.objects.filter(pk=generation.pk).update(completed_at=timezone.now())
    assert following.generations_extras_recover() == 0


@pytest.mark.parametrize(
    "change",
    [
        {"provider_expires_at": timezone.now() - timedelta(seconds=1)},
        {"files_removed_at": timezone.now()},
        {"completed_at": timezone.now() - timedelta(hours=2)},
    ],
    ids=["provider-copy-expired", "removed-by-retention", "older-than-the-window"],
)
def test_what_cannot_or_need_not_be_fetched_is_left_alone(
    project, teammate, simulator, run_workers, redis_conn, change
) -> None:  # type: ignore[no-untyped-def]
    generation, _ = finished_without_its_poster(project, teammate, run_workers)
    Generation.objects.filter(pk=generation.pk).update(**change)
    redis_conn.flushdb()
    assert following.generations_extras_recover() == 0
    assert waiting(generation, redis_conn) == []


def test_a_poster_the_provider_refused_is_not_asked_for_at_every_sweep(
    project, teammate, simulator, run_workers, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    generation, _ = finished_without_its_poster(project, teammate, run_workers)
    following._extras_give_up(generation.channel_id, f"{generation.pk}:thumbnail")
    assert following.generations_extras_recover() == 0


def test_a_second_copy_of_an_attached_poster_is_neither_counted_nor_kept(
    project, teammate, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    generation = submission.generation_submit(
        project=project,
        user=teammate,
        prompt="A harbour at dawn",
        model="sora-2",
        size="1280x720",
        seconds=4,
    )
    run_workers(lambda: bool(Generation.objects.get(pk=generation.pk).thumbnail))
    generation.refresh_from_db()
    with default_storage.open(generation.thumbnail.name) as poster:
        spare = default_storage.save(generation.storage_name("spare.jpg"), poster)
    # The same name, overwritten by a repeated download: the attached file stays.
    following._attach_extra(generation, "thumbnail", generation.thumbnail.name, 999)
    # Another name (two downloads at once): the spare copy goes.
    following._attach_extra(generation, "thumbnail", spare, 999)
    after = Generation.objects.get(pk=generation.pk)
    assert after.thumbnail.name == generation.thumbnail.name
    assert default_storage.exists(after.thumbnail.name)
    assert not default_storage.exists(spare)
    assert after.stored_bytes == generation.stored_bytes
