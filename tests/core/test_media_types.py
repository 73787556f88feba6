"""The sniffer that decides what Reelhouse stores: real encoder output in, hostile content out."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from workspace.core.media_types import (
    MEDIA_TYPES,
    SNIFF_BYTES,
    describe,
    media_type_for_extension,
    sniff,
)

# ffmpeg arguments that write each allowed type, and two look-alikes that must be refused.
ENCODINGS = {
    "mp4": ("video/mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    "mov": ("video/quicktime", ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    "webm": ("video/webm", ["-c:v", "libvpx"]),
    "jpg": ("image/jpeg", ["-frames:v", "1"]),
    "png": ("image/png", ["-frames:v", "1"]),
    "webp": ("image/webp", ["-frames:v", "1"]),
    "mkv": (None, ["-c:v", "libx264"]),  # Matroska: the WebM container, not a WebM
    "gif": (None, ["-frames:v", "1"]),
}


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    folder: Path = tmp_path_factory.mktemp("encoded")
    files = {}
    for extension, (_, arguments) in ENCODINGS.items():
        out = folder / f"sample.{extension}"
        subprocess.run(
            [ffmpeg, "-v", "error", "-nostdin", "-y", "-f", "lavfi",
             "-i", "testsrc2=size=32x32:rate=4:duration=1", *arguments, str(out)],
            check=True, capture_output=True, timeout=60,
        )
        files[extension] = out.read_bytes()[:SNIFF_BYTES]
    return files


@pytest.mark.parametrize("extension", list(ENCODINGS))
def test_real_files_are_recognised_by_their_bytes(encoded, extension) -> None:  # type: ignore[no-untyped-def]
    expected, _ = ENCODINGS[extension]
    media = sniff(encoded[extension])
    assert (media.content_type if media else None) == expected
    if media is not None:
        # The table gives the extension we store under and the type we serve with, both ways.
        assert media_type_for_extension(media.extension) == media


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!DOCTYPE html><html><body><script>fetch('/admin/')</script></body></html>"


@pytest.mark.parametrize(
    ("head", "words"),
    [
        (HTML, "looks like HTML"),
        (b"\n\n  <html><script>x</script>", "looks like HTML"),
        (b"<script>alert(document.cookie)</script>", "looks like HTML"),
        (SVG, "looks like SVG"),
        (b'<svg onload="alert(1)">', "looks like SVG"),
        (b'{"error": "nope"}', "looks like JSON"),
        (b"GIF89a\x01\x00", "looks like a GIF image"),
        (b"%PDF-1.7", "looks like a PDF"),
        (b"", "it is empty"),
        (b"just some text", "its format is not one we recognise"),
        # ISO-BMFF, but a still image (AVIF), and an 'ftyp' with an impossible box size.
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", "its format is not one we recognise"),
        (b"\x00\x00\x00\x04ftypisom", "its format is not one we recognise"),
        # Magic numbers only count at the start: HTML with a PNG signature inside is HTML.
        (b"<html>\x89PNG\r\n\x1a\n", "looks like HTML"),
    ],
)
def test_everything_else_is_refused_and_described(head: bytes, words: str) -> None:
    assert sniff(head) is None
    assert describe(head) == words


def test_the_brand_decides_between_mp4_and_quicktime() -> None:
    assert sniff(b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ") == MEDIA_TYPES["mov"]
    assert sniff(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom") == MEDIA_TYPES["mp4"]
    assert describe(b"\xff\xd8\xff\xe0") == "looks like a JPEG image"


def test_a_truncated_ebml_header_is_not_a_webm() -> None:
    assert sniff(b"\x1a\x45\xdf\xa3") is None
    assert sniff(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81") is None
    assert sniff(b"\x1a\x45\xdf\xa3\x00\x00") is None


def test_only_the_six_types_have_a_served_type() -> None:
    assert {m.content_type for m in MEDIA_TYPES.values()} == {
        "video/mp4", "video/quicktime", "video/webm", "image/jpeg", "image/png", "image/webp",
    }
    for legacy in ("html", "svg", "bin", "htm", "xml", ""):
        assert media_type_for_extension(legacy) is None
    assert media_type_for_extension("MP4") == MEDIA_TYPES["mp4"]
