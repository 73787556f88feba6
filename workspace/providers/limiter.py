"""The channel's request pacer, shared by every worker on every machine through Redis.

A slot calendar ("pace, don't reject"): time is cut into slots one interval apart (the limit,
a hair under), and a sorted set in Redis holds every slot that is taken or booked. All
arithmetic happens in Lua on Redis's own clock (``TIME``), so machines with skewed clocks still
agree, and every decision is one atomic script, whichever worker or machine asks.

Who gets which slot, enforced here rather than by convention:

- **Booked follow-ups.** When a create is sent, the slots of its status check and video
  download are booked at the render's predicted end (``Booking``): finished videos are checked
  and stored within a slot or two of finishing, and completions cannot bunch, because two
  videos never hold the same slot. The owner claims its booking when it comes; a booking whose
  owner is late goes to whoever asks (a slot is never left unused for a caller that is not
  there).
- **Other follow-ups** (a second status check, posters, spritesheets, lists) reserve the
  earliest slot nobody holds, even one in the future, and sleep until it: first come, first
  served among themselves, ahead of every create not yet sent.
- **Creates** take only *create slots*: a share of the slots (``create_share``, one in 1 + the
  follow-ups each create costs) spread evenly through time, so creates use what their own
  follow-ups will leave and never outrun them; a follow-up may still take a create slot nobody
  holds. A dispatcher takes the slot only once it has something to send with it and may hold
  it while it sends (``take_now``), or give it back unused (``give_back``).

With creates sharing the bucket, the lattice is what keeps the channel at its limit without
waves: if creates took every free slot, a burst of creates became, one render later, a burst of
follow-ups that starved creates, over and over (0.90 of the limit, finished videos waiting half
a minute); creates held to their share and follow-ups booked where they will be needed, every
slot has one predictable user.

A caller that wakes a little late for its slot still keeps it (``tau``, well under a second), so
scheduling jitter does not leak capacity while no 60 s window can exceed the limit. A provider's
pushback (429, Retry-After, an exhausted ``x-ratelimit-remaining``) moves a barrier that every
slot respects, so one worker's 429 pauses the whole channel.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import redis

# Pacing a hair under the limit absorbs the few milliseconds between a slot and the request
# reaching the provider, whose window is measured on its own clock.
SAFETY = 0.99

# The helpers every script shares. KEYS[1] the calendar (sorted set: score = slot time in
# microseconds; member "<time>" for a taken slot, "<time>|<owner>" for a booking not yet claimed),
# KEYS[2] paused-until (milliseconds), KEYS[3] an owner's list of booked slots, KEYS[4] the
# creates' share of slots (>= 1: every slot is a create slot). ARGV[1] the interval, ARGV[2]
# tau (microseconds), ARGV[3] the creates' share as a dispatcher sets it (-1: read KEYS[4]).
# Integers throughout, formatted with %.0f: Redis would print a large Lua number with 14 digits.
_COMMON = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cal = KEYS[1]
local I = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
-- The creates' share is the dispatcher's to know (it counts follow-ups per create); it leaves
-- it with the calendar, so every caller sees the same create slots.
local share = tonumber(ARGV[3])
if share < 0 then share = tonumber(redis.call('GET', KEYS[4]) or 1) end
local blocked = tonumber(redis.call('GET', KEYS[2]) or 0) * 1000
local function fmt(x) return string.format('%.0f', x) end
-- Old entries no longer constrain anything: a slot is never granted before now - tau.
redis.call('ZREMRANGEBYSCORE', cal, '-inf', '(' .. fmt(now - tau - 2 * I - 1000000))

local function lattice(slot)
  if share >= 1 then return true end
  local k = math.floor(slot / I + 0.5)
  return math.floor(k * share) > math.floor((k - 1) * share)
end
local create_slot = lattice
local function any_slot(slot) return true end
local function follow_slot(slot) return not lattice(slot) end

-- Whether the slot at `slot` is free: nothing within one interval of it. With `steal`, a
-- booking its owner has not claimed by well past its time counts as free (the owner is late;
-- the slot would otherwise go unused). Returns free, the members to remove when taking it.
local function free(slot, steal)
  local found = redis.call('ZRANGEBYSCORE', cal, '(' .. fmt(slot - I), '(' .. fmt(slot + I),
                           'WITHSCORES')
  if #found == 0 then return true, {} end
  if not steal then return false, nil end
  local stolen = {}
  for i = 1, #found, 2 do
    local member, score = found[i], tonumber(found[i + 1])
    if not string.find(member, '|', 1, true) or score > now - tau / 2 then return false, nil end
    stolen[#stolen + 1] = member
  end
  return true, stolen
end

-- The first slot from `from` that `want` accepts and is free, up to `limit` (nil: none).
-- Slots lie on a grid one interval apart, so taken slots never leave gaps too narrow to use;
-- but a caller finding the channel idle goes at once rather than wait for the next grid point.
local function search(from, limit, want, steal)
  if from <= now and want(now) then
    local ok, found = free(now, steal)
    if ok then return now, found end
  end
  local slot = math.ceil(from / I) * I
  for _ = 1, 20000 do
    if slot > limit then return nil, nil end
    if want(slot) then
      local ok, found = free(slot, steal)
      if ok then return slot, found end
    end
    slot = slot + I
  end
  return nil, nil
end

local function take(slot, stolen)
  for _, member in ipairs(stolen or {}) do redis.call('ZREM', cal, member) end
  redis.call('ZADD', cal, slot, fmt(slot))
  redis.call('PEXPIRE', cal, 7200000)
end

-- Book `count` slots for `owner` from `from` on: each the first follow-up slot within `window`
-- of where it is wanted, else the first free slot of any kind. Returns the first.
local function book(list, owner, from, count, window)
  local first = nil
  for _ = 1, count do
    local slot = search(from, from + window, follow_slot, false)
    if slot == nil then slot = search(from, math.huge, any_slot, false) end
    if slot == nil then break end
    redis.call('ZADD', cal, slot, fmt(slot) .. '|' .. owner)
    redis.call('RPUSH', list, fmt(slot))
    first = first or slot
    from = slot + I
  end
  if first then redis.call('PEXPIRE', list, 7200000) end
  return first
end

local function release(list, owner)
  for _, slot in ipairs(redis.call('LRANGE', list, 0, -1)) do
    redis.call('ZREM', cal, slot .. '|' .. owner)
  end
  redis.call('DEL', list)
end
"""

# Take a slot. ARGV[4] 1 for a create (create slots only), ARGV[5] the longest wait (µs);
# ARGV[6..9] a booking for the follow-ups (owner, count, offset from the slot, window; count 0:
# none), KEYS[3] the owner's list. Returns {granted, delay, slot, first booking or -1}; when not
# granted, delay is when the next suitable slot is (or -1 if none is in sight).
_TAKE = (
    _COMMON
    + """
local want = any_slot
if tonumber(ARGV[4]) == 1 then
  want = create_slot
  redis.call('SET', KEYS[4], ARGV[3], 'PX', 3600000)
end
local base = math.max(now - tau, blocked)
local slot, stolen = search(base, now + tonumber(ARGV[5]), want, true)
if slot == nil then
  local later = search(math.max(base, now + tonumber(ARGV[5])), math.huge, want, false)
  if later == nil then return {0, -1, -1, -1} end
  return {0, fmt(later - now), -1, -1}
end
take(slot, stolen)
local first = -1
if tonumber(ARGV[7]) > 0 then
  release(KEYS[3], ARGV[6])
  first = book(KEYS[3], ARGV[6], slot + tonumber(ARGV[8]), tonumber(ARGV[7]), tonumber(ARGV[9]))
  first = first and fmt(first) or -1
end
return {1, fmt(slot - now), fmt(slot), first}
"""
)

# A follow-up of `owner` (ARGV[4]) claims its next booking, or else takes the earliest free slot
# within ARGV[5] µs like any other follow-up. Bookings its owner let pass are dropped; one
# further away than the caller may wait goes back (with the rest: plans changed). KEYS[3] the
# owner's list. Returns {granted, delay, slot, 1 when it was the owner's booking}.
_CLAIM = (
    _COMMON
    + """
local owner = ARGV[4]
local max_wait = tonumber(ARGV[5])
while true do
  local head = redis.call('LINDEX', KEYS[3], 0)
  if not head then break end
  local slot = tonumber(head)
  local member = head .. '|' .. owner
  if redis.call('ZSCORE', cal, member) and slot >= now - tau and slot >= blocked then
    if slot - now > max_wait then
      release(KEYS[3], owner)
      break
    end
    redis.call('LPOP', KEYS[3])
    redis.call('ZREM', cal, member)
    take(slot, nil)
    return {1, fmt(math.max(0, slot - now)), fmt(slot), 1}
  end
  redis.call('LPOP', KEYS[3])
  redis.call('ZREM', cal, member)
end
local base = math.max(now - tau, blocked)
local slot, stolen = search(base, now + max_wait, any_slot, true)
if slot == nil then
  local later = search(math.max(base, now + max_wait), math.huge, any_slot, false)
  return {0, later and fmt(later - now) or -1, -1, 0}
end
take(slot, stolen)
return {1, fmt(slot - now), fmt(slot), 0}
"""
)

# Book ARGV[5] slots for owner ARGV[4] from ARGV[6] µs from now (window ARGV[7]), replacing any
# it had. KEYS[3] the owner's list. Returns the first booked slot's delay from now, or -1.
_BOOK = (
    _COMMON
    + """
release(KEYS[3], ARGV[4])
local from = math.max(now + tonumber(ARGV[6]), blocked)
local first = book(KEYS[3], ARGV[4], from, tonumber(ARGV[5]), tonumber(ARGV[7]))
if first == nil then return -1 end
return fmt(first - now)
"""
)

# Give back a held slot (ARGV[4], µs) and release the bookings of owner ARGV[5] (KEYS[3]).
_GIVE_BACK = (
    _COMMON
    + """
local removed = redis.call('ZREM', cal, ARGV[4])
if ARGV[5] ~= '' then release(KEYS[3], ARGV[5]) end
return removed
"""
)

# Release owner ARGV[4]'s bookings (KEYS[3]).
_RELEASE = (
    _COMMON
    + """
release(KEYS[3], ARGV[4])
return 1
"""
)

# The next free slot for a follow-up and for a create, and the pause, for pages and forecasts;
# and the owner's next booking (KEYS[3], ARGV[4]; -1 when none). All in µs from now.
_STATE = (
    _COMMON
    + """
local base = math.max(now - tau, blocked)
local any = search(base, math.huge, any_slot, true)
local create = search(base, math.huge, create_slot, true)
local booked = '-'
local head = redis.call('LINDEX', KEYS[3], 0)
if head and redis.call('ZSCORE', cal, head .. '|' .. ARGV[4]) then
  booked = fmt(tonumber(head) - now)
end
return {fmt(now), fmt((any or now) - now), fmt((create or now) - now), fmt(blocked), booked}
"""
)

# A late caller keeps its slot for up to this much (simulated) time. Slots are paced at
# SAFETY x the limit, so a 60 s window holds at most 60/interval + tau/interval + 1 slots; this
# stays under the limit for every limit as long as tau < 60 s x (1/SAFETY - 1) ~ 0.6 s.
MAX_TAU_SECONDS = 0.5
# A booking goes to the first follow-up slot within this many intervals of where it is wanted,
# else to the first free slot of any kind.
BOOKING_WINDOW_SLOTS = 4


class Throttled(Exception):
    """The next slot is further away than the caller may sleep; try again after ``wait``."""

    def __init__(self, wait: float, *, reason: str) -> None:
        super().__init__(f"throttled for {wait:.1f}s: {reason}")
        self.wait = wait
        self.reason = reason


@dataclass(frozen=True)
class Booking:
    """Slots to book for a create's follow-ups: ``count`` slots from ``after`` seconds past the
    create's own slot on, for ``owner`` (a generation id) to claim with ``owned_by``."""

    owner: str
    after: float
    count: int


@dataclass(frozen=True)
class LimiterState:
    now: float
    next_slot_at: float
    next_create_slot_at: float
    paused_until: float | None
    next_booking_at: float | None = None


@dataclass(frozen=True)
class _Held:
    bucket: str
    slot_us: int
    deadline: float  # time.monotonic() of the slot
    owner: str


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
        self._prefix = f"reelhouse:channel:{channel_id}"
        self._keys = {
            "all": f"{self._prefix}:slots",
            "create": f"{self._prefix}:slots:create",
            "blocked": f"{self._prefix}:paused-until",
        }
        self._rpm = requests_per_minute
        self._create_rpm = creates_per_minute
        self._held: dict[str, _Held] = {}
        self._follow_ups = follow_ups_per_create
        self._owner: str | None = None
        # Redis time (seconds) of the slot the last successful acquire took.
        self.last_slot_at: float | None = None
        self._take = connection.register_script(_TAKE)
        self._claim = connection.register_script(_CLAIM)
        self._book = connection.register_script(_BOOK)
        self._give_back = connection.register_script(_GIVE_BACK)
        self._release = connection.register_script(_RELEASE)
        self._pushback = connection.register_script(_PUSHBACK)
        self._state = connection.register_script(_STATE)

    def owned_by(self, owner: str) -> ChannelLimiter:
        """This limiter for the follow-ups of ``owner``: its calls claim the owner's bookings."""
        own = copy.copy(self)
        own._owner = owner
        own._held = {}
        return own

    @property
    def shared(self) -> bool:
        """Whether creates and follow-ups draw from one bucket (no separate create limit)."""
        return not self._create_rpm

    def interval_ms(self, kind: str) -> float:
        rpm = self._create_rpm if kind == "create" and self._create_rpm else self._rpm
        return 60_000 / (rpm * SAFETY) / self._time_scale

    def create_share(self) -> float:
        """The share of the bucket's slots creates may take (1: all, their own bucket).

        Each create brings ``follow_ups_per_create`` status checks and downloads a render later;
        creates held to one slot in 1 + that many leave their own follow-ups room, so the bucket
        runs full without waves. Follow-ups the bookings did not foresee (a second check) take
        the first free slot, a create slot nobody holds included.
        """
        if not self.shared or self._follow_ups <= 0:
            return 1.0
        return min(1.0, 1 / (1 + self._follow_ups))

    def _tau_us(self, kind: str) -> int:
        tau_ms = min(self.interval_ms(kind) / 2, MAX_TAU_SECONDS * 1000 / self._time_scale)
        return int(tau_ms * 1000)

    def _bucket(self, kind: str) -> str:
        return self._keys["create"] if kind == "create" and self._create_rpm else self._keys["all"]

    def _owner_key(self, owner: str) -> str:
        return f"{self._prefix}:booked:{owner}"

    def _common(
        self, kind: str, owner: str = "-", *, dispatcher: bool = False
    ) -> tuple[list[str], list[int | float]]:
        bucket = self._bucket(kind)
        keys = [
            bucket,
            self._keys["blocked"],
            self._owner_key(owner),
            f"{bucket}:share",
        ]
        args: list[int | float] = [
            round(self.interval_ms(kind) * 1000),
            self._tau_us(kind),
            # Only a dispatcher knows the follow-ups per create; everyone else reads its share.
            self.create_share() if dispatcher else -1,
        ]
        return keys, args

    def _try(
        self, kind: str, budget: float, booking: Booking | None = None
    ) -> tuple[bool, float, int, int | None]:
        """One attempt: (granted, delay s, slot µs, first booking µs)."""
        budget_us = int(max(0.0, budget) * 1_000_000)
        if kind != "create" and self._owner is not None:
            keys, args = self._common(kind, self._owner)
            granted, delay_us, slot_us, _ = self._claim(
                keys=keys, args=[*args, self._owner, budget_us]
            )
            return bool(granted), float(delay_us) / 1e6, int(slot_us), None
        owner, count, after_us, window_us = "", 0, 0, 0
        if booking is not None and kind == "create":
            owner, count = booking.owner, booking.count
            after_us = round(booking.after * 1e6)
        keys, args = self._common(kind, owner or "-", dispatcher=kind == "create")
        if count:
            window_us = int(args[0] * BOOKING_WINDOW_SLOTS)
        granted, delay_us, slot_us, first_us = self._take(
            keys=keys,
            args=[
                *args,
                1 if kind == "create" else 0,
                budget_us,
                owner,
                count,
                after_us,
                window_us,
            ],
        )
        first = int(first_us)
        return bool(granted), float(delay_us) / 1e6, int(slot_us), first if first >= 0 else None

    def take_now(
        self, kind: str = "create", *, max_wait: float = 0.0, booking: Booking | None = None
    ) -> float:
        """Take the next slot for ``kind`` within ``max_wait`` and hold it for the next ``acquire``.

        Returns 0.0 when the slot is held (``acquire`` then sleeps until it), else how long
        until one may be free (nothing taken). A dispatcher first chooses what to send, then
        takes the slot, so it never takes a slot it has no use for; ``give_back`` returns one it
        could not use after all. With ``booking``, the create's follow-ups are booked at once.
        """
        granted, delay, slot_us, _ = self._try(kind, max_wait, booking)
        if not granted:
            return max(delay, 0.001) if delay >= 0 else max(max_wait, 0.001)
        self.last_slot_at = slot_us / 1e6
        self._held[kind] = _Held(
            self._bucket(kind),
            slot_us,
            time.monotonic() + delay,
            booking.owner if booking is not None else "",
        )
        return 0.0

    def held_in(self, kind: str = "create") -> float | None:
        """Seconds until the held slot of ``kind`` (negative when past), if one is held."""
        held = self._held.get(kind)
        return None if held is None else held.deadline - time.monotonic()

    def acquire(self, kind: str, *, max_wait: float, hold: bool = False) -> float:
        """Wait for this caller's slot; return how long it waited.

        A held slot (``take_now``) is used, sleeping until it, unless the caller is later for it
        than ``tau`` (then it lapses and a new one is taken). Follow-ups of an owner claim its
        booking; other follow-ups reserve the next free slot and sleep until it; creates take
        the next create slot. Raises ``Throttled`` when the slot (or the end of a provider pause)
        is further away than ``max_wait`` seconds, without taking a slot. With ``hold``, the slot
        is kept for the next ``acquire`` of the same kind on this object.
        """
        held = self._held.get(kind)
        if held is not None and not hold:
            del self._held[kind]
            wait = held.deadline - time.monotonic()
            if wait >= -self._tau_us(kind) / 1e6:
                if wait > 0:
                    time.sleep(wait)
                return max(0.0, wait)
            # Too late for it: sending now could crowd the next slot. It is lost; take another.
        waited = 0.0
        while True:
            budget = max_wait - waited
            granted, delay, slot_us, _ = self._try(kind, budget)
            if not granted:
                reason = "provider pause" if self.paused_for() > 0 else "rate limit"
                raise Throttled(delay if delay >= 0 else budget, reason=reason)
            self.last_slot_at = slot_us / 1e6
            if delay > 0:  # negative: a slot up to tau ago, still ours
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
            self._held[kind] = _Held(self._bucket(kind), slot_us, time.monotonic(), "")
        return waited

    def give_back(self) -> bool:
        """Return held slots unused (with their bookings), so the next caller gets them.

        Returns whether every held slot went back (a slot already used or pruned cannot).
        """
        returned = True
        for kind, held in self._held.items():
            keys, args = self._common(kind, held.owner or "-")
            returned &= bool(
                self._give_back(
                    keys=keys,
                    args=[*args, str(held.slot_us), held.owner],
                )
            )
        self._held.clear()
        return returned

    def book(self, owner: str, *, after: float, count: int) -> float | None:
        """Book ``count`` follow-up slots for ``owner`` from ``after`` seconds on, replacing the
        ones it had; returns seconds until the first, or None when nothing could be booked."""
        keys, args = self._common("other", owner)
        first_us = self._book(
            keys=keys,
            args=[
                *args,
                owner,
                count,
                round(after * 1e6),
                int(args[0] * BOOKING_WINDOW_SLOTS),
            ],
        )
        first = int(first_us)
        return None if first < 0 else first / 1e6

    def release(self, owner: str) -> None:
        """Free the slots booked for ``owner`` (its plans changed: failed, still rendering)."""
        keys, args = self._common("other", owner)
        self._release(keys=keys, args=[*args, owner])

    def pushback(self, seconds: float) -> None:
        """Pause every caller of this channel for ``seconds`` (never shortens a longer pause)."""
        self._pushback(keys=[self._keys["blocked"]], args=[max(1, int(seconds * 1000))])

    def paused_for(self) -> float:
        state = self.state()
        return 0.0 if state.paused_until is None else max(0.0, state.paused_until - state.now)

    def state(self, owner: str | None = None) -> LimiterState:
        owner = owner or self._owner or "-"
        keys, args = self._common("create", owner)
        now_us, any_us, create_us, blocked_us, booked_us = self._state(
            keys=keys, args=[*args, owner]
        )
        now_s = int(now_us) / 1e6
        if not self.shared:
            # Follow-ups use the other bucket: its next free slot is the one they would get.
            other_keys, other_args = self._common("other")
            _, any_us, _, _, _ = self._state(keys=other_keys, args=[*other_args, "-"])
        blocked = int(blocked_us) / 1e6
        booked = None if booked_us in (b"-", "-") else int(booked_us) / 1e6
        return LimiterState(
            now=now_s,
            next_slot_at=now_s + int(any_us) / 1e6,
            next_create_slot_at=now_s + int(create_us) / 1e6,
            paused_until=blocked if blocked > now_s else None,
            next_booking_at=None if booked is None else now_s + booked,
        )


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
