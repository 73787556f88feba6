"""How a step of a generation waits or ends when it cannot go on: delays, backoff, halting
errors and failing (shared by sending, following and recovery)."""

from __future__ import annotations

import random

from django.conf import settings
from django.utils import timezone

from workspace.billing.services import reservation_close_failed
from workspace.generations.lanes import channel_kick_on_commit
from workspace.generations.models import Generation, Status
from workspace.providers.errors import ErrorClass, ProviderError


def scaled_delay(seconds: float) -> float:
    # Tests shrink every wait to zero and benchmarks run time faster; production waits as computed.
    scale = settings.REELHOUSE_DELAY_SCALE / settings.REELHOUSE_TIME_SCALE
    return max(0.0, seconds * scale)


def backoff(attempt: int, *, base: float = 2.0, cap: float = 120.0) -> float:
    # Full jitter, so retries from many rows never line up into a burst.
    return random.uniform(0, min(cap, base * 2**attempt))


CHANNEL_HALTING = {ErrorClass.AUTH, ErrorClass.QUOTA_EXHAUSTED}


def halt_reason(error: ProviderError) -> str:
    return f"{error.member_message} The provider said: {error.message}"


def fail(generation: Generation, error: ProviderError, *, from_: str | set[str]) -> bool:
    failed = generation.transition(
        Status.FAILED,
        from_=from_,
        error_class=error.error_class.value,
        error_message=error.message[:2000],
        completed_at=timezone.now(),
    )
    if failed:
        # Its place at the provider (or in the in-flight cap) is free for the next one.
        channel_kick_on_commit(channel_id=generation.channel_id)
        # Released, or settled when the provider bills this kind of failure (billing/policy.py).
        reservation_close_failed(generation=generation)
    return failed
