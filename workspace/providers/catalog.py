"""What each provider protocol can generate: the single source for forms and validation.

Nothing outside these lists is ever sent to a provider: the generate form offers only these
choices and the submit service checks them again.

Every model is described in the same terms whatever its provider's wire format: ``sizes`` are
pixel sizes such as ``1280x720`` (the form and the price table use them), and each adapter maps
a size onto what its provider takes (Runway's ``ratio`` ``1280:720``; fal's and Google's
``aspect_ratio``/``aspectRatio`` ``16:9`` plus ``resolution`` ``720p``). ``size_parts`` is that
mapping; docs/provider-assumptions.md says where it is an assumption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# The short side of a size names its resolution, as the providers do.
_RESOLUTIONS = {720: "720p", 1080: "1080p", 2160: "4k"}


def size_parts(size: str) -> tuple[str, str]:
    """The aspect ratio and resolution of a pixel size: ``1280x720`` -> (``16:9``, ``720p``),
    ``2160x3840`` -> (``9:16``, ``4k``); other short sides are named in pixels (``832p``)."""
    width_text, _, height_text = size.partition("x")
    width, height = int(width_text), int(height_text)
    divisor = math.gcd(width, height) or 1
    short = min(width, height)
    return f"{width // divisor}:{height // divisor}", _RESOLUTIONS.get(short, f"{short}p")


@dataclass(frozen=True)
class ModelSpec:
    id: str
    label: str
    sizes: tuple[str, ...]
    seconds: tuple[int, ...]
    default_size: str
    default_seconds: int
    # Published list price in US cents per second of output, by size, with the model's default
    # options (audio on where the model makes sound). Derived from the per-resolution table
    # below when left empty.
    cents_per_second: dict[str, int] = field(default_factory=dict)
    # A first-frame image ("image to video") may be sent with the prompt.
    supports_input_reference: bool = False
    # Roughly how long a render takes, which paces polling and estimates waits.
    typical_render_seconds: int = 90
    # The same price table by resolution (``720p``, ``1080p``, ``4k``), as providers publish it.
    cents_per_second_by_resolution: dict[str, int] = field(default_factory=dict)
    # Price by resolution when the audio track is switched off (only with ``audio_toggle``).
    silent_cents_per_second_by_resolution: dict[str, int] = field(default_factory=dict)
    # The clip has sound; ``audio_toggle``: the request may switch it off (else always on).
    supports_audio: bool = False
    audio_toggle: bool = False
    supports_negative_prompt: bool = False
    supports_seed: bool = False
    # Style/asset reference images besides the first frame (Veo 3.1 takes up to three).
    max_reference_images: int = 0
    # Lengths allowed at a given resolution when narrower than ``seconds`` (Veo: 1080p and 4k
    # only make 8-second clips).
    seconds_by_resolution: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # One line on what is unconfirmed about this model (see docs/provider-assumptions.md).
    note: str = ""

    def __post_init__(self) -> None:
        if not self.cents_per_second and self.cents_per_second_by_resolution:
            derived = {
                size: self.cents_per_second_by_resolution[size_parts(size)[1]]
                for size in self.sizes
                if size_parts(size)[1] in self.cents_per_second_by_resolution
            }
            object.__setattr__(self, "cents_per_second", derived)

    @property
    def aspect_ratios(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(size_parts(size)[0] for size in self.sizes))

    @property
    def resolutions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(size_parts(size)[1] for size in self.sizes))

    def seconds_for(self, size: str) -> tuple[int, ...]:
        """The clip lengths this model makes at ``size``."""
        if size not in self.sizes:
            return ()
        allowed = self.seconds_by_resolution.get(size_parts(size)[1])
        return tuple(s for s in self.seconds if allowed is None or s in allowed)

    def price_cents_per_second(self, size: str, *, audio: bool | None = None) -> int | None:
        """List price at ``size``; ``audio=False`` gives the silent price where there is one."""
        resolution = size_parts(size)[1]
        if audio is False and self.audio_toggle:
            silent = self.silent_cents_per_second_by_resolution.get(resolution)
            if silent is not None:
                return silent
        return self.cents_per_second.get(size)

    def form_data(self) -> dict[str, Any]:
        """Everything a form needs to offer only possible combinations, JSON-ready."""
        return {
            "sizes": list(self.sizes),
            "seconds": list(self.seconds),
            "seconds_by_size": {size: list(self.seconds_for(size)) for size in self.sizes},
            "cents_per_second": dict(self.cents_per_second),
            "supports_input_reference": self.supports_input_reference,
            "supports_audio": self.supports_audio,
            "audio_toggle": self.audio_toggle,
            "supports_negative_prompt": self.supports_negative_prompt,
            "supports_seed": self.supports_seed,
        }

    def validate(
        self,
        *,
        size: str,
        seconds: int,
        has_reference: bool | None = None,
        audio: bool | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
    ) -> dict[str, str]:
        """Field errors for an impossible request; the keyword extras are checked when given."""
        errors: dict[str, str] = {}
        if size not in self.sizes:
            errors["size"] = (
                f"{self.label} makes {', '.join(self.sizes)}; {size!r} is not one of them."
            )
        if seconds not in self.seconds:
            allowed = ", ".join(str(s) for s in self.seconds)
            errors["seconds"] = f"{self.label} makes clips of {allowed} seconds, not {seconds}."
        elif size in self.sizes and seconds not in self.seconds_for(size):
            allowed = ", ".join(str(s) for s in self.seconds_for(size))
            errors["seconds"] = (
                f"{self.label} makes {size_parts(size)[1]} clips of {allowed} seconds only, "
                f"not {seconds}."
            )
        if has_reference and not self.supports_input_reference:
            errors["input_reference"] = f"{self.label} does not take a reference image."
        if audio is False and self.supports_audio and not self.audio_toggle:
            errors["audio"] = f"{self.label} always makes sound; it cannot be switched off."
        if audio is True and not self.supports_audio:
            errors["audio"] = f"{self.label} makes silent clips only."
        if negative_prompt and not self.supports_negative_prompt:
            errors["negative_prompt"] = f"{self.label} does not take a negative prompt."
        if seed is not None and not self.supports_seed:
            errors["seed"] = f"{self.label} does not take a seed."
        elif seed is not None and not 0 <= seed <= 4294967295:
            errors["seed"] = "The seed must be between 0 and 4294967295."
        return errors


@dataclass(frozen=True)
class Catalog:
    models: tuple[ModelSpec, ...]

    def get(self, model_id: str) -> ModelSpec | None:
        return next((m for m in self.models if m.id == model_id), None)

    @property
    def default(self) -> ModelSpec:
        return self.models[0]


_PORTRAIT, _LANDSCAPE = "720x1280", "1280x720"
_TALL, _WIDE = "1024x1792", "1792x1024"
_HD_PORTRAIT, _HD_LANDSCAPE = "1080x1920", "1920x1080"
_UHD_PORTRAIT, _UHD_LANDSCAPE = "2160x3840", "3840x2160"

# From the OpenAI Videos OpenAPI excerpt (VideoSize, VideoSeconds) and the model pages' prices.
OPENAI_VIDEOS = Catalog(
    models=(
        ModelSpec(
            id="sora-2",
            label="Sora 2",
            sizes=(_LANDSCAPE, _PORTRAIT),
            seconds=(4, 8, 12),
            default_size=_LANDSCAPE,
            default_seconds=4,
            cents_per_second={_LANDSCAPE: 10, _PORTRAIT: 10},
            supports_input_reference=True,
            typical_render_seconds=60,
            supports_audio=True,
        ),
        ModelSpec(
            id="sora-2-pro",
            label="Sora 2 Pro",
            sizes=(_LANDSCAPE, _PORTRAIT, _WIDE, _TALL),
            seconds=(4, 8, 12),
            default_size=_LANDSCAPE,
            default_seconds=4,
            cents_per_second={_LANDSCAPE: 30, _PORTRAIT: 30, _WIDE: 50, _TALL: 50},
            supports_input_reference=True,
            typical_render_seconds=180,
            supports_audio=True,
        ),
    )
)

# Runway API (docs.dev.runwayml.com; runwayml/sdk-python v5.13.0 create params). Prices are
# credits per second at 1 credit = 1 cent (runwayml/skills rw-api-reference).
RUNWAY = Catalog(
    models=(
        ModelSpec(
            id="gen4.5",
            label="Runway Gen-4.5",
            sizes=(_LANDSCAPE, _PORTRAIT),
            seconds=tuple(range(2, 11)),
            default_size=_LANDSCAPE,
            default_seconds=5,
            supports_input_reference=True,
            typical_render_seconds=90,
            cents_per_second_by_resolution={"720p": 12},
            supports_seed=True,
        ),
        ModelSpec(
            id="veo3.1",
            label="Veo 3.1 (via Runway)",
            sizes=(_LANDSCAPE, _PORTRAIT, _HD_LANDSCAPE, _HD_PORTRAIT),
            seconds=(4, 6, 8),
            default_size=_LANDSCAPE,
            default_seconds=8,
            supports_input_reference=True,
            typical_render_seconds=90,
            cents_per_second_by_resolution={"720p": 40, "1080p": 40},
            silent_cents_per_second_by_resolution={"720p": 20, "1080p": 20},
            supports_audio=True,
            audio_toggle=True,
            supports_negative_prompt=True,
            note="Price with/without audio is the published 20-40 credit range.",
        ),
        ModelSpec(
            id="veo3.1_fast",
            label="Veo 3.1 Fast (via Runway)",
            sizes=(_LANDSCAPE, _PORTRAIT, _HD_LANDSCAPE, _HD_PORTRAIT),
            seconds=(4, 6, 8),
            default_size=_LANDSCAPE,
            default_seconds=8,
            supports_input_reference=True,
            typical_render_seconds=60,
            cents_per_second_by_resolution={"720p": 15, "1080p": 15},
            silent_cents_per_second_by_resolution={"720p": 10, "1080p": 10},
            supports_audio=True,
            audio_toggle=True,
            supports_negative_prompt=True,
            note="Price with/without audio is the published 10-15 credit range.",
        ),
    )
)

# fal.ai queue (fal.ai/models/fal-ai/veo3.1/llms.txt). The image-to-video variant of each model
# is a sub-endpoint the adapter picks when a first frame is sent.
_VEO_HIGH_RES_SECONDS: dict[str, tuple[int, ...]] = {"1080p": (8,), "4k": (8,)}
FAL = Catalog(
    models=(
        ModelSpec(
            id="fal-ai/veo3.1",
            label="Veo 3.1 (via fal)",
            sizes=(
                _LANDSCAPE,
                _PORTRAIT,
                _HD_LANDSCAPE,
                _HD_PORTRAIT,
                _UHD_LANDSCAPE,
                _UHD_PORTRAIT,
            ),
            seconds=(4, 6, 8),
            default_size=_LANDSCAPE,
            default_seconds=8,
            supports_input_reference=True,
            typical_render_seconds=90,
            cents_per_second_by_resolution={"720p": 40, "1080p": 40, "4k": 60},
            silent_cents_per_second_by_resolution={"720p": 20, "1080p": 20, "4k": 40},
            supports_audio=True,
            audio_toggle=True,
            supports_negative_prompt=True,
            supports_seed=True,
            seconds_by_resolution=_VEO_HIGH_RES_SECONDS,
            note="8 s at 1080p/4k is Google's Veo rule, assumed to hold on fal too.",
        ),
        ModelSpec(
            id="fal-ai/veo3.1/fast",
            label="Veo 3.1 Fast (via fal)",
            sizes=(_LANDSCAPE, _PORTRAIT, _HD_LANDSCAPE, _HD_PORTRAIT),
            seconds=(4, 6, 8),
            default_size=_LANDSCAPE,
            default_seconds=8,
            supports_input_reference=True,
            typical_render_seconds=60,
            cents_per_second_by_resolution={"720p": 15, "1080p": 15},
            silent_cents_per_second_by_resolution={"720p": 10, "1080p": 10},
            supports_audio=True,
            audio_toggle=True,
            supports_negative_prompt=True,
            supports_seed=True,
            seconds_by_resolution=_VEO_HIGH_RES_SECONDS,
            note="Prices and the 720p/1080p limit come from a reseller page (unconfirmed).",
        ),
    )
)

# Google Gemini API, Veo 3.1 through :predictLongRunning (python-genai v2.19.0; the Veo guide).
# Audio is always on and there is no seed on this surface.
GEMINI = Catalog(
    models=(
        ModelSpec(
            id="veo-3.1-generate-preview",
            label="Veo 3.1 (Gemini API)",
            sizes=(
                _LANDSCAPE,
                _PORTRAIT,
                _HD_LANDSCAPE,
                _HD_PORTRAIT,
                _UHD_LANDSCAPE,
                _UHD_PORTRAIT,
            ),
            seconds=(4, 6, 8),
            default_size=_LANDSCAPE,
            default_seconds=8,
            supports_input_reference=True,
            typical_render_seconds=120,
            cents_per_second_by_resolution={"720p": 40, "1080p": 40, "4k": 60},
            supports_audio=True,
            supports_negative_prompt=True,
            max_reference_images=3,
            seconds_by_resolution=_VEO_HIGH_RES_SECONDS,
            note="The preview ids may have been shut down on 2026-10-22 (unconfirmed).",
        ),
        ModelSpec(
            id="veo-3.1-fast-generate-preview",
            label="Veo 3.1 Fast (Gemini API)",
            sizes=(
                _LANDSCAPE,
                _PORTRAIT,
                _HD_LANDSCAPE,
                _HD_PORTRAIT,
                _UHD_LANDSCAPE,
                _UHD_PORTRAIT,
            ),
            seconds=(4, 6, 8),
            default_size=_LANDSCAPE,
            default_seconds=8,
            supports_input_reference=True,
            typical_render_seconds=60,
            cents_per_second_by_resolution={"720p": 10, "1080p": 12, "4k": 30},
            supports_audio=True,
            supports_negative_prompt=True,
            max_reference_images=3,
            seconds_by_resolution=_VEO_HIGH_RES_SECONDS,
            note="The preview ids may have been shut down on 2026-10-22 (unconfirmed).",
        ),
        ModelSpec(
            id="veo-3.1-lite-generate-preview",
            label="Veo 3.1 Lite (Gemini API)",
            sizes=(_LANDSCAPE, _PORTRAIT, _HD_LANDSCAPE, _HD_PORTRAIT),
            seconds=(4, 6, 8),
            default_size=_LANDSCAPE,
            default_seconds=8,
            supports_input_reference=True,
            typical_render_seconds=45,
            cents_per_second_by_resolution={"720p": 5, "1080p": 8},
            supports_audio=True,
            supports_negative_prompt=True,
            seconds_by_resolution=_VEO_HIGH_RES_SECONDS,
            note="The preview ids may have been shut down on 2026-10-22 (unconfirmed).",
        ),
    )
)

# Luma Agents API, ray-3.2 (luma-agents-python 0.5.0 types; docs.agents.lumalabs.ai). Luma prices
# each video by resolution, dynamic range and length; the per-second figures are its 5-second SDR
# prices divided by five (unconfirmed, see docs/provider-assumptions.md). 540p and 360p are not
# offered because no price for them was found.
LUMA = Catalog(
    models=(
        ModelSpec(
            id="ray-3.2",
            label="Luma Ray 3.2",
            sizes=(_LANDSCAPE, _PORTRAIT, _HD_LANDSCAPE, _HD_PORTRAIT),
            seconds=(5, 10),
            default_size=_LANDSCAPE,
            default_seconds=5,
            supports_input_reference=True,
            typical_render_seconds=120,
            cents_per_second_by_resolution={"720p": 6, "1080p": 24},
            note="Prices are unconfirmed; Luma makes 10 s clips from text only.",
        ),
    )
)

CATALOGS: dict[str, Catalog] = {
    "openai_videos": OPENAI_VIDEOS,
    "runway": RUNWAY,
    "fal": FAL,
    "gemini": GEMINI,
    "luma": LUMA,
}
