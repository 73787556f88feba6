"""The Gemini API (Veo) models Reelhouse offers: sizes, lengths and list prices."""

from __future__ import annotations

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

# Google Gemini API, Veo 3.1 through :predictLongRunning (python-genai v2.19.0; the Veo guide).
# Audio is always on and there is no seed on this surface. A first frame (``image``), a last
# frame (``lastFrame``) and up to three reference images (Veo 3.1 and Fast, not Lite; 8 s only)
# go in the instance; an extension (``video``) adds 7 s to a 720p Veo output, up to 148 s.
CATALOG = Catalog(
    models=(
        ModelSpec(
            id="veo-3.1-generate-preview",
            label="Veo 3.1 (Gemini API)",
            sizes=(
                LANDSCAPE,
                PORTRAIT,
                HD_LANDSCAPE,
                HD_PORTRAIT,
                UHD_LANDSCAPE,
                UHD_PORTRAIT,
            ),
            seconds=(4, 6, 8),
            default_size=LANDSCAPE,
            default_seconds=8,
            supports_input_reference=True,
            typical_render_seconds=120,
            cents_per_second_by_resolution={"720p": 40, "1080p": 40, "4k": 60},
            supports_audio=True,
            supports_negative_prompt=True,
            supports_last_frame=True,
            max_reference_images=3,
            seconds_with_images={"reference": (8,)},
            extend_seconds=(7,),
            max_total_seconds=148,
            # Google's Veo guide: "+7 s per call, up to 20 times".
            max_extensions=20,
            extend_sizes=(LANDSCAPE, PORTRAIT),
            seconds_by_resolution=VEO_HIGH_RES_SECONDS,
            note="The preview ids may have been shut down on 2026-10-22 (unconfirmed).",
        ),
        ModelSpec(
            id="veo-3.1-fast-generate-preview",
            label="Veo 3.1 Fast (Gemini API)",
            sizes=(
                LANDSCAPE,
                PORTRAIT,
                HD_LANDSCAPE,
                HD_PORTRAIT,
                UHD_LANDSCAPE,
                UHD_PORTRAIT,
            ),
            seconds=(4, 6, 8),
            default_size=LANDSCAPE,
            default_seconds=8,
            supports_input_reference=True,
            typical_render_seconds=60,
            cents_per_second_by_resolution={"720p": 10, "1080p": 12, "4k": 30},
            supports_audio=True,
            supports_negative_prompt=True,
            supports_last_frame=True,
            max_reference_images=3,
            seconds_with_images={"reference": (8,)},
            extend_seconds=(7,),
            max_total_seconds=148,
            # Google's Veo guide: "+7 s per call, up to 20 times".
            max_extensions=20,
            extend_sizes=(LANDSCAPE, PORTRAIT),
            seconds_by_resolution=VEO_HIGH_RES_SECONDS,
            note="The preview ids may have been shut down on 2026-10-22 (unconfirmed).",
        ),
        ModelSpec(
            id="veo-3.1-lite-generate-preview",
            label="Veo 3.1 Lite (Gemini API)",
            sizes=(LANDSCAPE, PORTRAIT, HD_LANDSCAPE, HD_PORTRAIT),
            seconds=(4, 6, 8),
            default_size=LANDSCAPE,
            default_seconds=8,
            supports_input_reference=True,
            typical_render_seconds=45,
            cents_per_second_by_resolution={"720p": 5, "1080p": 8},
            supports_audio=True,
            supports_negative_prompt=True,
            seconds_by_resolution=VEO_HIGH_RES_SECONDS,
            note="The preview ids may have been shut down on 2026-10-22 (unconfirmed); "
            "a last frame and extension on Lite are not confirmed, so not offered.",
        ),
    )
)
