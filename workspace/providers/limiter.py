"""The channel's request pacer, shared by every worker on every machine through Redis.

GCRA with reservations ("pace, don't reject"): one key per bucket holds the theoretical arrival
time (TAT) of the next free slot. All arithmetic happens in Lua on Redis's own clock (``TIME``),
so machines with skewed clocks still agree.

Work the provider has accepted goes first, enforced here rather than by convention: follow-ups
(status checks, downloads, lists) reserve the next free slot, even one in the future, and sleep
until it, so they queue up first-come among themselves; a create only ever takes a slot that is
free *now* and never reserves ahead. A create that has not been sent therefore holds no place in
front of any follow-up: the most a follow-up can wait because of creates is the one slot a create
took just before it asked (one interval), and creates use every slot follow-ups leave free. A
caller that wakes a little late for its slot still keeps it (``tau``, well under a second), so
scheduling jitter does not leak capacity while no 60 s window can exceed the limit.

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

# KEYS: tat (microseconds), paused-until (milliseconds), creates' pace (microseconds). ARGV:
# interval, max wait and tau in microseconds, 1 when the caller is a create, the creates' pace
# interval and how far behind it may catch up, in microseconds (pace 0: none). A slot may lie
# up to tau in the past (the caller woke late); the next slot still follows it one interval
# later, so lateness costs no capacity.
# Integers throughout and formatted with %.0f: Redis would print a large Lua number with 14
# digits. Returns {granted, delay µs, slot µs, new tat µs}.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local tau = tonumber(ARGV[3])
local create = tonumber(ARGV[4]) == 1
local pace = tonumber(ARGV[5])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
local blocked = tonumber(redis.call('GET', KEYS[2]) or 0) * 1000
local slot = math.max(tat, now - tau, blocked)
local delay = math.max(0, slot - now)
local paced = 0
if create and pace > 0 then
  -- Our own smoothing, not the provider's limit: a lane that comes late keeps its turn.
  paced = math.max(tonumber(redis.call('GET', KEYS[3]) or 0), now - tonumber(ARGV[6]))
  delay = math.max(delay, paced - now)
end
if create and delay > 0 then return {0, delay, slot, tat} end
if delay > max_wait then return {0, delay, slot, tat} end
local new_tat = slot + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
           'PX', math.ceil((new_tat - now + interval + tau) / 1000))
if create and pace > 0 then
  redis.call('SET', KEYS[3], string.format('%.0f', paced + pace),
             'PX', math.ceil((2 * pace + tonumber(ARGV[6])) / 1000))
end
return {1, delay, slot, new_tat}
"""

# Give an unused slot back, only while nobody has reserved after it (compare-and-set).
_GIVE_BACK = """
local tat = tonumber(redis.call('GET', KEYS[1]) or -1)
if tat == tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], string.format('%.0f', tat - tonumber(ARGV[2])), 'KEEPTTL')
  return 1
end
return 0
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
return {now, math.floor(tonumber(redis.call('GET', KEYS[1]) or 0) / 1000),
        math.floor(tonumber(redis.call('GET', KEYS[2]) or 0) / 1000),
        tonumber(redis.call('GET', KEYS[3]) or 0)}
"""

# A late caller keeps its slot for up to this much (simulated) time. Slots are paced at
# SAFETY x the limit, so a 60 s window holds at most 60/interval + tau/interval + 1 slots; this
# stays under the limit for every limit as long as tau plus the spread of the requests' travel
# to the provider stays under 60 s x (1/SAFETY - 1) ~ 0.6 s. Half of that is left for the
# travel: with 0.5 the 50-a-minute benchmark at time scale 5 (0.1 s of real spread allowed)
# drew two 429s once workers stopped forking per job.
MAX_TAU_SECONDS = 0.25
# Creates sharing the bucket with follow-ups are paced this much faster than it can sustain.
CREATE_PACE_HEADROOM = 1.1
# Turns of that pace a create kept waiting by follow-ups may make up for afterwards: creates
# catch up on what follow-ups delayed instead of losing it, in bursts no larger than this.
PACE_CREDIT = 16.0


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


@dataclass(frozen=True)
class _Held:
    bucket: str
    tat_us: int
    interval_us: int


class ChannelLimiter:
    def __init__(
        self,
        connection: redis.Redis,
        *,
        channel_id: int,
        requests_per_minute: int,
        creates_per_minute: int | None,
        time_scale: float = 1.0,
        follow_ups_per_create: float = 0.0,
    ) -> None:
        if requests_per_minute < 1:
            raise ValueError("requests_per_minute must be at least 1")
        self._redis = connection
        self._time_scale = time_scale
        prefix = f"reelhouse:channel:{channel_id}"
        self._keys = {
            "all": f"{prefix}:tat-us",
            "create": f"{prefix}:tat-us:create",
            "blocked": f"{prefix}:paused-until",
            "pace": f"{prefix}:create-pace-us",
        }
        self._rpm = requests_per_minute
        self._create_rpm = creates_per_minute
        self._held: dict[str, _Held] = {}
        self._follow_ups = follow_ups_per_create
        # Redis time (seconds) of the slot the last successful acquire took.
        self.last_slot_at: float | None = None
        self._reserve = connection.register_script(_RESERVE)
        self._give_back = connection.register_script(_GIVE_BACK)
        self._pushback = connection.register_script(_PUSHBACK)
        self._state = connection.register_script(_STATE)

    @property
    def shared(self) -> bool:
        """Whether creates and follow-ups draw from one bucket (no separate create limit)."""
        return not self._create_rpm

    def interval_ms(self, kind: str) -> float:
        rpm = self._create_rpm if kind == "create" and self._create_rpm else self._rpm
        return 60_000 / (rpm * SAFETY) / self._time_scale

    def _pace_ms(self) -> float:
        """Least time between creates when they share the bucket with their own follow-ups.

        Each create brings ``follow_ups_per_create`` status checks and downloads a render
        later, and those go first. Creates left to take every free slot would come in bursts,
        and a render later their follow-ups would crowd the bucket for minutes (the finished
        videos waiting) while creates starve, over and over. Pacing creates a little faster than
        the bucket can sustain (CREATE_PACE_HEADROOM) keeps both flowing: creates still fill
        every slot follow-ups leave, and follow-ups never wait behind a wave of their own.
        """
        if not self.shared or self._follow_ups <= 0:
            return 0.0
        return self.interval_ms("other") * (1 + self._follow_ups) / CREATE_PACE_HEADROOM

    def _tau_us(self, kind: str) -> int:
        tau_ms = min(self.interval_ms(kind) / 2, MAX_TAU_SECONDS * 1000 / self._time_scale)
        return int(tau_ms * 1000)

    def _bucket(self, kind: str) -> str:
        return self._keys["create"] if kind == "create" and self._create_rpm else self._keys["all"]

    def _try(self, kind: str, budget: float) -> tuple[bool, float, float, int]:
        granted, delay_us, slot_us, tat_us = self._reserve(
            keys=[self._bucket(kind), self._keys["blocked"], self._keys["pace"]],
            args=[
                round(self.interval_ms(kind) * 1000),
                int(max(0.0, budget) * 1_000_000),
                self._tau_us(kind),
                1 if kind == "create" else 0,
                round(self._pace_ms() * 1000) if kind == "create" else 0,
                round(self._pace_ms() * 1000 * PACE_CREDIT),
            ],
        )
        return bool(granted), float(delay_us) / 1e6, float(slot_us) / 1e6, int(tat_us)

    def take_now(self, kind: str = "create") -> float:
        """Take a slot that is free right now and hold it for this object's next ``acquire``.

        Returns 0.0 when the slot is held, else how long until one may be free (nothing taken).
        A dispatcher first chooses what to send, then takes the slot, so it never takes a slot
        it has no use for; ``give_back`` returns one it could not use after all.
        """
        granted, delay, slot, tat_us = self._try(kind, 0.0)
        if not granted:
            return max(delay, 0.001)
        self.last_slot_at = slot
        self._held[kind] = _Held(
            self._bucket(kind), tat_us, round(self.interval_ms(kind) * 1000)
        )
        return 0.0

    def acquire(self, kind: str, *, max_wait: float, hold: bool = False) -> float:
        """Wait for this caller's slot; return how long it waited.

        Follow-ups reserve the next free slot and sleep until it; creates only take a slot that
        is free when they ask and otherwise wait for the hinted moment and ask again, so they
        never stand in front of a follow-up. Raises ``Throttled`` when the slot (or the end of
        a provider pause) is further away than ``max_wait`` seconds, without taking a slot.
        With ``hold``, the slot is kept for the next ``acquire`` of the same kind on this object,
        which then returns at once.
        """
        if kind in self._held and not hold:
            del self._held[kind]
            return 0.0
        waited = 0.0
        while True:
            budget = max_wait - waited
            granted, delay, slot, tat_us = self._try(kind, budget)
            if not granted:
                if kind == "create" and delay <= budget:
                    time.sleep(delay)
                    waited += delay
                    continue
                reason = "provider pause" if self.paused_for() > 0 else "rate limit"
                raise Throttled(delay, reason=reason)
            self.last_slot_at = slot
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
            self._held[kind] = _Held(
                self._bucket(kind), tat_us, round(self.interval_ms(kind) * 1000)
            )
        return waited

    def give_back(self) -> bool:
        """Return held slots unused, so the next caller (often a follow-up) gets them.

        Only possible while nobody has reserved after them; otherwise the slot lapses (the
        safe direction). Returns whether every held slot went back.
        """
        returned = True
        for held in self._held.values():
            returned &= bool(
                self._give_back(keys=[held.bucket], args=[held.tat_us, held.interval_us])
            )
        self._held.clear()
        return returned


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
