"""Provider calls by channel, outcome and error class, counted in Redis for every process.

The HTTP layer classifies each call once (http.py); counting there, in one hash shared by every
web and RQ process on every machine, lets the metrics endpoint report the totals at scrape time
without per-process counters that die with their worker. The counts live as long as Redis's
data: a Redis that restarts empty starts them again from zero, which Prometheus reads as a
counter reset.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

logger = logging.getLogger(__name__)

PROVIDER_CALLS_KEY = "reelhouse:metrics:provider-calls"


class ChannelCallCounter:
    def __init__(self, connection: redis.Redis, *, channel_id: int) -> None:
        self._redis = connection
        self._channel_id = channel_id

    def count(self, *, outcome: str, error_class: str) -> None:
        try:
            self._redis.hincrby(PROVIDER_CALLS_KEY, f"{self._channel_id}|{outcome}|{error_class}")
        except redis.RedisError:
            # A metric never fails the call it counts.
            logger.warning("could not count a provider call: Redis unreachable")


@dataclass(frozen=True)
class CallCount:
    channel_id: int
    outcome: str
    error_class: str
    calls: int


def provider_call_counts(connection: redis.Redis) -> list[CallCount]:
    counts = []
    for field, value in connection.hgetall(PROVIDER_CALLS_KEY).items():
        text = field.decode() if isinstance(field, bytes) else str(field)
        channel_id, outcome, error_class = text.split("|", 2)
        counts.append(CallCount(int(channel_id), outcome, error_class, int(value)))
    return counts
