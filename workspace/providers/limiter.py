"""The channel's request pacer, shared by every worker on every machine through Redis.

GCRA with reservations ("pace, don't reject"): one key per bucket holds the theoretical arrival
time (TAT) of the next free slot, and a caller reserves the next slot and sleeps until it. With
no burst tolerance, slots are exactly one emission interval apart, so no 60 s window ever holds
more than the limit and, while work waits, every slot is used. All arithmetic happens in Lua on
Redis's own clock (``TIME``), so machines with skewed clocks still agree.

A provider's pushback (429, Retry-After, an exhausted ``x-ratelimit-remaining``) moves a barrier
that every reservation respects, so one worker's 429 pauses the whole channel.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

# Pacing a hair under the limit absorbs the few milliseconds between a reserved slot and the
# request reaching the provider, whose window is measured on its own clock.
SAFETY = 0.99

_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local blocked = tonumber(redis.call('GET', KEYS[2]) or 0)
if tat < now then tat = now end
local send_at = math.max(tat, blocked)
local delay = send_at - now
if delay > max_wait then return {0, delay, send_at} end
local new_tat = send_at + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now + interval))
return {1, delay, send_at}
"""

_PUSHBACK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or 0)
if until_ms > current then
  redis.call('SET', KEYS[1], until_ms, 'PX', math.ceil(tonumber(ARGV[1]) + 1000))
  return {1, until_ms}
end
return {0, current}
"""

_STATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {now, tonumber(redis.call('GET', KEYS[1]) or 0), tonumber(redis.call('GET', KEYS[2]) or 0),
        tonumber(redis.call('GET', KEYS[3]) or 0)}
"""


class Throttled(Exception):
    """The next slot is further away than the caller may sleep; try again after ``wait``."""

    def __init__(self, wait: float, *, reason: str) -> None:
        super().__init__(f"throttled for {wait:.1f}s: {reason}")
        self.wait = wait
        self.reason = reason


@dataclass(frozen=True)
class LimiterState:
    now: float
    next_slot_at: float
    next_create_slot_at: float
    paused_until: float | None


class ChannelLimiter:
    def __init__(
        self,
        connection: redis.Redis,
        *,
        channel_id: int,
        requests_per_minute: int,
        creates_per_minute: int | None,
        time_scale: float = 1.0,
    ) -> None:
        if requests_per_minute < 1:
            raise ValueError("requests_per_minute must be at least 1")
        self._redis = connection
        self._time_scale = time_scale
        prefix = f"reelhouse:channel:{channel_id}"
        self._keys = {
            "all": f"{prefix}:tat",
            "create": f"{prefix}:tat:create",
            "blocked": f"{prefix}:paused-until",
        }
        self._rpm = requests_per_minute
        self._create_rpm = creates_per_minute
        self._held: set[str] = set()
        # Redis time (seconds) of the slot the last successful acquire took.
        self.last_slot_at: float | None = None
        self._reserve = connection.register_script(_RESERVE)
        self._pushback = connection.register_script(_PUSHBACK)
        self._state = connection.register_script(_STATE)

    def interval_ms(self, kind: str) -> float:
        rpm = self._create_rpm if kind == "create" and self._create_rpm else self._rpm
        return 60_000 / (rpm * SAFETY) / self._time_scale

    def _bucket(self, kind: str) -> str:
        return self._keys["create"] if kind == "create" and self._create_rpm else self._keys["all"]

    def acquire(self, kind: str, *, max_wait: float, hold: bool = False) -> float:
        """Wait for this caller's slot; return how long it waited.

        Raises ``Throttled`` when the slot (or the end of a provider pause) is further away than
        ``max_wait`` seconds, without taking a slot. With ``hold``, the slot is kept for the next
        ``acquire`` of the same kind on this object, which then returns at once: a dispatcher
        takes its slot first and chooses what to send with it afterwards.
        """
        if kind in self._held and not hold:
            self._held.discard(kind)
            return 0.0
        waited = 0.0
        while True:
            budget = max_wait - waited
            granted, delay_ms, slot_ms = self._reserve(
                keys=[self._bucket(kind), self._keys["blocked"]],
                args=[self.interval_ms(kind), int(max(0.0, budget) * 1000)],
            )
            if not granted:
                reason = "provider pause" if self.paused_for() > 0 else "rate limit"
                raise Throttled(float(delay_ms) / 1000, reason=reason)
            delay = float(delay_ms) / 1000
            self.last_slot_at = float(slot_ms) / 1000
            if delay > 0:
                time.sleep(delay)
            waited += delay
            # A pause that started while this caller slept voids its slot: take a new one
            # after the pause, within the same patience, or give up without sending.
            paused = self.paused_for()
            if paused <= 0:
                break
            if waited + paused > max_wait:
                raise Throttled(paused, reason="provider pause")
        if hold:
            self._held.add(kind)
        return waited

    def release_held(self) -> None:
        """Give up a held slot unused (it is not returned to the bucket: the safe direction)."""
        self._held.clear()

    def pushback(self, seconds: float) -> None:
        """Pause every caller of this channel for ``seconds`` (never shortens a longer pause)."""
        self._pushback(keys=[self._keys["blocked"]], args=[max(1, int(seconds * 1000))])

    def paused_for(self) -> float:
        state = self.state()
        return 0.0 if state.paused_until is None else max(0.0, state.paused_until - state.now)

    def state(self) -> LimiterState:
        now, tat, create_tat, blocked = self._state(
            keys=[self._keys["all"], self._keys["create"], self._keys["blocked"]]
        )
        now_s = float(now) / 1000
        return LimiterState(
            now=now_s,
            next_slot_at=max(now_s, float(tat) / 1000),
            next_create_slot_at=max(now_s, float(create_tat) / 1000),
            paused_until=float(blocked) / 1000 if blocked and blocked > now else None,
        )
