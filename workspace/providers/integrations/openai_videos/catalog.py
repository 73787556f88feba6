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

# Changing a finished video, per the guide (openai-videos-api.md 1.6-1.9): edits and the older
# remix; an extension adds one of the ``VideoSeconds`` enum's lengths (the field's description
# also names 16 and 20, which the enum it refers to lacks: the enum is taken) up to 120 s in
# all; a video includes at most two characters. docs/provider-assumptions.md has the details.
EXTEND_SECONDS = (4, 8, 12)
MAX_TOTAL_SECONDS = 120
MAX_CHARACTERS = 2

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
            can_edit=True,
            can_remix=True,
            extend_seconds=EXTEND_SECONDS,
            max_total_seconds=MAX_TOTAL_SECONDS,
            max_characters=MAX_CHARACTERS,
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
            can_edit=True,
            can_remix=True,
            extend_seconds=EXTEND_SECONDS,
            max_total_seconds=MAX_TOTAL_SECONDS,
            max_characters=MAX_CHARACTERS,
        ),
    )
)
