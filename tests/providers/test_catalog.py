"""The capability catalog: one description per model, whatever its provider's wire format."""

from __future__ import annotations

import pytest

from workspace.providers.catalog import Catalog, size_parts
from workspace.providers.registry import PROVIDERS, provider

OPENAI_VIDEOS, RUNWAY, FAL, GEMINI = (
    provider(kind).catalog for kind in ("openai_videos", "runway", "fal", "gemini")
)
CATALOGS: dict[str, Catalog] = {kind: spec.catalog for kind, spec in PROVIDERS.items()}


def test_model_ids_are_unique_across_providers() -> None:
    ids = [spec.id for catalog in CATALOGS.values() for spec in catalog.models]
    assert len(ids) == len(set(ids)), "model ids must be unique across providers"


@pytest.mark.parametrize(("size", "parts"), [
    ("1280x720", ("16:9", "720p")), ("720x1280", ("9:16", "720p")),
    ("1920x1080", ("16:9", "1080p")), ("2160x3840", ("9:16", "4k")),
    ("1792x1024", ("7:4", "1024p")),
])
def test_sizes_map_to_aspect_ratio_and_resolution(size: str, parts: tuple[str, str]) -> None:
    assert size_parts(size) == parts


def test_every_size_is_priced_and_valid_by_default() -> None:
    for catalog in CATALOGS.values():
        for spec in catalog.models:
            assert spec.default_size in spec.sizes and spec.default_seconds in spec.seconds
            assert set(spec.cents_per_second) == set(spec.sizes), spec.id
            assert spec.validate(size=spec.default_size, seconds=spec.default_seconds) == {}
            for size in spec.sizes:
                assert spec.seconds_for(size), (spec.id, size)


def test_the_openai_catalog_is_unchanged() -> None:
    sora = OPENAI_VIDEOS.get("sora-2")
    assert sora is not None and sora.cents_per_second == {"1280x720": 10, "720x1280": 10}
    assert sora.validate(size="1024x1792", seconds=4) == {
        "size": "Sora 2 makes 1280x720, 720x1280; '1024x1792' is not one of them."}


def test_impossible_combinations_are_refused() -> None:
    veo = GEMINI.get("veo-3.1-generate-preview")
    assert veo is not None and veo.resolutions == ("720p", "1080p", "4k")
    assert veo.seconds_for("1920x1080") == (8,) and veo.seconds_for("1280x720") == (4, 6, 8)
    assert "8 seconds only" in veo.validate(size="3840x2160", seconds=4)["seconds"]
    gen45 = RUNWAY.get("gen4.5")
    assert gen45 is not None
    assert gen45.validate(size="1280x720", seconds=7) == {}
    assert set(gen45.validate(size="1920x1080", seconds=11)) == {"size", "seconds"}
    fast = FAL.get("fal-ai/veo3.1/fast")
    assert fast is not None and "size" in fast.validate(size="3840x2160", seconds=8)
    assert fast.form_data()["seconds_by_size"]["1920x1080"] == [8]


def test_prices_by_resolution_and_audio() -> None:
    veo = FAL.get("fal-ai/veo3.1")
    assert veo is not None
    assert veo.price_cents_per_second("3840x2160") == 60
    assert veo.price_cents_per_second("3840x2160", audio=False) == 40
    lite = GEMINI.get("veo-3.1-lite-generate-preview")
    assert lite is not None and lite.cents_per_second_by_resolution == {"720p": 5, "1080p": 8}
    # Audio is always on at Google: no silent price to fall back to.
    assert lite.price_cents_per_second("1920x1080", audio=False) == 8
