"""The Runway models Reelhouse offers: sizes, lengths and list prices."""

from __future__ import annotations

from workspace.providers.catalog import (
    HD_LANDSCAPE,
    HD_PORTRAIT,
    LANDSCAPE,
    PORTRAIT,
    Catalog,
    ModelSpec,
)

# Runway API (docs.dev.runwayml.com; runwayml/sdk-python v5.13.0 create params). Prices are
# credits per second at 1 credit = 1 cent (runwayml/skills rw-api-reference). A first frame goes
# to /v1/image_to_video as ``promptImage``; gen4.5 takes position "first" only [O]; a "last"
# frame on Veo is assumed (docs/provider-assumptions.md). No model here takes reference images
# or extends a video; aleph2 (video-to-video edits) is not offered.
# "promptText ... at most 1000 UTF-16 code units for most models" (API reference).
PROMPT_MAX = 1000

CATALOG = Catalog(
    models=(
        ModelSpec(
            id="gen4.5",
            label="Runway Gen-4.5",
            sizes=(LANDSCAPE, PORTRAIT),
            seconds=tuple(range(2, 11)),
            default_size=LANDSCAPE,
            default_seconds=5,
            supports_input_reference=True,
            supports_last_frame=False,
            max_prompt_length=PROMPT_MAX,
            typical_render_seconds=90,
            cents_per_second_by_resolution={"720p": 12},
            supports_seed=True,
        ),
        ModelSpec(
            id="veo3.1",
            label="Veo 3.1 (via Runway)",
            sizes=(LANDSCAPE, PORTRAIT, HD_LANDSCAPE, HD_PORTRAIT),
            seconds=(4, 6, 8),
            default_size=LANDSCAPE,
            default_seconds=8,
            supports_input_reference=True,
            supports_last_frame=True,
            max_prompt_length=PROMPT_MAX,
            typical_render_seconds=90,
            cents_per_second_by_resolution={"720p": 40, "1080p": 40},
            silent_cents_per_second_by_resolution={"720p": 20, "1080p": 20},
            supports_audio=True,
            audio_toggle=True,
            supports_negative_prompt=True,
            note="Price with/without audio is the published 20-40 credit range; a last frame is "
            "unconfirmed.",
        ),
        ModelSpec(
            id="veo3.1_fast",
            label="Veo 3.1 Fast (via Runway)",
            sizes=(LANDSCAPE, PORTRAIT, HD_LANDSCAPE, HD_PORTRAIT),
            seconds=(4, 6, 8),
            default_size=LANDSCAPE,
            default_seconds=8,
            supports_input_reference=True,
            supports_last_frame=True,
            max_prompt_length=PROMPT_MAX,
            typical_render_seconds=60,
            cents_per_second_by_resolution={"720p": 15, "1080p": 15},
            silent_cents_per_second_by_resolution={"720p": 10, "1080p": 10},
            supports_audio=True,
            audio_toggle=True,
            supports_negative_prompt=True,
            note="Price with/without audio is the published 10-15 credit range; a last frame is "
            "unconfirmed.",
        ),
    )
)
