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

When creates and follow-ups share the bucket (every request counted), creates are also admitted
*by the future*: each create adds the prompt follow-ups it will bring (its status check and its
video) to a plan, at its predicted end one render from now, and goes only if they fit beside
those already planned there. Creates sent in a burst would otherwise return one render later as
a burst of finished videos whose checks and downloads queue behind each other. A create the plan
refuses leaves the free slot for anything else (the dispatcher fetches a poster with it).

A provider's pushback (429, Retry-After, an exhausted ``x-ratelimit-remaining``) moves a barrier
that every reservation respects, so one worker's 429 pauses the whole channel.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

# Pacing a hair under the limit absorbs a late caller's allowance (MAX_TAU_SECONDS) and the
# spread of the requests' travel between a reserved slot and the provider, whose window is
# measured on its own clock: 60 s x (1/SAFETY - 1) ~ 0.9 s of both. At 0.99 (0.6 s) a loaded
# benchmark at time scale 2.5 drew a 429 (0.14 real seconds of travel spread were allowed);
# 0.985 costs half a percent of the limit.
SAFETY = 0.985

# KEYS: tat (microseconds), paused-until (milliseconds), the follow-up plan (a hash: future
# bucket number -> follow-ups planned in it). ARGV: interval, max wait and tau in microseconds,
# 1 when the caller is a create; for a create sharing the bucket with its follow-ups: how far
# ahead its follow-ups will come (µs, 0: no plan), how many, the plan's bucket width (µs), how
# many buckets either side are judged with it, and how many follow-ups a bucket may plan.
# A slot may lie up to tau in the past (the caller woke late); the next slot still follows it
# one interval later, so lateness costs no capacity.
# Integers throughout and formatted with %.0f: Redis would print a large Lua number with 14
# digits. Returns {granted, delay µs, slot µs, new tat µs, refused by the plan}.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local tau = tonumber(ARGV[3])
local create = tonumber(ARGV[4]) == 1
local ahead = tonumber(ARGV[5])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
local blocked = tonumber(redis.call('GET', KEYS[2]) or 0) * 1000
local slot = math.max(tat, now - tau, blocked)
local delay = math.max(0, slot - now)
if create and delay > 0 then return {0, delay, slot, tat, 0} end
if delay > max_wait then return {0, delay, slot, tat, 0} end
if create and ahead > 0 then
  -- Admitted by the future: its follow-ups, due one render from now, must fit beside those
  -- already planned there, or the create waits and the slot stays free for others.
  local demand = tonumber(ARGV[6])
  local width = tonumber(ARGV[7])
  local span = tonumber(ARGV[8])
  local cap = tonumber(ARGV[9])
  local target = math.floor((now + ahead) / width)
  local current = math.floor(now / width)
  local load = {}
  local plan = redis.call('HGETALL', KEYS[3])
  for i = 1, #plan, 2 do
    local bucket = tonumber(plan[i])
    if bucket < current then
      redis.call('HDEL', KEYS[3], plan[i])
    elseif bucket >= target - span and bucket <= target + span then
      load[bucket - target] = tonumber(plan[i + 1])
    end
  end
  -- Each bucket holds at most cap. The follow-ups go to the predicted end's bucket, the rest
  -- to its nearest neighbours (a render's end is a prediction, good to a bucket or two): a
  -- window's worth in one bucket would come back as a burst that takes seconds to send.
  -- A create that alone brings more than the window holds (a channel whose videos lately
  -- needed many checks) counts as filling it: it goes once the window is empty rather than never.
  -- plan_place below is the same rule in Python, for the queue estimates.
  local room, window, order = 0, 0, {0}
  for off = 1, span do order[#order + 1] = off; order[#order + 1] = -off end
  for _, off in ipairs(order) do
    if target + off >= current then
      room = room + math.max(0, cap - (load[off] or 0))
      window = window + cap
    end
  end
  demand = math.min(demand, window)
  if demand > room + 1e-9 then return {0, interval, slot, tat, 1} end
  local left, placed = demand, {}
  for _, off in ipairs(order) do
    if left <= 0 then break end
    if target + off >= current then
      local take = math.min(left, math.max(0, cap - (load[off] or 0)))
      if take > 0 then
        redis.call('HINCRBYFLOAT', KEYS[3], tostring(target + off), tostring(take))
        placed[#placed + 1] = tostring(target + off) .. '=' .. tostring(take)
        left = left - take
      end
    end
  end
  -- Only ever lengthened: a create with a near end must not cut short the plan of later ones.
  local ttl = math.ceil((ahead + (span + 2) * width) / 1000)
  if redis.call('PTTL', KEYS[3]) < ttl then redis.call('PEXPIRE', KEYS[3], ttl) end
  -- Where this create's follow-ups went, so its owner can take them out once they came.
  if ARGV[10] ~= '' then
    redis.call('HSET', KEYS[4], ARGV[10], table.concat(placed, ';'))
    if redis.call('PTTL', KEYS[4]) < ttl then redis.call('PEXPIRE', KEYS[4], ttl) end
  end
end
local new_tat = slot + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
           'PX', math.ceil((new_tat - now + interval + tau) / 1000))
return {1, delay, slot, new_tat, 0}
"""

# A create's planned follow-ups came (its job was seen finished or failed) or will never come
# (its slot was given back): take them out of the plan, whatever bucket they were planned in.
# KEYS: the plan, its owners. ARGV: the owner.
_FORGET = """
local placed = redis.call('HGET', KEYS[2], ARGV[1])
if not placed then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
for bucket, amount in string.gmatch(placed, '([^=;]+)=([^;]+)') do
  local left = redis.call('HINCRBYFLOAT', KEYS[1], bucket, '-' .. amount)
  if tonumber(left) <= 1e-6 then redis.call('HDEL', KEYS[1], bucket) end
end
return 1
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
# to the provider stays under 60 s x (1/SAFETY - 1) ~ 0.9 s. Most of that is left for the
# travel: with 0.5 the 50-a-minute benchmark at time scale 5 (0.1 s of real spread allowed)
# drew two 429s once workers stopped forking per job.
MAX_TAU_SECONDS = 0.25
# The follow-up plan (creates sharing the bucket with their own follow-ups): a create is sent
# only when the prompt follow-ups it brings a render later (its status check and its video) fit
# beside those already planned for then. The plan counts in buckets of PLAN_BUCKET_SLOTS
# intervals and judges a create by the PLAN_SPAN buckets either side of its predicted end
# (about 12 s at 50 a minute), so a wave of creates cannot become a wave of finished videos.
# Planned follow-ups may fill FUTURE_SHARE of those slots; the rest is left to the creates that
# must keep going then and to the slack of predictions (renders end early or late, a check
# finds a job still running).
# A bucket is also at least PLAN_BUCKET_SECONDS (simulated) long: the window must be wider
# than a prediction's error (the render time, the check's margin), which does not shrink with
# the interval: at 1,000 a minute two slots are 120 ms, and a window of five such buckets
# (0.6 s) is far narrower than the error of a render's predicted end.
PLAN_BUCKET_SLOTS = 2
PLAN_BUCKET_SECONDS = 2.0
PLAN_SPAN = 2
FUTURE_SHARE = 0.8


def plan_place(
    plan: dict[int, float], *, target: int, current: int, demand: float, cap: float
) -> bool:
    """The plan's rule as ``_RESERVE`` applies it in Redis, on a copy of the plan (bucket ->
    follow-ups planned): whether a create whose follow-ups (``demand``) come in bucket
    ``target`` fits, and if so its follow-ups placed. Queue estimates replay dispatch with it."""
    order = [0] + [off for k in range(1, PLAN_SPAN + 1) for off in (k, -k)]
    usable = [target + off for off in order if target + off >= current]
    room = sum(max(0.0, cap - plan.get(bucket, 0.0)) for bucket in usable)
    demand = min(demand, cap * len(usable))
    if demand > room + 1e-9:
        return False
    for bucket in usable:
        if demand <= 0:
            break
        take = min(demand, max(0.0, cap - plan.get(bucket, 0.0)))
        plan[bucket] = plan.get(bucket, 0.0) + take
        demand -= take
    return True


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
    owner: str = ""


class ChannelLimiter:
    def __init__(
        self,
        connection: redis.Redis,
        *,
        channel_id: int,
        requests_per_minute: int,
        creates_per_minute: int | None,
        time_scale: float = 1.0,
        prompt_follow_ups: float = 0.0,
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
            "plan": f"{prefix}:follow-up-plan",
            "plan_owners": f"{prefix}:follow-up-plan:owners",
        }
        self._rpm = requests_per_minute
        self._create_rpm = creates_per_minute
        self._held: dict[str, _Held] = {}
        # Status checks and video downloads each create brings (0: creates are not planned).
        self._prompt_follow_ups = prompt_follow_ups
        # Whether the last ``take_now`` was refused by the plan (the slot itself was free).
        self.refused_by_plan = False
        # Redis time (seconds) of the slot the last successful acquire took.
        self.last_slot_at: float | None = None
        self._reserve = connection.register_script(_RESERVE)
        self._give_back = connection.register_script(_GIVE_BACK)
        self._forget = connection.register_script(_FORGET)
        self._pushback = connection.register_script(_PUSHBACK)
        self._state = connection.register_script(_STATE)

    @property
    def shared(self) -> bool:
        """Whether creates and follow-ups draw from one bucket (no separate create limit)."""
        return not self._create_rpm

    def interval_ms(self, kind: str) -> float:
        rpm = self._create_rpm if kind == "create" and self._create_rpm else self._rpm
        return 60_000 / (rpm * SAFETY) / self._time_scale

    def _tau_us(self, kind: str) -> int:
        tau_ms = min(self.interval_ms(kind) / 2, MAX_TAU_SECONDS * 1000 / self._time_scale)
        return int(tau_ms * 1000)

    def _bucket(self, kind: str) -> str:
        return self._keys["create"] if kind == "create" and self._create_rpm else self._keys["all"]

    def _try(
        self, kind: str, budget: float, *, ahead: float = 0.0, owner: str = ""
    ) -> tuple[bool, float, float, int, bool]:
        interval_us = round(self.interval_ms(kind) * 1000)
        planned = kind == "create" and self.shared and ahead > 0 and self._prompt_follow_ups > 0
        width_us = self._plan_width_us()
        granted, delay_us, slot_us, tat_us, by_plan = self._reserve(
            keys=[
                self._bucket(kind),
                self._keys["blocked"],
                self._keys["plan"],
                self._keys["plan_owners"],
            ],
            args=[
                interval_us,
                int(max(0.0, budget) * 1_000_000),
                self._tau_us(kind),
                1 if kind == "create" else 0,
                round(ahead * 1_000_000) if planned else 0,
                repr(float(self._prompt_follow_ups)),
                width_us,
                PLAN_SPAN,
                repr(self.plan_bucket_capacity()),
                owner if planned else "",
            ],
        )
        return (
            bool(granted),
            float(delay_us) / 1e6,
            float(slot_us) / 1e6,
            int(tat_us),
            bool(by_plan),
        )

    def take_now(self, kind: str = "create", *, ahead: float = 0.0, owner: str = "") -> float:
        """Take a slot that is free right now and hold it for this object's next ``acquire``.

        Returns 0.0 when the slot is held, else how long until one may be free (nothing taken).
        A dispatcher first chooses what to send, then takes the slot, so it never takes a slot
        it has no use for; ``give_back`` returns one it could not use after all.

        ``ahead`` (seconds) is when a create's follow-ups will come: one predicted render
        from now. A create whose follow-ups do not fit the plan then is refused even with the
        slot free (``refused_by_plan``), and the free slot stays for something else. ``owner``
        (the generation) names the planned follow-ups, for ``plan_forget``.
        """
        granted, delay, slot, tat_us, self.refused_by_plan = self._try(
            kind, 0.0, ahead=ahead, owner=owner
        )
        if not granted:
            return max(delay, 0.001)
        self.last_slot_at = slot
        self._held[kind] = _Held(
            self._bucket(kind), tat_us, round(self.interval_ms(kind) * 1000), owner
        )
        return 0.0

    def _plan_width_us(self) -> int:
        interval_us = round(self.interval_ms("other") * 1000)
        return max(
            interval_us * PLAN_BUCKET_SLOTS, round(PLAN_BUCKET_SECONDS * 1e6 / self._time_scale)
        )

    def plan_bucket_seconds(self) -> float:
        """How long one bucket of the follow-up plan is, in real seconds."""
        return self._plan_width_us() / 1e6

    def plan_bucket_capacity(self) -> float:
        """How many follow-ups one bucket of the plan may hold (FUTURE_SHARE of its slots)."""
        return FUTURE_SHARE * self._plan_width_us() / round(self.interval_ms("other") * 1000)

    def plan_load(self) -> dict[int, float]:
        """The follow-ups planned so far: bucket number (unix time // bucket) -> how many."""
        raw = self._redis.hgetall(self._keys["plan"])
        return {int(float(bucket)): float(amount) for bucket, amount in raw.items()}

    def plan_forget(self, owner: str) -> bool:
        """Take ``owner``'s planned follow-ups out of the plan: they came (its job was seen
        finished or failed, maybe long before or after its predicted end) or never will.

        A render that ended early would otherwise leave its follow-ups planned where they no
        longer come, and keep creates from slots nobody else wants. Returns whether any were.
        """
        return bool(
            self._forget(keys=[self._keys["plan"], self._keys["plan_owners"]], args=[owner])
        )

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
            granted, delay, slot, tat_us, _ = self._try(kind, budget)
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
        safe direction). Returns whether every held slot went back. A create given back was
        not sent: its follow-ups leave the plan either way.
        """
        returned = True
        for held in self._held.values():
            returned &= bool(
                self._give_back(keys=[held.bucket], args=[held.tat_us, held.interval_us])
            )
            if held.owner:
                self.plan_forget(held.owner)
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
