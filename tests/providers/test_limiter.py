"""The channel limiter across several OS processes, against the real Redis server."""

from __future__ import annotations

import itertools
import multiprocessing
import time

import pytest
import redis
from django.conf import settings

from workspace.providers.limiter import SAFETY, ChannelLimiter, Throttled

RPM = 600  # an interval of ~101 ms keeps the test short


def limiter(url: str, *, rpm: int = RPM, creates: int | None = None) -> ChannelLimiter:
    return ChannelLimiter(
        redis.Redis.from_url(url), channel_id=7, requests_per_minute=rpm, creates_per_minute=creates
    )


def _take_slots(url: str, count: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    own = limiter(url)
    slots = []
    for _ in range(count):
        own.acquire("other", max_wait=30)
        assert own.last_slot_at is not None
        slots.append(own.last_slot_at)
    results.put(slots)


def test_processes_share_one_evenly_spaced_sequence_of_slots(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    workers = [context.Process(target=_take_slots, args=(url, 6, results)) for _ in range(4)]
    for process in workers:
        process.start()
    per_process = [results.get(timeout=60) for _ in workers]
    for process in workers:
        process.join(timeout=10)
        assert process.exitcode == 0
    slots = sorted(slot for taken in per_process for slot in taken)
    interval = 60 / (RPM * SAFETY)
    assert len(slots) == 24
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    # Slots are handed out by Redis, one interval apart, whichever process asked.
    assert min(gaps) >= interval - 0.002
    assert max(gaps) <= interval + 0.002
    # So no sliding window ever holds more than the limit: 600 a minute is 10 a second.
    window = 1.0
    assert all(sum(1 for s in slots if start <= s < start + window) <= 10 for start in slots)


def test_a_pushback_pauses_every_process(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    first, second = limiter(url), limiter(url)
    first.acquire("other", max_wait=1)
    # A 429 seen by one worker...
    first.pushback(2.0)
    # ...holds back another worker (another process in production) without using a slot.
    with pytest.raises(Throttled) as caught:
        second.acquire("other", max_wait=0.5)
    assert caught.value.reason == "provider pause"
    assert 1.5 < caught.value.wait <= 2.0
    state = second.state()
    assert state.paused_until is not None
    # A shorter pushback never shortens a longer pause.
    second.pushback(0.1)
    assert second.state().paused_until == state.paused_until


def test_a_pause_that_starts_while_waiting_voids_the_slot(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    slow = limiter(url, rpm=60)  # one slot a second
    slow.acquire("other", max_wait=1)
    context = multiprocessing.get_context("fork")
    pusher = context.Process(target=_push_soon, args=(url,))
    pusher.start()
    with pytest.raises(Throttled):
        slow.acquire("other", max_wait=2)  # sleeps ~1 s for its slot, then sees the pause
    pusher.join(timeout=10)


def _push_soon(url: str) -> None:
    time.sleep(0.3)
    limiter(url, rpm=60).pushback(5)


def test_creates_can_have_their_own_bucket(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    split = limiter(url, rpm=6000, creates=6)  # a create every ~10 s, status calls every ~10 ms
    split.acquire("create", max_wait=1)
    with pytest.raises(Throttled) as caught:
        split.acquire("create", max_wait=1)
    assert caught.value.reason == "rate limit"
    assert caught.value.wait > 9
    split.acquire("other", max_wait=1)  # status checks are not held up by creates


def test_a_held_slot_is_used_by_the_next_call(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    paced = limiter(url, rpm=6)
    paced.acquire("other", max_wait=1, hold=True)
    assert paced.acquire("other", max_wait=0) == 0.0  # the held slot, no second reservation
    with pytest.raises(Throttled):
        paced.acquire("other", max_wait=1)


def _create_backlog(url: str, seconds: float, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    # A dispatch lane with endless work: take every create slot it can for ``seconds``.
    own = limiter(url)
    deadline = time.monotonic() + seconds
    sent = []
    while time.monotonic() < deadline:
        try:
            own.acquire("create", max_wait=5)
        except Throttled:
            continue
        assert own.last_slot_at is not None
        sent.append(own.last_slot_at)
    results.put(sent)


def test_a_follow_up_waits_at_most_one_interval_behind_a_create_backlog(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    interval = 60 / (RPM * SAFETY)
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    lanes = [context.Process(target=_create_backlog, args=(url, 3.0, results)) for _ in range(3)]
    for process in lanes:
        process.start()
    follow = limiter(url)
    time.sleep(0.5)  # the lanes are competing for every slot now
    started = time.monotonic()
    waits, follow_slots = [], []
    while time.monotonic() - started < 2.0:
        waits.append(follow.acquire("other", max_wait=5))
        assert follow.last_slot_at is not None
        follow_slots.append(follow.last_slot_at)
        time.sleep(interval * 1.7)  # arrive at an arbitrary point of a slot
    creates = sorted(slot for _ in lanes for slot in results.get(timeout=30))
    for process in lanes:
        process.join(timeout=10)
    # Three lanes wanting every slot never put more than the one slot already taken in front
    # of a status check or a download.
    assert len(waits) >= 8
    assert max(waits) <= interval + 0.015
    # And no slot was lost: creates took every slot the follow-ups left, at the limit's pace.
    slots = sorted(creates + follow_slots)
    inside = [s for s in slots if slots[0] + 0.5 <= s <= slots[-1] - 0.5]
    span = inside[-1] - inside[0]
    assert (len(inside) - 1) / span >= 0.97 / interval
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) >= interval * 0.5 - 0.002  # a late caller keeps its slot, never a burst


def test_a_create_never_reserves_ahead_and_a_held_slot_can_go_back(redis_conn) -> None:  # type: ignore[no-untyped-def]
    url = settings.RQ_QUEUES["default"]["URL"]
    paced = limiter(url, rpm=6)  # a slot every ~10 s
    assert paced.take_now("create") == 0.0
    wait = limiter(url, rpm=6).take_now("create")
    assert 9 < wait <= 10.2  # told when to ask again, nothing taken
    assert paced.give_back()  # unused: the next caller gets it at once
    assert limiter(url, rpm=6).acquire("other", max_wait=0) == 0.0
    # A slot somebody reserved behind cannot be returned (the safe direction): it lapses.
    assert paced.take_now("create") > 0


_NODE_SCRIPT = """
import json
from workspace.core.rq import get_redis
from workspace.providers.models import Channel
from workspace.providers.services import limiter_for_channel

own = limiter_for_channel(channel=Channel(pk=7, requests_per_minute=600))
redis = get_redis()
redis.rpush("test:nodes-ready", 1)
redis.blpop("test:nodes-go", timeout=60)
slots = []
for _ in range(6):
    own.acquire("other", max_wait=30)
    slots.append(own.last_slot_at)
print(json.dumps(slots))
"""


def test_two_nodes_with_their_own_settings_share_one_limit(redis_conn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two fresh processes configured as two machines (each its own REELHOUSE_VAR_DIR, settings
    loaded from scratch), one Redis: their slots are one sequence, as if they were one."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELHOUSE_")}
    env["REDIS_URL"] = settings.RQ_QUEUES["default"]["URL"]
    nodes = []
    for name in ("node-a", "node-b"):
        (tmp_path / name).mkdir()
        nodes.append(
            subprocess.Popen(
                [sys.executable, "manage.py", "shell", "-c", _NODE_SCRIPT],
                cwd=root,
                env={**env, "REELHOUSE_VAR_DIR": str(tmp_path / name)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    # Both set up before either takes a slot, so they really contend.
    for _ in nodes:
        assert redis_conn.blpop("test:nodes-ready", timeout=60) is not None
    redis_conn.rpush("test:nodes-go", 1, 1)
    outputs = [node.communicate(timeout=60) for node in nodes]
    assert all(node.returncode == 0 for node in nodes), outputs
    slots = sorted(s for out, _ in outputs for s in json.loads(out.strip().splitlines()[-1]))
    interval = 60 / (RPM * SAFETY)
    assert len(slots) == 12
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) >= interval - 0.002
