"""The recovery scheduler: it notices at once when Redis lost everything it held."""

from __future__ import annotations

import pytest
import redis
from django.core.management import call_command

from workspace.core.rq import redis_data_lost, redis_mark
from workspace.generations.dispatch import channel_dispatch_once
from workspace.generations.models import Generation, Status
from workspace.generations.submission import generation_submit
from workspace.providers.services import limiter_for_channel


def test_redis_counts_as_lost_until_marked_and_again_after_a_flush(
    redis_conn: redis.Redis,
) -> None:
    assert redis_data_lost()
    redis_mark()
    assert not redis_data_lost()
    redis_conn.flushdb()
    assert redis_data_lost()


@pytest.mark.django_db(transaction=True)
def test_after_redis_lost_everything_work_in_flight_resumes_at_the_next_sweep(  # type: ignore[no-untyped-def]
    project, teammate, simulator, run_workers, redis_conn
) -> None:
    generation = generation_submit(
        project=project,
        user=teammate,
        prompt="A lighthouse in fog",
        model="sora-2",
        size="1280x720",
        seconds=4,
    )
    channel = generation.channel
    sent = channel_dispatch_once(
        channel=channel, limiter=limiter_for_channel(channel=channel), max_wait=5
    )
    assert sent is not None and sent.pk == generation.pk
    generation.refresh_from_db()
    assert generation.status == Status.IN_PROGRESS
    assert generation.next_poll_at is not None  # its status check was scheduled in Redis ...
    redis_conn.flushdb()  # ... and is gone, with the mark: Redis restarted empty

    # Recent progress, so a plain sweep would wait two minutes; the lost mark makes it resume now.
    call_command("reelhouse_scheduler", "--once")
    assert not redis_data_lost()
    run_workers(lambda: Generation.objects.get(pk=generation.pk).is_terminal)
    assert Generation.objects.get(pk=generation.pk).status == Status.COMPLETED
