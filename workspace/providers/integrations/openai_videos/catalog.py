"""The OpenAI Videos models Reelhouse offers: sizes, lengths and list prices."""

from __future__ import annotations

from workspace.providers.catalog import (
    LANDSCAPE,
    PORTRAIT,
    TALL,
    WIDE,
    Catalog,
    ModelSpec,
)

# From the OpenAI Videos OpenAPI excerpt (VideoSize, VideoSeconds) and the model pages' prices.
CATALOG = Catalog(
    models=(
        ModelSpec(
            id="sora-2",
            label="Sora 2",
            sizes=(LANDSCAPE, PORTRAIT),
            seconds=(4, 8, 12),
            default_size=LANDSCAPE,
            default_seconds=4,
            cents_per_second={LANDSCAPE: 10, PORTRAIT: 10},
            supports_input_reference=True,
            typical_render_seconds=60,
            supports_audio=True,
        ),
        ModelSpec(
            id="sora-2-pro",
            label="Sora 2 Pro",
            sizes=(LANDSCAPE, PORTRAIT, WIDE, TALL),
            seconds=(4, 8, 12),
            default_size=LANDSCAPE,
            default_seconds=4,
            cents_per_second={LANDSCAPE: 30, PORTRAIT: 30, WIDE: 50, TALL: 50},
            supports_input_reference=True,
            typical_render_seconds=180,
            supports_audio=True,
        ),
    )
)
