"""The fal.ai models Reelhouse offers: sizes, lengths and list prices."""

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

# fal.ai queue (fal.ai/models/fal-ai/veo3.1/llms.txt). Each model's image-to-video variant is a
# sub-endpoint (``…/image-to-video``) that takes the first frame as ``image_url``. The
# first/last-frame, reference-to-video and extend-video variants are an unconfirmed list in the
# reference, so last frames, reference images and extension are not offered here.
CATALOG = Catalog(
    models=(
        ModelSpec(
            id="fal-ai/veo3.1",
            label="Veo 3.1 (via fal)",
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
            typical_render_seconds=90,
            cents_per_second_by_resolution={"720p": 40, "1080p": 40, "4k": 60},
            silent_cents_per_second_by_resolution={"720p": 20, "1080p": 20, "4k": 40},
            supports_audio=True,
            audio_toggle=True,
            supports_negative_prompt=True,
            supports_seed=True,
            seconds_by_resolution=VEO_HIGH_RES_SECONDS,
            note="8 s at 1080p/4k is Google's Veo rule, assumed to hold on fal too.",
        ),
        ModelSpec(
            id="fal-ai/veo3.1/fast",
            label="Veo 3.1 Fast (via fal)",
            sizes=(LANDSCAPE, PORTRAIT, HD_LANDSCAPE, HD_PORTRAIT),
            seconds=(4, 6, 8),
            default_size=LANDSCAPE,
            default_seconds=8,
            supports_input_reference=True,
            typical_render_seconds=60,
            cents_per_second_by_resolution={"720p": 15, "1080p": 15},
            silent_cents_per_second_by_resolution={"720p": 10, "1080p": 10},
            supports_audio=True,
            audio_toggle=True,
            supports_negative_prompt=True,
            supports_seed=True,
            seconds_by_resolution=VEO_HIGH_RES_SECONDS,
            note="Prices and the 720p/1080p limit come from a reseller page (unconfirmed).",
        ),
    )
)
