"""Images checked by their content, fitted by crop or pad, and frames taken from real videos."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from workspace.generations import images
from workspace.generations.images import (
    ImageRefused,
    frame_extract,
    image_check,
    image_fit,
)
from workspace.generations.models import Fit, Generation, InputRole, Status
from workspace.generations.submission import generation_submit


def picture(
    width: int, height: int, fmt: str = "PNG", color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format=fmt)
    return out.getvalue()


def halves(width: int, height: int) -> bytes:
    """Left half red, right half blue: a crop or pad shows in which pixels are which."""
    image = Image.new("RGB", (width, height), (255, 0, 0))
    image.paste((0, 0, 255), (width // 2, 0, width, height))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def pixels(content: bytes) -> Image.Image:
    return Image.open(io.BytesIO(content)).convert("RGB")


@pytest.mark.parametrize(
    ("fmt", "content_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/png")]
)
def test_png_jpeg_and_webp_are_accepted_and_re_encoded(fmt: str, content_type: str) -> None:
    original = picture(640, 360, fmt)
    checked = image_check(original, name=f"still.{fmt.lower()}")
    assert (checked.width, checked.height) == (640, 360)
    assert checked.content_type == content_type
    # Our own encoding, decoded back to the same picture.
    assert pixels(checked.content).getpixel((10, 10))[0] > 150
    assert Image.open(io.BytesIO(checked.content)).format == content_type.split("/")[1].upper()


def test_the_name_does_not_matter_the_content_does() -> None:
    with pytest.raises(ImageRefused, match="not an image we can read"):
        image_check(b"<html><script>alert(1)</script></html>" * 10, name="photo.png")
    # A real JPEG named .png is a JPEG.
    assert image_check(picture(300, 200, "JPEG"), name="photo.png").content_type == "image/jpeg"


def test_other_image_types_are_refused_by_name() -> None:
    out = io.BytesIO()
    Image.new("RGB", (300, 200)).save(out, format="BMP")
    with pytest.raises(ImageRefused, match="This file is a BMP image; send a PNG, JPEG or WebP"):
        image_check(out.getvalue())


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(ImageRefused, match="The file is empty"):
        image_check(b"")


def test_a_file_over_the_byte_limit_is_refused_before_it_is_opened(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 1000)
    with pytest.raises(ImageRefused, match=r"The image is .* MB; the limit is"):
        image_check(picture(300, 300, "PNG") + b"\0" * 2000)


def test_too_small_and_too_large_dimensions_are_refused() -> None:
    with pytest.raises(ImageRefused, match=r"100x80 pixels, too small .* at least 128"):
        image_check(picture(100, 80))
    with pytest.raises(ImageRefused, match=r"13000x200 pixels; the limit is 12000"):
        image_check(picture(13000, 200))


def bomb(width: int, height: int) -> bytes:
    """A PNG that declares a huge canvas in a few hundred bytes (all zeros compress away)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\0" + b"\0" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(
        b"IEND", b""
    )


def test_a_decompression_bomb_is_refused_without_being_decoded() -> None:
    for side in (8_000, 40_000):  # 64 and 1 600 megapixels declared
        content = bomb(side, side)
        assert len(content) < 20_000
        with pytest.raises(ImageRefused, match=r"too large to open safely \(more than 50 mega"):
            image_check(content)


def test_a_truncated_image_is_refused() -> None:
    whole = picture(640, 480, "JPEG", color=(10, 200, 10))
    noisy = io.BytesIO()
    Image.effect_noise((640, 480), 80).convert("RGB").save(noisy, format="PNG")
    for cut in (whole[: len(whole) // 2], noisy.getvalue()[: len(noisy.getvalue()) // 2]):
        with pytest.raises(ImageRefused, match="damaged or cut short"):
            image_check(cut)


def test_an_animated_image_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (320, 240), color) for color in ((255, 0, 0), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, format="WEBP", save_all=True, append_images=frames[1:], lossless=True)
    checked = image_check(out.getvalue())
    assert checked.animated
    red, green, _ = pixels(checked.content).getpixel((5, 5))
    assert red > 200 and green < 50


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (400, 200), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 200, 200))  # white on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90° clockwise
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    checked = image_check(out.getvalue())
    assert (checked.width, checked.height) == (200, 400)
    upright = pixels(checked.content)
    assert upright.getpixel((100, 50))[0] > 200  # the white half is now at the top
    assert upright.getpixel((100, 350))[0] < 50


def test_crop_fills_the_frame_and_cuts_the_sides_equally() -> None:
    # A 4:3 image into 16:9: the top and bottom are cut, the middle kept.
    image = Image.new("RGB", (800, 600), (255, 0, 0))
    image.paste((0, 255, 0), (0, 0, 800, 75))  # a green strip at the top, cut by the crop
    out = io.BytesIO()
    image.save(out, format="PNG")
    prepared = image_fit(
        image_check(out.getvalue()), role=InputRole.FIRST_FRAME, size="1280x720", fit=Fit.CROP
    )
    assert (prepared.width, prepared.height, prepared.fit) == (1280, 720, "crop")
    result = pixels(prepared.content)
    assert result.size == (1280, 720)
    assert result.getpixel((640, 2))[1] < 60  # the strip fell outside the frame
    # The kept band is the centred 800x450 of the source: 75 px cut from top and bottom.
    assert images.crop_box(800, 600, 1280, 720) == (0.0, 75.0, 800.0, 525.0)


def test_pad_keeps_the_whole_image_between_black_bars() -> None:
    prepared = image_fit(
        image_check(halves(600, 600)), role=InputRole.FIRST_FRAME, size="1280x720", fit=Fit.PAD
    )
    result = pixels(prepared.content)
    assert result.size == (1280, 720)
    assert images.pad_box(600, 600, 1280, 720) == (280, 0, 720, 720)
    assert result.getpixel((100, 360)) == (0, 0, 0)  # a bar
    assert result.getpixel((1200, 360)) == (0, 0, 0)
    assert result.getpixel((300, 360))[0] > 200  # the red half, whole
    assert result.getpixel((980, 360))[2] > 200  # the blue half, whole


def test_pad_with_blurred_bars_fills_them_from_the_image() -> None:
    prepared = image_fit(
        image_check(halves(600, 600)),
        role=InputRole.FIRST_FRAME,
        size="1280x720",
        fit=Fit.PAD,
        bars="blur",
    )
    result = pixels(prepared.content)
    assert result.getpixel((100, 360))[0] > 100  # a bar, coloured by the red side
    assert result.getpixel((1200, 360))[2] > 100


def test_an_image_of_the_requested_size_is_not_refitted() -> None:
    checked = image_check(picture(1280, 720))
    prepared = image_fit(checked, role=InputRole.FIRST_FRAME, size="1280x720", fit=Fit.CROP)
    assert prepared.fit == "" and prepared.content == checked.content


def test_an_aspect_too_far_from_the_frame_is_refused() -> None:
    checked = image_check(picture(4000, 400))  # 10:1
    for fit in Fit.values:
        with pytest.raises(ImageRefused, match=r"10:1 and the video 9:16: it is 17.8 times wider"):
            image_fit(checked, role=InputRole.FIRST_FRAME, size="720x1280", fit=fit)
    # 10:1 into 16:9 is 5.6 times off: refused; 3:1 into 16:9 fits.
    with pytest.raises(ImageRefused, match=r"5\.6 times wider"):
        image_fit(checked, role=InputRole.FIRST_FRAME, size="1280x720", fit=Fit.CROP)
    image_fit(image_check(picture(900, 300)), role="first_frame", size="1280x720", fit=Fit.PAD)


# --- Frames of a real video ---------------------------------------------------------------------


@pytest.fixture
def finished_video(project, teammate) -> Generation:  # type: ignore[no-untyped-def]
    from workspace.simulator.media import media_cache

    generation = generation_submit(
        project=project, user=teammate, model="sora-2", prompt="Waves", size="1280x720", seconds=4
    )
    name = f"generations/{project.pk}/{generation.pk}/video.mp4"
    generation.video = default_storage.save(
        name, ContentFile(media_cache().get("video", "1280x720", 4))
    )
    generation.status = Status.COMPLETED
    generation.save()
    return generation


def test_a_frame_is_taken_at_the_given_time(finished_video) -> None:  # type: ignore[no-untyped-def]
    early = frame_extract(finished_video, at_ms=0)
    late = frame_extract(finished_video, at_ms=3_200)
    assert early.content_type == "image/png"
    # The simulator's videos are the requested size divided by 8.
    assert (early.width, early.height) == (160, 90)
    assert early.content != late.content  # testsrc2 moves: another time, another picture
    prepared = image_fit(late, role=InputRole.FIRST_FRAME, size="1280x720", fit=Fit.CROP)
    assert (prepared.width, prepared.height) == (1280, 720)


def test_a_time_past_the_end_is_refused_with_the_length(finished_video) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ImageRefused, match=r"The video is 0:04.0 long; pick a time from 0:00.0"):
        frame_extract(finished_video, at_ms=4_500)
    with pytest.raises(ImageRefused, match="long; pick a time"):
        frame_extract(finished_video, at_ms=-1)


def test_a_frame_of_an_unfinished_video_is_refused(project, teammate) -> None:  # type: ignore[no-untyped-def]
    queued = generation_submit(
        project=project, user=teammate, model="sora-2", prompt="Waves", size="1280x720", seconds=4
    )
    with pytest.raises(ImageRefused, match="only from a finished video; this one is queued"):
        frame_extract(queued, at_ms=0)


def test_times_read_like_a_player() -> None:
    assert images.format_time(3_200) == "0:03.2"
    assert images.format_time(65_040) == "1:05.0"
