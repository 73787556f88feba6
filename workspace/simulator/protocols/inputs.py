"""Input images as the simulated Runway, fal, Gemini and Luma APIs receive them.

Each provider wraps an image its own way (a data URI, ``{bytesBase64Encoded, mimeType}``,
Luma's ``ImageRef``); under the wrapping it is the same question: do the bytes decode to the image
type the request claims, within the provider's size limit? Each protocol words the refusal in its
own error shape, so the checks here raise ``ImageProblem`` with a plain sentence.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Final

from workspace.simulator.protocols.openai_videos import image_dimensions

IMAGE_TYPES: Final = ("image/png", "image/jpeg", "image/webp")
_DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.DOTALL)


class ImageProblem(ValueError):
    """What is wrong with an input image, in a sentence."""


@dataclass(frozen=True)
class SeenImage:
    content_type: str
    width: int
    height: int
    byte_size: int

    def log(self, role: str) -> dict[str, Any]:
        """What the create log records of it, so tests can see what was sent."""
        return {"role": role, "content_type": self.content_type, "width": self.width,
                "height": self.height, "byte_size": self.byte_size}


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_image(data: bytes, declared: str, *, max_bytes: int) -> SeenImage:
    """The image's facts; ImageProblem if it is too big, not an image, or not what it claims."""
    if declared not in IMAGE_TYPES:
        raise ImageProblem(f"unsupported image type {declared!r}; use "
                           f"{', '.join(IMAGE_TYPES)}")
    if len(data) > max_bytes:
        raise ImageProblem(f"the image is {len(data)} bytes; the limit is {max_bytes} bytes")
    actual = _sniff(data)
    if actual is None:
        raise ImageProblem("the data is not a PNG, JPEG or WebP image")
    if actual != declared:
        raise ImageProblem(f"the data is {actual} but was declared as {declared}")
    dimensions = image_dimensions(data)
    if dimensions is None or min(dimensions) < 1:
        raise ImageProblem("the image could not be decoded")
    return SeenImage(actual, dimensions[0], dimensions[1], len(data))


def decode_base64(text: object) -> bytes:
    if not isinstance(text, str) or not text:
        raise ImageProblem("the image data is missing")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ImageProblem("the image data is not valid base64") from None


def check_data_uri(uri: str, *, max_bytes: int) -> SeenImage:
    """A ``data:image/...;base64,...`` URI's image (the size limit is on the decoded bytes)."""
    match = _DATA_URI.match(uri)
    if match is None:
        raise ImageProblem("a data URI must be data:<image type>;base64,<data>")
    return check_image(decode_base64(match["data"]), match["type"].lower(), max_bytes=max_bytes)
