"""The mark that tells the scheduler Redis lost everything it held."""

from __future__ import annotations

import redis

from workspace.core.rq import redis_data_lost, redis_mark


def test_redis_counts_as_lost_until_marked_and_again_after_a_flush(
    redis_conn: redis.Redis,
) -> None:
    assert redis_data_lost()
    redis_mark()
    assert not redis_data_lost()
    redis_conn.flushdb()
    assert redis_data_lost()
