"""What each provider protocol can generate: the single source for forms and validation.

Nothing outside these lists is ever sent to a provider: the generate form offers only these
choices and the submit service checks them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    id: str
    label: str
    sizes: tuple[str, ...]
    seconds: tuple[int, ...]
    default_size: str
    default_seconds: int
    # Published list price in US cents per second of output, by size.
    cents_per_second: dict[str, int] = field(default_factory=dict)
    supports_input_reference: bool = False
    # Roughly how long a render takes, which paces polling and estimates waits.
    typical_render_seconds: int = 90

    def validate(self, *, size: str, seconds: int) -> dict[str, str]:
        errors: dict[str, str] = {}
        if size not in self.sizes:
            errors["size"] = (
                f"{self.label} makes {', '.join(self.sizes)}; {size!r} is not one of them."
            )
        if seconds not in self.seconds:
            allowed = ", ".join(str(s) for s in self.seconds)
            errors["seconds"] = f"{self.label} makes clips of {allowed} seconds, not {seconds}."
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
        ),
    )
)

CATALOGS: dict[str, Catalog] = {"openai_videos": OPENAI_VIDEOS}
