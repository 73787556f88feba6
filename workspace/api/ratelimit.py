"""The per-token request rate on ``/v1``: a burst, then a steady rate, shared through Redis.

GCRA in its rejecting form (the channel limiter, providers/limiter.py, is the pacing form of the
same algorithm): one key per token holds the theoretical arrival time (TAT) of the next request
at the steady rate; a request is let through while that lies at most ``burst - 1`` intervals in
the future. The arithmetic runs in Lua on Redis's own clock, so every web process agrees and a
flood from many threads cannot slip between a read and a write.

What the limit protects is the web processes and the database, not the provider: creates that
get through are queued, and the fair queue decides whose video is sent next.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import redis
from django.conf import settings

from workspace.core.rq import get_redis

logger = logging.getLogger(__name__)

# KEYS: the token's TAT (µs). ARGV: the interval and the burst's tolerance (µs). A request
# passes while the TAT it would leave is at most tolerance + interval ahead of now; a refused
# one changes nothing. Returns {allowed, remaining now, µs until one more passes, µs until the
# whole burst is back}.
_CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now)
local allowed = 0
if tat + interval - now <= tolerance + interval then
  allowed = 1
  tat = tat + interval
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
local ahead = tat - now
return {allowed, math.floor((tolerance + interval - ahead) / interval),
        string.format('%.0f', math.max(0, ahead - tolerance)), string.format('%.0f', ahead)}
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int  # requests per minute
    remaining: int  # requests that would pass right now
    retry_after: float  # seconds until one more request passes (0: now)
    reset: float  # seconds until the whole burst is available again

    def headers(self) -> dict[str, str]:
        # OpenAI's names: a script that reads them to pace itself works unchanged.
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": f"{self.reset:.3f}".rstrip("0").rstrip(".") + "s",
        }


def token_rate_check(*, token_id: int) -> RateDecision | None:
    """Count one request of the token against its rate; None when no limit is set or Redis
    cannot be asked (an outage of the counter must not take the API down with it)."""
    per_minute: int = settings.REELHOUSE_API_REQUESTS_PER_MINUTE
    if per_minute <= 0:
        return None
    burst = max(1, settings.REELHOUSE_API_REQUEST_BURST)
    interval = 60_000_000 / per_minute
    tolerance = interval * (burst - 1)
    try:
        allowed, remaining, wait, ahead = get_redis().eval(
            _CHECK, 1, f"reelhouse:api-rate:{token_id}", round(interval), round(tolerance)
        )
    except redis.RedisError:
        logger.warning("the API's request rate could not be checked", exc_info=True)
        return None
    return RateDecision(
        allowed=bool(allowed),
        limit=per_minute,
        remaining=max(0, min(burst, int(remaining))),
        retry_after=int(wait) / 1_000_000,
        reset=int(ahead) / 1_000_000,
    )


def retry_after_header(seconds: float) -> str:
    # Whole seconds, rounded up: a client that waits exactly this long gets through.
    return str(max(1, math.ceil(seconds)))
