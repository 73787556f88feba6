"""Protocol-independent machinery of the provider simulator.

Everything here is shared by every simulated protocol: the live configuration and its validation,
the simulated clock, the counters, the sliding rate-limit window, the seeded fault dice, the
create log and the small request/response types the HTTP layer and the protocols exchange.
A protocol module (``protocols/openai_videos.py``, ``runway.py``, ``fal.py``, ``gemini.py``,
all on the job machinery of ``protocols/common.py``) only decides what its wire format looks
like; *when* a fault fires is decided here, once, so every protocol misbehaves in the same
measurable way.

This module must not import Django: the simulator runs in test threads and as a bare process.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

RATE_WINDOW_SIM_SECONDS = 60.0


@dataclass
class SimulatorConfig:
    """Every switch of the simulator; all of them may be changed while it runs."""

    # Simulated seconds from create to a terminal state (queued for the first 10 %).
    render_seconds: float = 6.0
    # When > 0, a job renders this many simulated seconds per second of video instead (longer
    # videos take longer, as at real providers); render_seconds is then ignored.
    render_seconds_per_video_second: float = 0.0
    # Simulated seconds per real second; scales job timing, content TTL and the RPM window.
    time_scale: float = 1.0
    # Real milliseconds added before every API request is handled.
    latency_ms: int = 0
    # Requests per simulated minute over all API requests; None disables the limit.
    rpm_limit: int | None = None
    # "all": every API request counts against rpm_limit; "create": only creates do, as with
    # providers that limit job creation separately from status checks and downloads.
    rpm_scope: str = "all"
    fail_5xx_rate: float = 0.0
    fail_5xx_after_create_rate: float = 0.0
    reset_rate: float = 0.0
    reset_after_create_rate: float = 0.0
    slow_rate: float = 0.0
    # Real seconds a "slow" request is held before it is answered.
    slow_seconds: float = 30.0
    processing_error_rate: float = 0.0
    moderation_rate: float = 0.0
    insufficient_quota: bool = False
    # None: any non-empty bearer token is accepted; otherwise only these.
    api_keys: list[str] | None = None
    # Simulated seconds after completion until the downloadable assets expire.
    content_ttl_seconds: float = 3600.0
    # Seed for the *_rate dice; None draws from the process RNG (non-deterministic).
    seed: int | None = None
    # The real API rejects an input_reference image whose dimensions differ from ``size``.
    reference_size_check: bool = True

    def __post_init__(self) -> None:
        for name, value in validate_config_changes(asdict(self)).items():
            setattr(self, name, value)


_FieldKind = Literal["rate", "float", "positive_float", "int", "opt_int", "opt_pos_int", "bool",
                     "opt_keys", "scope"]

_FIELD_KINDS: dict[str, _FieldKind] = {
    "render_seconds": "float",
    "render_seconds_per_video_second": "float",
    "time_scale": "positive_float",
    "latency_ms": "int",
    "rpm_limit": "opt_pos_int",
    "rpm_scope": "scope",
    "fail_5xx_rate": "rate",
    "fail_5xx_after_create_rate": "rate",
    "reset_rate": "rate",
    "reset_after_create_rate": "rate",
    "slow_rate": "rate",
    "slow_seconds": "float",
    "processing_error_rate": "rate",
    "moderation_rate": "rate",
    "insufficient_quota": "bool",
    "api_keys": "opt_keys",
    "content_ttl_seconds": "float",
    "seed": "opt_int",
    "reference_size_check": "bool",
}


def _check_value(name: str, kind: _FieldKind, value: object) -> object:
    """Return the normalised value or raise ValueError naming the field and what it accepts."""
    # bool is an int subclass; a JSON ``true`` for a number is a caller bug, not a 1.
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("rate", "float", "positive_float"):
        if not is_number or not math.isfinite(float(value)):  # type: ignore[arg-type]
            raise ValueError(f"{name} must be a number, got {value!r}")
        number = float(value)  # type: ignore[arg-type]
        if kind == "rate" and not 0.0 <= number <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if kind == "float" and number < 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
        if kind == "positive_float" and number <= 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
        return number
    if kind in ("int", "opt_int", "opt_pos_int"):
        if value is None and kind != "int":
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer{' or null' if kind != 'int' else ''}, "
                             f"got {value!r}")
        if kind == "int" and value < 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
        if kind == "opt_pos_int" and value < 1:
            raise ValueError(f"{name} must be >= 1 or null, got {value!r}")
        return value
    if kind == "scope":
        if value not in ("all", "create"):
            raise ValueError(f"{name} must be 'all' or 'create', got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    # opt_keys
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(k, str) and k for k in value):
        raise ValueError(f"{name} must be a list of non-empty strings or null")
    return list(value)


def validate_config_changes(changes: Mapping[str, object]) -> dict[str, object]:
    """Check a partial config; unknown keys or wrongly typed values raise ValueError."""
    unknown = sorted(set(changes) - set(_FIELD_KINDS))
    if unknown:
        raise ValueError(f"unknown config key(s): {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(_FIELD_KINDS))}")
    return {name: _check_value(name, _FIELD_KINDS[name], value) for name, value in changes.items()}


def mask_secret(secret: str) -> str:
    """OpenAI's style (``sk-...abcd``), but short keys are hidden entirely so none leaks whole."""
    if len(secret) < 16:
        return "*" * 4
    return f"{secret[:3]}...{secret[-4:]}"


def config_snapshot(config: SimulatorConfig) -> dict[str, Any]:
    """The config as JSON-ready data, with API keys masked: control answers may end up in logs."""
    data = asdict(config)
    if data["api_keys"] is not None:
        data["api_keys"] = [mask_secret(k) for k in data["api_keys"]]
    return data


def format_duration(seconds: float) -> str:
    """Go-style durations as OpenAI's x-ratelimit-reset-* headers use them: 20ms, 1.5s, 6m0s."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"

    def short(value: float) -> str:
        return f"{value:.3f}".rstrip("0").rstrip(".")

    if seconds < 60:
        return f"{short(seconds)}s"
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    prefix = f"{hours}h" if hours else ""
    return f"{prefix}{minutes}m{short(rest)}s"


def render_seconds_for(config: SimulatorConfig, video_seconds: int) -> float:
    """Simulated seconds a job of this length takes to render under ``config``."""
    if config.render_seconds_per_video_second > 0:
        return config.render_seconds_per_video_second * video_seconds
    return config.render_seconds


class SimClock:
    """Simulated seconds that advance ``time_scale`` times faster than real time.

    The scale is re-read on every call so a switch flipped at runtime (even by assigning the
    config attribute directly) bends time from that moment on instead of jumping every job.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._real_base = time.monotonic()
        self._sim_base = 0.0
        self._scale = config.time_scale

    def now(self) -> float:
        with self._lock:
            real = time.monotonic()
            scale = self.config.time_scale
            if scale != self._scale:
                self._sim_base += (real - self._real_base) * self._scale
                self._real_base = real
                self._scale = scale
            return self._sim_base + (real - self._real_base) * self._scale

    def to_real(self, sim_seconds: float) -> float:
        """A simulated span in real seconds at the current scale."""
        return sim_seconds / self.config.time_scale

    def wall_at(self, sim_time: float) -> float:
        """Unix time at which the simulated clock reads ``sim_time`` (at the current scale)."""
        return time.time() + (sim_time - self.now()) / self.config.time_scale


COUNTER_NAMES: tuple[str, ...] = (
    "requests_total",
    "creates",
    "creates_rejected",
    "status_calls",
    "list_calls",
    "downloads",
    "downloads_video",
    "downloads_thumbnail",
    "downloads_spritesheet",
    "deletes",
    "rate_limited_429",
    "quota_rejected_429",
    "unauthorized_401",
    "errors_5xx_sent",
    "connections_reset",
    "slow_responses",
    "jobs_completed",
    "jobs_failed",
    "jobs_billed",
    "billed_seconds",
    "billed_cents",
)

# What a protocol says a request is; the core maps it onto counters.
CallKind = Literal["create", "status", "list", "download", "delete"]
_CALL_COUNTERS: dict[str, str] = {
    "create": "",  # "creates" counts jobs, not attempts; see docs/simulator.md
    "status": "status_calls",
    "list": "list_calls",
    "download": "downloads",
    "delete": "deletes",
}


@dataclass(frozen=True)
class RateVerdict:
    allowed: bool
    limit: int
    remaining: int
    # Simulated seconds until the window frees its next slot (0 when it is empty).
    next_slot_in: float


class RateWindow:
    """A sliding 60-simulated-second window of admitted requests."""

    def __init__(self) -> None:
        self._hits: deque[float] = deque()

    def clear(self) -> None:
        self._hits.clear()

    def admit(self, limit: int, now: float) -> RateVerdict:
        """Admit and record one request, or refuse it; refused requests are not recorded."""
        self._expire(now)
        allowed = len(self._hits) < limit
        if allowed:
            self._hits.append(now)
        return self._verdict(allowed, limit, now)

    def peek(self, limit: int, now: float) -> RateVerdict:
        """The window's state without recording anything."""
        self._expire(now)
        return self._verdict(len(self._hits) < limit, limit, now)

    def _expire(self, now: float) -> None:
        while self._hits and self._hits[0] <= now - RATE_WINDOW_SIM_SECONDS:
            self._hits.popleft()

    def _verdict(self, allowed: bool, limit: int, now: float) -> RateVerdict:
        next_slot = self._hits[0] + RATE_WINDOW_SIM_SECONDS - now if self._hits else 0.0
        return RateVerdict(allowed, limit, max(0, limit - len(self._hits)), max(0.0, next_slot))


class Dice:
    """Fault decisions that are reproducible per (request number, switch) when a seed is set.

    Hashing instead of drawing from one stream keeps a switch's decisions independent of which
    other switches are on, so turning on moderation does not reshuffle which requests reset.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._rng = random.Random()

    def roll(self, seq: int, name: str) -> float:
        seed = self.config.seed
        if seed is None:
            return self._rng.random()
        digest = hashlib.blake2b(f"{seed}|{seq}|{name}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def hit(self, rate: float, seq: int, name: str) -> bool:
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        return self.roll(seq, name) < rate


@dataclass
class SimRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    # Lower-cased header names; a repeated header keeps its last value.
    headers: dict[str, str]
    body: bytes
    # Position of this API request since the last reset; keys the fault dice.
    seq: int = 0
    # "https" on the simulator's TLS port: URLs handed out keep the scheme the client used.
    scheme: str = "http"

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class SimResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # Set by a protocol when this request created a job, so after-create faults may apply.
    created_job_id: str | None = None
    # Faults the request asked for itself (prompt triggers), applied regardless of the rates.
    forced_faults: frozenset[str] = frozenset()

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None,
             ) -> SimResponse:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status=status, body=body, headers=dict(headers or {}))


class SimContext:
    """State shared by the core and every protocol; guard every mutation with ``lock``."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        # Re-entrant so a protocol's sweep can run inside a counters() snapshot.
        self.lock = threading.RLock()
        self.clock = SimClock(config)
        self.dice = Dice(config)
        self.rate_window = RateWindow()
        self.stop_event = threading.Event()
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self.create_log: list[dict[str, Any]] = []
        self._create_index: dict[str, dict[str, Any]] = {}
        self._seq = 0

    def replace_config(self, config: SimulatorConfig) -> None:
        with self.lock:
            self.clock.now()  # settle simulated time at the old scale before swapping
            self.config = config
            self.clock.config = config
            self.dice.config = config

    def next_seq(self) -> int:
        with self.lock:
            self._seq += 1
            return self._seq

    def inc(self, name: str, amount: int = 1) -> None:
        with self.lock:
            self.counters[name] += amount

    def count_call(self, kind: CallKind | None, variant: str | None = None) -> None:
        counter = _CALL_COUNTERS.get(kind or "", "")
        if counter:
            self.inc(counter)
        if kind == "download" and variant:
            self.inc(f"downloads_{variant}")

    def log_create(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.create_log.append(entry)
            self._create_index[entry["id"]] = entry

    def annotate_create(self, job_id: str, **facts: Any) -> None:
        """Record what the client was told about a create (answer, slow) in its log entry."""
        with self.lock:
            entry = self._create_index.get(job_id)
            if entry is not None:
                entry.update(facts)

    def sleep(self, seconds: float) -> None:
        """Wait real seconds, but wake at once when the server stops."""
        if seconds > 0:
            self.stop_event.wait(seconds)

    def clear(self) -> None:
        with self.lock:
            self.counters = dict.fromkeys(COUNTER_NAMES, 0)
            self.create_log = []
            self._create_index = {}
            self.rate_window.clear()
            self._seq = 0


class SimulatedAPI(ABC):
    """One provider's wire format (or the shared file host), mounted under ``prefix``.

    The core runs faults, auth and rate limiting in the same order for every API and asks the
    API only how to phrase each answer. A provider's simulated API is named by its spec
    (``ProviderSpec.simulator``, mounted at ``simulator_path``, which must equal ``prefix``)
    and built as ``cls(ctx, media, cdn)`` by the server.
    """

    prefix: str
    request_id_header: str = "x-request-id"
    processing_time_header: str | None = None

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx

    @abstractmethod
    def classify(self, request: SimRequest) -> tuple[CallKind | None, str | None]:
        """The kind of call (for counters) and, for downloads, the variant asked for."""

    @abstractmethod
    def api_key(self, request: SimRequest) -> str | None:
        """The credential the request carries, or None."""

    @abstractmethod
    def handle(self, request: SimRequest) -> SimResponse:
        """Answer an authenticated, admitted request."""

    @abstractmethod
    def unauthorized(self, key: str | None) -> SimResponse: ...

    @abstractmethod
    def rate_limited(self, verdict: RateVerdict, retry_after: int) -> SimResponse: ...

    @abstractmethod
    def server_error(self, overloaded: bool) -> SimResponse: ...

    @abstractmethod
    def rate_headers(self, verdict: RateVerdict) -> dict[str, str]: ...

    @abstractmethod
    def sweep(self) -> None:
        """Commit every terminal transition that is due (billing, counters), exactly once."""

    @abstractmethod
    def reset(self) -> None:
        """Forget every job."""
