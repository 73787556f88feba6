"""The Luma models Reelhouse offers: sizes, lengths and list prices."""

from __future__ import annotations

from workspace.providers.catalog import (
    HD_LANDSCAPE,
    HD_PORTRAIT,
    LANDSCAPE,
    PORTRAIT,
    Catalog,
    ModelSpec,
)

# Luma Agents API, ray-3.2 (luma-agents-python 0.5.0 types; docs.agents.lumalabs.ai). Luma prices
# each video by resolution, dynamic range and length; the per-second figures are its 5-second SDR
# prices divided by five (unconfirmed, see docs/provider-assumptions.md). 540p and 360p are not
# offered because no price for them was found. A start and an end frame go in ``video`` as
# ``ImageRef``s, 5-second clips only (10 s is text-to-video only). An extension names the earlier
# generation in ``start_frame`` (luma-agents ImageRefParam); its length per call and the total
# are unconfirmed: 5 s per call up to 30 s are ours.
CATALOG = Catalog(
    models=(
        ModelSpec(
            id="ray-3.2",
            label="Luma Ray 3.2",
            sizes=(LANDSCAPE, PORTRAIT, HD_LANDSCAPE, HD_PORTRAIT),
            seconds=(5, 10),
            default_size=LANDSCAPE,
            default_seconds=5,
            supports_input_reference=True,
            supports_last_frame=True,
            seconds_with_images={"first_frame": (5,), "last_frame": (5,)},
            extend_seconds=(5,),
            max_total_seconds=30,
            typical_render_seconds=120,
            cents_per_second_by_resolution={"720p": 6, "1080p": 24},
            note="Prices and extension limits are unconfirmed; Luma makes 10 s clips from text "
            "only.",
        ),
    )
)
