"""How a provider's models are described: the terms forms, validation and prices share.

Each provider's own list lives in its folder (``integrations/<kind>/catalog.py``) and is reached
through its spec (``registry.provider(kind).catalog``, or ``channel.catalog``).

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
    # What the provider's model accepts beyond prompt, size and length (a first frame, a seed,
    # a negative prompt, audio on/off, reference images, changing an earlier video): the form
    # offers, and ``generation_submit`` accepts, exactly these and nothing else.
    # A first-frame image ("image to video") may be sent with the prompt.
    supports_input_reference: bool = False
    # A last frame may be sent with the first (interpolation: Veo, Runway's position "last").
    supports_last_frame: bool = False
    # Named characters made from a short video and mentioned in prompts (the OpenAI protocol).
    max_characters: int = 0
    # Changing a finished video of this model at the provider: ``edit`` (a new prompt applied to
    # the source; OpenAI's /videos/edits), ``remix`` (the older form of the same), and extension
    # by one of ``extend_seconds`` per call up to ``max_total_seconds`` in all.
    can_edit: bool = False
    can_remix: bool = False
    extend_seconds: tuple[int, ...] = ()
    max_total_seconds: int = 0
    # How many times one video may be extended in a chain (0: only the length limits it).
    max_extensions: int = 0
    # Sizes an extension keeps (Veo extends 720p only); empty means every size of the model.
    extend_sizes: tuple[str, ...] = ()
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
    # Lengths allowed when an image of a role is sent, when narrower than ``seconds`` (Veo:
    # reference images only in 8-second clips; Luma: frames only in 5-second clips).
    seconds_with_images: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # The provider's own prompt limit in UTF-16 code units, as Runway counts (0: only ours,
    # generations.models.PROMPT_MAX_LENGTH). Counting code units never undercounts characters.
    max_prompt_length: int = 0
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

    def prompt_too_long(self, prompt: str) -> str:
        """Why the provider would refuse ``prompt`` for its length, or "" when it fits."""
        if not self.max_prompt_length:
            return ""
        units = len(prompt.encode("utf-16-le")) // 2
        if units <= self.max_prompt_length:
            return ""
        return (
            f"{self.label} takes prompts of at most {self.max_prompt_length} characters; "
            f"this one has {units} (emoji and some symbols count twice)."
        )

    @property
    def can_extend(self) -> bool:
        return bool(self.extend_seconds)

    def extendable(self, *, size: str, total_seconds: int) -> tuple[int, ...]:
        """The extension lengths that fit after a ``total_seconds`` clip at ``size``."""
        if not self.extend_seconds or (self.extend_sizes and size not in self.extend_sizes):
            return ()
        room = self.max_total_seconds - total_seconds
        return tuple(s for s in self.extend_seconds if s <= room)

    def capabilities(self) -> dict[str, Any]:
        """What this model takes besides prompt, size and length, JSON-ready (forms, API)."""
        return {
            "first_frame": self.supports_input_reference,
            "last_frame": self.supports_last_frame,
            "reference_images": self.max_reference_images,
            "characters": self.max_characters,
            "audio_toggle": self.supports_audio and self.audio_toggle,
            "seed": self.supports_seed,
            "negative_prompt": self.supports_negative_prompt,
            "edit": self.can_edit,
            "remix": self.can_remix,
            "extend_seconds": list(self.extend_seconds),
            "max_total_seconds": self.max_total_seconds,
            "max_extensions": self.max_extensions,
            "max_prompt_length": self.max_prompt_length,
            "seconds_with_images": {
                role: list(lengths) for role, lengths in self.seconds_with_images.items()
            },
        }

    def form_data(self) -> dict[str, Any]:
        """Everything a form needs to offer only possible combinations, JSON-ready.

        Prices are not here: estimates come from the price table (``billing``), which an admin
        may have changed since the catalog's list prices were seeded.
        """
        return {
            "sizes": list(self.sizes),
            "seconds": list(self.seconds),
            "seconds_by_size": {size: list(self.seconds_for(size)) for size in self.sizes},
            "capabilities": self.capabilities(),
        }

    def validate(self, *, size: str, seconds: int) -> dict[str, str]:
        """Field errors for a size or length this model cannot make."""
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
        return errors


@dataclass(frozen=True)
class Catalog:
    models: tuple[ModelSpec, ...]

    def get(self, model_id: str) -> ModelSpec | None:
        return next((m for m in self.models if m.id == model_id), None)

    @property
    def default(self) -> ModelSpec:
        return self.models[0]


# Sizes several providers share, as pixel sizes.
PORTRAIT, LANDSCAPE = "720x1280", "1280x720"
TALL, WIDE = "1024x1792", "1792x1024"
HD_PORTRAIT, HD_LANDSCAPE = "1080x1920", "1920x1080"
UHD_PORTRAIT, UHD_LANDSCAPE = "2160x3840", "3840x2160"
# Google's Veo rule: 1080p and 4k clips are 8 seconds long (Gemini's and fal's Veo).
VEO_HIGH_RES_SECONDS: dict[str, tuple[int, ...]] = {"1080p": (8,), "4k": (8,)}
