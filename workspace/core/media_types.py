"""The only media types Reelhouse stores and serves, recognised by their bytes.

A provider's ``Content-Type`` is the provider's claim, not a fact: a hostile or broken gateway
can label an HTML page ``video/mp4``. What we store is decided here, from the file's first
bytes, and the type we later serve it with comes from the same table (by the extension we
gave it), so nothing a provider says ever reaches a browser as a content type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

# Enough for every signature below; an EBML header is a few dozen bytes.
SNIFF_BYTES: Final = 4096


@dataclass(frozen=True)
class MediaType:
    kind: Literal["video", "image"]
    content_type: str
    extension: str
    label: str


MEDIA_TYPES: Final[dict[str, MediaType]] = {
    "mp4": MediaType("video", "video/mp4", "mp4", "an MP4 video"),
    "mov": MediaType("video", "video/quicktime", "mov", "a QuickTime video"),
    "webm": MediaType("video", "video/webm", "webm", "a WebM video"),
    "jpeg": MediaType("image", "image/jpeg", "jpg", "a JPEG image"),
    "png": MediaType("image", "image/png", "png", "a PNG image"),
    "webp": MediaType("image", "image/webp", "webp", "a WebP image"),
}
_BY_EXTENSION: Final = {media.extension: media for media in MEDIA_TYPES.values()}

# ISO-BMFF brands of still images (HEIF, AVIF): the same container as MP4, but not a video.
_IMAGE_BRANDS: Final = frozenset(
    {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"}
)
_EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE: Final = 0x4282


def media_type_for_extension(extension: str) -> MediaType | None:
    """The type a stored file is served with; None for anything we would not store today."""
    return _BY_EXTENSION.get(extension.lower())


def sniff(head: bytes) -> MediaType | None:
    """Which allowed type ``head`` (a file's first bytes) is, or None when it is none of them."""
    if head.startswith(b"\xff\xd8\xff"):
        return MEDIA_TYPES["jpeg"]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MEDIA_TYPES["png"]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return MEDIA_TYPES["webp"]
    if len(head) >= 12 and head[4:8] == b"ftyp" and int.from_bytes(head[:4], "big") >= 12:
        brand = head[8:12]
        if brand == b"qt  ":
            return MEDIA_TYPES["mov"]
        if brand not in _IMAGE_BRANDS:
            return MEDIA_TYPES["mp4"]
        return None
    if head.startswith(_EBML_MAGIC) and _ebml_doctype(head) == b"webm":
        return MEDIA_TYPES["webm"]
    return None


def _ebml_vint(data: bytes, at: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer at ``at``: (value, position after it)."""
    if at >= len(data) or data[at] == 0:
        return None
    first = data[at]
    length = 9 - first.bit_length()
    if at + length > len(data):
        return None
    value = first if keep_marker else first & ((1 << (8 - length)) - 1)
    for byte in data[at + 1 : at + length]:
        value = (value << 8) | byte
    return value, at + length


def _ebml_doctype(head: bytes) -> bytes | None:
    """The DocType ("webm", "matroska") inside the EBML header at the start of ``head``."""
    size = _ebml_vint(head, len(_EBML_MAGIC), keep_marker=False)
    if size is None:
        return None
    header_size, at = size
    end = min(len(head), at + header_size)
    while at < end:
        element = _ebml_vint(head, at, keep_marker=True)
        if element is None:
            return None
        element_id, at = element
        length = _ebml_vint(head, at, keep_marker=False)
        if length is None:
            return None
        element_size, at = length
        if element_id == _EBML_DOCTYPE:
            return head[at : at + element_size].rstrip(b"\x00")
        at += element_size
    return None


_LOOKS_LIKE: Final[list[tuple[re.Pattern[bytes], str]]] = [
    (re.compile(rb"^<(!doctype\s+html|html)[\s>]", re.I), "HTML"),
    (re.compile(rb"<svg[\s>]", re.I), "SVG"),
    (re.compile(rb"<(head|body|script|iframe|meta|a|div|p|img)[\s>]", re.I), "HTML"),
    (re.compile(rb"^<\?xml", re.I), "XML"),
    (re.compile(rb"^[\[{]"), "JSON"),
    (re.compile(rb"^GIF8[79]a"), "a GIF image"),
    (re.compile(rb"^%PDF-"), "a PDF"),
    (re.compile(rb"^\x1a\x45\xdf\xa3"), "a Matroska file"),
]


def describe(head: bytes) -> str:
    """A few plain words on what ``head`` looks like, for the reason a member reads."""
    if not head:
        return "it is empty"
    known = sniff(head)
    if known is not None:
        return f"looks like {known.label}"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    for pattern, name in _LOOKS_LIKE:
        if pattern.search(text[:1024]):
            return f"looks like {name}"
    return "its format is not one we recognise"
