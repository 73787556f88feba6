"""Image to video in real Chromium: the crop/pad preview is what the server sends, at desktop
and phone widths, and a frame is picked on a project video's player (issue 12)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from PIL import Image

from tests.browser.conftest import DESKTOP, PHONE, Tab, expect
from workspace.generations.models import Generation, GenerationInput
from workspace.projects.models import Project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OpenTab = Callable[..., Tab]

PIXEL = """([x, y]) => {
  const c = document.querySelector('[data-fit-preview]');
  return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data).slice(0, 3);
}"""


def red_and_blue(path: Path) -> Path:
    """800x600, left half red and right half blue: which pixels land where shows the fit."""
    image = Image.new("RGB", (800, 600), (255, 0, 0))
    image.paste((0, 0, 255), (400, 0, 800, 600))
    image.save(path, format="PNG")
    return path


def near(rgb: list[int], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 40 for a, b in zip(rgb, expected, strict=True))


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "390px"])
def test_the_crop_and_pad_preview_is_what_the_server_sends(
    open_tab: OpenTab, project: Project, teammate: User, tmp_path: Path, viewport: dict[str, int]
) -> None:
    still = red_and_blue(tmp_path / "still.png")
    tab = open_tab(viewport)
    tab.sign_in(teammate.username)
    page = tab.visit(f"/projects/{project.pk}/")
    # Sora takes a first frame but no seed: the form offers the one and not the other.
    expect(page.locator("[data-cap=seed]")).to_be_hidden()
    expect(page.get_by_label("First frame", exact=True)).to_be_hidden()
    page.get_by_label("An image").check()
    page.get_by_label("First frame", exact=True).set_input_files(str(still))
    preview = page.locator("[data-fit-preview]")
    expect(preview).to_be_visible()
    expect(page.locator("[data-fit-caption]")).to_contain_text("Cropped to fill 1280x720")
    assert preview.evaluate("c => [c.width, c.height]") == [320, 180]
    # Crop: the 4:3 image covers the 16:9 frame, red left and blue right, no bars.
    assert near(page.evaluate(PIXEL, [4, 90]), (255, 0, 0))
    assert near(page.evaluate(PIXEL, [316, 90]), (0, 0, 255))
    page.get_by_label("Fit the image").select_option("pad")
    expect(page.locator("[data-fit-caption]")).to_contain_text("black bars")
    # Pad: the whole image, 960x720 at x=160 in the frame (40 px at the preview's scale).
    assert near(page.evaluate(PIXEL, [10, 90]), (0, 0, 0))
    assert near(page.evaluate(PIXEL, [50, 90]), (255, 0, 0))
    assert near(page.evaluate(PIXEL, [270, 90]), (0, 0, 255))
    assert near(page.evaluate(PIXEL, [310, 90]), (0, 0, 0))
    tab.assert_no_horizontal_overflow()

    page.get_by_label("Prompt").fill("The flags wave")
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_text("Queued.")).to_be_visible()
    item = GenerationInput.objects.get()
    assert (item.fit, item.width, item.height) == ("pad", 1280, 720)
    with item.image.open("rb") as handle:
        sent = Image.open(io.BytesIO(handle.read())).convert("RGB")
    # The same pixels the preview showed, at full size (preview x * 4).
    for (x, y), colour in {
        (40, 360): (0, 0, 0),
        (200, 360): (255, 0, 0),
        (1080, 360): (0, 0, 255),
        (1240, 360): (0, 0, 0),
    }.items():
        assert near(list(sent.getpixel((x, y))), colour), (x, y, sent.getpixel((x, y)))
    # The card shows the image it was made from.
    expect(page.locator(".gen-input img").first).to_be_visible()
    tab.assert_no_horizontal_overflow()
    tab.watch.check()


def test_a_frame_is_picked_on_the_videos_player(
    open_tab: OpenTab, project: Project, teammate: User, make_videos
) -> None:  # type: ignore[no-untyped-def]
    (source,) = make_videos(project, teammate, "A kite over the dunes")
    tab = open_tab(PHONE)
    tab.sign_in(teammate.username)
    page = tab.visit(f"/projects/{project.pk}/")
    page.get_by_label("A frame of a video").check()
    page.get_by_label("Video", exact=True).select_option(str(source.pk))
    player = page.locator("[data-frame-player]")
    expect(player).to_be_visible()
    player.evaluate(
        "v => new Promise(done => { const go = () => { v.addEventListener('seeked', done, "
        "{once: true}); v.currentTime = 2.5; }; v.readyState >= 1 ? go() : "
        "v.addEventListener('loadedmetadata', go, {once: true}); })"
    )
    page.get_by_role("button", name="Use this frame").click()
    expect(page.get_by_label("At (seconds)")).to_have_value("2.5")
    expect(page.locator("[data-fit-preview]")).to_be_visible()
    tab.assert_no_horizontal_overflow()
    page.get_by_label("Prompt").fill("The kite lands")
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_text("Queued.")).to_be_visible()
    made = Generation.objects.exclude(pk=source.pk).get()
    item = made.inputs.get()
    assert (item.source_generation_id, item.source_time_ms) == (source.pk, 2500)
    expect(page.get_by_text("from a frame of").first).to_be_visible()
    tab.watch.check()
