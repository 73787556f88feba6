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
# offered because no price for them was found.
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
            typical_render_seconds=120,
            cents_per_second_by_resolution={"720p": 6, "1080p": 24},
            note="Prices are unconfirmed; Luma makes 10 s clips from text only.",
        ),
    )
)
