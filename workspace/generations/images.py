"""Images a generation is made from: checked by their content and fitted to the request's size.

``PreparedImage`` is what ``generation_submit`` stores as a ``GenerationInput``; the functions
that make one from an upload or from a frame of a video live here too.

An upload is judged by its decoded content, never by its name or declared type: Pillow reads
the header, the size is bounded before any pixel is decoded (a decompression bomb is refused,
not expanded), the file is then fully decoded (a truncated or corrupt one is refused), EXIF
orientation is applied, and an animated image gives its first frame. What is sent is re-encoded
by us (PNG, or JPEG for photos), so no metadata or trailing bytes of the upload reach a provider.

The fitting rule (also drawn by the form's preview in static/js/generate.js, so what the member
sees is what is sent): *crop* scales the image to cover the frame and cuts the overflow equally
from both sides; *pad* scales it to fit inside and fills the bars, black or a blurred copy.
"""

from __future__ import annotations

import io
import math
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, ImageFilter, ImageOps, UnidentifiedImageError

from workspace.generations.models import Fit, Generation, Status

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MIN_IMAGE_SIDE = 128
MAX_IMAGE_SIDE = 12_000
# Bounded before decoding: 50 megapixels is ~200 MB of RGBA, the most we ever expand.
MAX_IMAGE_PIXELS = 50_000_000
# An image whose shape is more than this many times wider (or taller) than the video's would
# lose most of itself to a crop, or be a sliver between bars: refused with a message instead.
MAX_ASPECT_MISMATCH = 4.0
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_FORMAT_NAMES = "PNG, JPEG or WebP"
# Bars of a blurred pad: the blur radius as a share of the frame's longer side.
BLUR_SHARE = 1 / 40
BARS = ("black", "blur")
FRAME_TIMEOUT_SECONDS = 30
JPEG_QUALITY = 92

# Pillow's own bomb check (a warning, or an error at twice the limit) as a second guard.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
# Never fill a truncated file with grey: refuse it.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageRefused(ValueError):
    """An image that cannot be used, with the one sentence a member reads."""


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to send: its bytes already re-encoded and fitted to the request's size."""

    role: str  # an InputRole value
    content: bytes
    content_type: str
    width: int
    height: int
    fit: str = ""  # a Fit value, or "" when the image already had the requested size
    original_name: str = ""
    position: int = 0
    # A frame of a video in the project, and when in it.
    source_generation_id: str | None = None
    source_time_ms: int | None = None

    @property
    def extension(self) -> str:
        return {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}.get(
            self.content_type, "bin"
        )


@dataclass(frozen=True)
class CheckedImage:
    """An upload that passed every check, re-encoded upright, not yet fitted to a size."""

    content: bytes
    content_type: str
    width: int
    height: int
    original_name: str = ""
    animated: bool = False


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def image_check(
    content: bytes, *, name: str = "", min_side: int = MIN_IMAGE_SIDE
) -> CheckedImage:
    """Check an upload by its content; ``ImageRefused`` says why it cannot be used."""
    if not content:
        raise ImageRefused("The file is empty.")
    if len(content) > MAX_IMAGE_BYTES:
        raise ImageRefused(
            f"The image is {_megabytes(len(content))}; the limit is "
            f"{MAX_IMAGE_BYTES // (1024 * 1024)} MB. Export it smaller or as a JPEG."
        )
    with _pillow_errors():
        # Image.open reads the header only: the size is known before any pixel is decoded.
        image = Image.open(io.BytesIO(content))
        if image.format not in FORMATS:
            kind = f"a {image.format} image" if image.format else "not an image we can read"
            raise ImageRefused(f"This file is {kind}; send a {_FORMAT_NAMES} image.")
        width, height = image.size
        _check_dimensions(width, height, min_side=min_side)
        animated = getattr(image, "n_frames", 1) > 1
        # verify() walks the file's structure (chunks, checksums) without keeping pixels;
        # load() then decodes every pixel and refuses a file cut short.
        image.verify()
        image = Image.open(io.BytesIO(content))
        image.seek(0)  # an animated image: its first frame
        image.load()
        upright = ImageOps.exif_transpose(image) or image
    width, height = upright.size
    content_type, data = _encode(upright, photo=image.format == "JPEG")
    return CheckedImage(
        content=data,
        content_type=content_type,
        width=width,
        height=height,
        original_name=name,
        animated=animated,
    )


@contextmanager
def _pillow_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except ImageRefused:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageRefused(
                f"The image is too large to open safely (more than "
                f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels)."
            ) from error
        except UnidentifiedImageError as error:
            raise ImageRefused(
                f"This file is not an image we can read; send a {_FORMAT_NAMES} image "
                "(its name or type does not matter, its content does)."
            ) from error
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as error:
            # Pillow reports a truncated or corrupt file as any of these.
            raise ImageRefused(
                "The image is damaged or cut short and cannot be decoded; export it again."
            ) from error


def _check_dimensions(width: int, height: int, *, min_side: int) -> None:
    if width * height > MAX_IMAGE_PIXELS or max(width, height) > MAX_IMAGE_SIDE:
        raise ImageRefused(
            f"The image is {width}x{height} pixels; the limit is {MAX_IMAGE_SIDE} pixels a side "
            f"and {MAX_IMAGE_PIXELS // 1_000_000} megapixels in all."
        )
    if min(width, height) < min_side:
        raise ImageRefused(
            f"The image is {width}x{height} pixels, too small to start a video from: "
            f"at least {min_side} pixels a side."
        )


def _encode(image: Image.Image, *, photo: bool) -> tuple[str, bytes]:
    """Our own bytes: JPEG for photos (smaller, already lossy), PNG for the rest."""
    out = io.BytesIO()
    if photo:
        image.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY)
        return "image/jpeg", out.getvalue()
    mode = "RGBA" if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info else "RGB"
    image.convert(mode).save(out, format="PNG", optimize=False)
    return "image/png", out.getvalue()


def parse_size(size: str) -> tuple[int, int]:
    width, _, height = size.partition("x")
    return int(width), int(height)


def aspect_mismatch(width: int, height: int, target_width: int, target_height: int) -> float:
    """How many times wider (or taller) the image is than the frame, >= 1."""
    ratio = (width / height) / (target_width / target_height)
    return max(ratio, 1 / ratio)


def _shape(width: int, height: int) -> str:
    divisor = math.gcd(width, height)
    simple = f"{width // divisor}:{height // divisor}"
    return simple if len(simple) <= 7 else f"{width / height:.2f}:1"


def crop_box(
    width: int, height: int, target_width: int, target_height: int
) -> tuple[float, float, float, float]:
    """The centred part of the image with the frame's shape: (left, top, right, bottom)."""
    if width / height > target_width / target_height:
        kept = height * target_width / target_height
        left = (width - kept) / 2
        return left, 0.0, left + kept, float(height)
    kept = width * target_height / target_width
    top = (height - kept) / 2
    return 0.0, top, float(width), top + kept


def pad_box(width: int, height: int, target_width: int, target_height: int) -> tuple[int, ...]:
    """Where the whole image sits inside the frame: (left, top, width, height), centred."""
    scale = min(target_width / width, target_height / height)
    inner_width = max(1, min(target_width, round(width * scale)))
    inner_height = max(1, min(target_height, round(height * scale)))
    left = (target_width - inner_width) // 2
    top = (target_height - inner_height) // 2
    return left, top, inner_width, inner_height


def image_fit(
    checked: CheckedImage,
    *,
    role: str,
    size: str,
    fit: str = Fit.CROP,
    bars: str = "black",
    position: int = 0,
    source_generation_id: str | None = None,
    source_time_ms: int | None = None,
) -> PreparedImage:
    """Fit a checked image to ``size`` (``WxH``) by crop or pad; ``ImageRefused`` when its shape
    is too far from the frame's to do either sensibly."""
    target_width, target_height = parse_size(size)
    if fit not in Fit.values:
        raise ImageRefused(f"Choose crop or pad, not {fit!r}.")
    if bars not in BARS:
        raise ImageRefused(f"Bars are black or blurred, not {bars!r}.")
    common = {
        "role": role,
        "original_name": checked.original_name,
        "position": position,
        "source_generation_id": source_generation_id,
        "source_time_ms": source_time_ms,
    }
    if (checked.width, checked.height) == (target_width, target_height):
        return PreparedImage(
            content=checked.content,
            content_type=checked.content_type,
            width=target_width,
            height=target_height,
            fit="",
            **common,  # type: ignore[arg-type]
        )
    mismatch = aspect_mismatch(checked.width, checked.height, target_width, target_height)
    if mismatch > MAX_ASPECT_MISMATCH:
        wider = checked.width / checked.height > target_width / target_height
        raise ImageRefused(
            f"The image is {_shape(checked.width, checked.height)} and the video "
            f"{_shape(target_width, target_height)}: it is {mismatch:.1f} times "
            f"{'wider' if wider else 'taller'} than the frame (at most {MAX_ASPECT_MISMATCH:g}), "
            "so a crop would lose most of it and padding would leave a sliver. Crop it nearer "
            "to the video's shape first, or choose a size of another shape."
        )
    with Image.open(io.BytesIO(checked.content)) as opened:
        source = opened.convert("RGB")
    target = (target_width, target_height)
    if fit == Fit.CROP:
        box = crop_box(checked.width, checked.height, target_width, target_height)
        result = source.resize(target, Image.Resampling.LANCZOS, box=box)
    else:
        if bars == "blur":
            box = crop_box(checked.width, checked.height, target_width, target_height)
            result = source.resize(target, Image.Resampling.BILINEAR, box=box).filter(
                ImageFilter.GaussianBlur(max(target) * BLUR_SHARE)
            )
        else:
            result = Image.new("RGB", target, (0, 0, 0))
        left, top, inner_width, inner_height = pad_box(
            checked.width, checked.height, target_width, target_height
        )
        result.paste(
            source.resize((inner_width, inner_height), Image.Resampling.LANCZOS), (left, top)
        )
    content_type, data = _encode(result, photo=checked.content_type == "image/jpeg")
    return PreparedImage(
        content=data,
        content_type=content_type,
        width=target_width,
        height=target_height,
        fit=fit,
        **common,  # type: ignore[arg-type]
    )


# --- Frames of a video of the project ----------------------------------------------------------


def format_time(milliseconds: int) -> str:
    """0:03.2 for 3 200 ms: how a player shows a time."""
    tenths = round(milliseconds / 100)
    minutes, tenths = divmod(tenths, 600)
    return f"{minutes}:{tenths // 10:02d}.{tenths % 10}"


def frame_source_check(generation: Generation) -> None:
    """A frame can be taken only from a finished video with its file."""
    if generation.status != Status.COMPLETED or not generation.video:
        raise ImageRefused(
            "Frames can be taken only from a finished video; this one is "
            f"{generation.get_status_display().lower()}."
        )


def frame_extract(generation: Generation, *, at_ms: int) -> CheckedImage:
    """The frame of ``generation``'s video at ``at_ms``, as a checked PNG.

    The caller has already found ``generation`` through the member's project (a video the
    member cannot see is a 404 before this runs).
    """
    frame_source_check(generation)
    length_ms = generation.total_seconds * 1000
    if at_ms < 0 or at_ms > length_ms:
        raise ImageRefused(
            f"The video is {format_time(length_ms)} long; pick a time from 0:00.0 to "
            f"{format_time(length_ms)}, not {format_time(at_ms)}."
        )
    with _local_copy(generation) as path:
        png = _ffmpeg_frame(path, at_ms=at_ms)
    if not png:
        # The stored clip can be a little shorter than its nominal length.
        raise ImageRefused(
            f"The video has no frame at {format_time(at_ms)}: it ends before that. "
            "Pick an earlier time."
        )
    # Our own video's frame: whatever its resolution (the simulator's are small).
    return image_check(png, name=f"frame-{at_ms}ms.png", min_side=2)


@contextmanager
def _local_copy(generation: Generation) -> Iterator[str]:
    """A path ffmpeg can seek in: the stored file itself, or a temporary copy of it."""
    stored = generation.video
    try:
        path = stored.path
    except (NotImplementedError, AttributeError):
        path = None
    if path is not None:
        yield path
        return
    with tempfile.NamedTemporaryFile(suffix=".mp4") as copy, stored.open("rb") as source:
        for chunk in iter(lambda: source.read(1 << 16), b""):
            copy.write(chunk)
        copy.flush()
        yield copy.name


def _ffmpeg_frame(path: str, *, at_ms: int) -> bytes:
    import imageio_ffmpeg

    if not Path(path).is_file():
        raise ImageRefused("The video's file is missing from storage; download it again.")
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-v", "error", "-nostdin",
        "-ss", f"{at_ms / 1000:.3f}",
        "-i", path,
        "-frames:v", "1", "-an",
        "-f", "image2pipe", "-c:v", "png", "pipe:1",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=FRAME_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise ImageRefused(
            "Taking the frame took too long; try again, or upload the frame as an image."
        ) from error
    if done.returncode != 0:
        raise ImageRefused(
            "The frame could not be read from this video (its file may be damaged); "
            "upload the frame as an image instead."
        )
    return done.stdout
