"""Veo on the Gemini Enterprise Agent Platform (formerly Vertex AI): models and list prices."""

from __future__ import annotations

from typing import Any

from workspace.providers.catalog import (
    HD_LANDSCAPE,
    HD_PORTRAIT,
    LANDSCAPE,
    PORTRAIT,
    UHD_LANDSCAPE,
    UHD_PORTRAIT,
    VEO_HIGH_RES_SECONDS,
    Catalog,
    ModelSpec,
)

# The reference (§1.2, §5): veo-3.1-generate-001 and -fast-001 are GA since 2025-11-17 with
# "Retirement: November 17, 2026 or later"; -lite-001 is a preview. The same per-second prices
# as the Gemini API with audio, and published rates without it (generateAudio false): $0.20
# (Standard), $0.08/$0.10/$0.25 (Fast), $0.03/$0.05 (Lite). Standard's silent 4k rate is not
# published; 40 c/s (fal's silent 4k Veo 3.1 price) is ours. Unlike the Gemini API, this surface
# takes a seed and switches audio off. Extension is not offered here: it needs the earlier
# video back as a gs:// URI or its bytes, and Reelhouse asks for inline bytes (no bucket).
_RETIREMENT = "Google lists retirement 'November 17, 2026 or later' for the 001 ids (unconfirmed)."
_SIZES = (LANDSCAPE, PORTRAIT, HD_LANDSCAPE, HD_PORTRAIT, UHD_LANDSCAPE, UHD_PORTRAIT)

# What every Veo 3.1 model here takes: 4/6/8 s (8 s only at 1080p and 4k), a first frame, sound
# on or off, a seed and a negative prompt.
_EVERY_VEO: dict[str, Any] = {
    "seconds": (4, 6, 8),
    "default_size": LANDSCAPE,
    "default_seconds": 8,
    "supports_input_reference": True,
    "supports_audio": True,
    "audio_toggle": True,
    "supports_negative_prompt": True,
    "supports_seed": True,
    "seconds_by_resolution": VEO_HIGH_RES_SECONDS,
}

CATALOG = Catalog(
    models=(
        ModelSpec(
            **_EVERY_VEO,
            id="veo-3.1-generate-001",
            label="Veo 3.1 (Agent Platform)",
            sizes=_SIZES,
            supports_last_frame=True,
            max_reference_images=3,
            seconds_with_images={"reference": (8,)},
            typical_render_seconds=120,
            cents_per_second_by_resolution={"720p": 40, "1080p": 40, "4k": 60},
            silent_cents_per_second_by_resolution={"720p": 20, "1080p": 20, "4k": 40},
            note=_RETIREMENT + " Silent 4k price assumed (40 c/s).",
        ),
        ModelSpec(
            **_EVERY_VEO,
            id="veo-3.1-fast-generate-001",
            label="Veo 3.1 Fast (Agent Platform)",
            sizes=_SIZES,
            supports_last_frame=True,
            max_reference_images=3,
            seconds_with_images={"reference": (8,)},
            typical_render_seconds=60,
            cents_per_second_by_resolution={"720p": 10, "1080p": 12, "4k": 30},
            silent_cents_per_second_by_resolution={"720p": 8, "1080p": 10, "4k": 25},
            note=_RETIREMENT,
        ),
        ModelSpec(
            **_EVERY_VEO,
            id="veo-3.1-lite-generate-001",
            label="Veo 3.1 Lite (Agent Platform, preview)",
            sizes=(LANDSCAPE, PORTRAIT, HD_LANDSCAPE, HD_PORTRAIT),
            typical_render_seconds=45,
            cents_per_second_by_resolution={"720p": 5, "1080p": 8},
            silent_cents_per_second_by_resolution={"720p": 3, "1080p": 5},
            note="A preview model; a last frame and reference images on Lite are not "
            "confirmed, so not offered.",
        ),
    )
)
