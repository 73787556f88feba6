"""A circuit breaker per channel, shared by every worker through Redis.

Closed: calls flow and their outcomes are recorded. When at least ``min_calls`` of the calls in
the last ``window`` seconds ended and ``threshold`` of them failed for the provider's reasons
(5xx, overload, resets, timeouts), the circuit opens: nothing is sent for ``cooldown`` seconds.
Then it is half-open: one probe call may go; success closes the circuit, failure opens it again
with a doubled cooldown. Rate limits and the member's own bad requests are not failures here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import redis

from workspace.providers.limiter import Throttled

_ALLOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {1, 0} end
local reopen = tonumber(redis.call('HGET', KEYS[1], 'until') or 0)
if now < reopen then return {0, reopen - now} end
-- Half-open: exactly one probe at a time.
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', tonumber(ARGV[1])) then
  redis.call('HSET', KEYS[1], 'state', 'half_open')
  return {1, 0}
end
return {0, 1000}
"""

_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ok = ARGV[1] == '1'
local window = tonumber(ARGV[2]); local min_calls = tonumber(ARGV[3])
local threshold = tonumber(ARGV[4]); local cooldown = tonumber(ARGV[5])
local max_cooldown = tonumber(ARGV[6])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'half_open' then
  redis.call('DEL', KEYS[2])
  if ok then
    redis.call('DEL', KEYS[1], KEYS[3])
    return 'reclosed'
  end
  local last = tonumber(redis.call('HGET', KEYS[1], 'cooldown') or cooldown)
  local next_cooldown = math.min(last * 2, max_cooldown)
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + next_cooldown,
             'cooldown', next_cooldown, 'opened_at', now)
  return 'reopened'
end
if state == 'open' then return 'open' end
redis.call('ZADD', KEYS[3], now, now .. ':' .. (ok and 'ok' or 'fail') .. ':' .. ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
redis.call('PEXPIRE', KEYS[3], window)
local entries = redis.call('ZRANGE', KEYS[3], 0, -1)
local failures = 0
for _, entry in ipairs(entries) do
  if string.find(entry, ':fail:') then failures = failures + 1 end
end
if #entries >= min_calls and failures / #entries >= threshold then
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + cooldown,
             'cooldown', cooldown, 'opened_at', now)
  redis.call('DEL', KEYS[3])
  return 'opened'
end
return 'closed'
"""


@dataclass(frozen=True)
class CircuitState:
    state: str  # closed, open or half_open
    reopens_in: float  # seconds until a probe may go, while open


class CircuitOpen(Throttled):
    """Nothing may be sent now; callers wait exactly as for a rate limit."""

    def __init__(self, wait: float) -> None:
        super().__init__(wait, reason="circuit open")


class ChannelCircuit:
    def __init__(
        self,
        connection: redis.Redis,
        *,
        channel_id: int,
        window: float = 60.0,
        min_calls: int = 10,
        threshold: float = 0.5,
        cooldown: float = 30.0,
        max_cooldown: float = 300.0,
    ) -> None:
        prefix = f"reelhouse:channel:{channel_id}:circuit"
        self._keys = [prefix, f"{prefix}:probe", f"{prefix}:outcomes"]
        self._args = [window, min_calls, threshold, cooldown, max_cooldown]
        self._redis = connection
        self._allow = connection.register_script(_ALLOW)
        self._record = connection.register_script(_RECORD)
        self._counter = 0

    def allow(self) -> None:
        """Raise ``CircuitOpen`` unless a call may go now (closed, or this is the probe)."""
        allowed, wait_ms = self._allow(keys=self._keys, args=[int(self._args[3] * 1000)])
        if not allowed:
            raise CircuitOpen(float(wait_ms) / 1000)

    def record(self, *, ok: bool) -> str:
        """Record one call's outcome; returns the transition: closed (it was and stays closed),
        reclosed (a probe succeeded), opened, reopened or open."""
        self._counter += 1
        window, min_calls, threshold, cooldown, max_cooldown = self._args
        result = self._record(
            keys=self._keys,
            args=[
                "1" if ok else "0",
                int(window * 1000),
                int(min_calls),
                threshold,
                int(cooldown * 1000),
                int(max_cooldown * 1000),
                f"{os.getpid()}-{id(self)}-{self._counter}",
            ],
        )
        return result.decode() if isinstance(result, bytes) else str(result)

    def state(self) -> CircuitState:
        raw = {
            (k.decode() if isinstance(k, bytes) else str(k)): (
                v.decode() if isinstance(v, bytes) else str(v)
            )
            for k, v in self._redis.hgetall(self._keys[0]).items()
        }
        state = raw.get("state", "closed")
        if state == "closed":
            return CircuitState("closed", 0.0)
        now_s, now_us = self._redis.time()
        now_ms = now_s * 1000 + now_us // 1000
        until = int(raw.get("until", "0"))
        return CircuitState(state, max(0.0, (until - now_ms) / 1000))

    def reset(self) -> None:
        self._redis.delete(*self._keys)
