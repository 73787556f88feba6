"""Unit checks of the protocol-independent machinery (clock, window, dice, config)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from workspace.simulator.core import (
    COUNTER_NAMES,
    Dice,
    RateWindow,
    SimClock,
    SimulatorConfig,
    config_snapshot,
    format_duration,
    mask_secret,
)
from workspace.simulator.media import MediaCache, media_cache, scaled_dimensions


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0ms"), (0.02, "20ms"), (1, "1s"), (1.5, "1.5s"), (59.9994, "59.999s"), (360, "6m0s"),
    (3725.5, "1h2m5.5s"),
])
def test_durations_use_openai_header_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_changing_the_time_scale_bends_time_without_jumping() -> None:
    config = SimulatorConfig(time_scale=1000.0)
    clock = SimClock(config)
    time.sleep(0.01)
    before = clock.now()
    assert before >= 10
    config.time_scale = 1.0  # a direct assignment is honoured too
    after = clock.now()
    assert 0 <= after - before < 1  # no jump by the new scale
    assert clock.to_real(60) == 60


def test_the_rate_window_slides_and_ignores_refusals() -> None:
    window = RateWindow()
    assert window.admit(2, now=0.0).remaining == 1
    assert window.admit(2, now=10.0).remaining == 0
    refused = window.admit(2, now=20.0)
    assert not refused.allowed and refused.next_slot_in == pytest.approx(40.0)
    assert window.admit(2, now=59.0).allowed is False
    assert window.admit(2, now=60.0).allowed is True  # the t=0 request has left the window
    assert window.peek(2, now=60.0).remaining == 0


def test_seeded_dice_are_reproducible_and_independent_per_switch() -> None:
    first, second = Dice(SimulatorConfig(seed=5)), Dice(SimulatorConfig(seed=5))
    rolls = [first.roll(n, "reset") for n in range(50)]
    assert rolls == [second.roll(n, "reset") for n in range(50)]
    assert rolls != [first.roll(n, "moderation") for n in range(50)]
    assert 15 < sum(first.hit(0.5, n, "reset") for n in range(50)) < 35
    assert not first.hit(0.0, 1, "x") and first.hit(1.0, 1, "x")


def test_config_validation_and_normalisation() -> None:
    config = SimulatorConfig(fail_5xx_rate=1, render_seconds=3)
    assert isinstance(config.fail_5xx_rate, float) and config.render_seconds == 3.0
    with pytest.raises(ValueError, match="time_scale"):
        SimulatorConfig(time_scale=0)
    with pytest.raises(ValueError, match="api_keys"):
        SimulatorConfig(api_keys=[""])
    snapshot = config_snapshot(SimulatorConfig(api_keys=["sk-live-0000000000009876", "short"]))
    assert snapshot["api_keys"] == ["sk-...9876", "****"]


def test_masking_never_reveals_a_short_key() -> None:
    assert mask_secret("sk-1234") == "****"
    assert mask_secret("sk-proj-abcdefghijklmnop") == "sk-...mnop"


def test_counter_names_are_unique() -> None:
    assert len(set(COUNTER_NAMES)) == len(COUNTER_NAMES)


@pytest.mark.parametrize(("size", "scaled"), [
    ("720x1280", (90, 160)), ("1280x720", (160, 90)), ("1024x1792", (128, 224)),
    ("1792x1024", (224, 128)),
])
def test_media_is_an_eighth_of_the_size_in_even_pixels(size: str, scaled: tuple[int, int]) -> None:
    assert scaled_dimensions(size) == scaled


def test_a_disk_media_cache_is_reused(tmp_path: Path) -> None:
    first = MediaCache(tmp_path)
    data = first.get("thumbnail", "1280x720", 4)
    (cached,) = tmp_path.iterdir()
    assert cached.read_bytes() == data and data[:3] == b"\xff\xd8\xff"
    cached.write_bytes(b"\xff\xd8\xff marker")  # a second cache must read the file, not render
    assert MediaCache(tmp_path).get("thumbnail", "1280x720", 4) == b"\xff\xd8\xff marker"
    assert media_cache(tmp_path) is media_cache(tmp_path)
