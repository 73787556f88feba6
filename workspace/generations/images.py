"""Images a generation is made from: checked by their content and fitted to the request's size.

``PreparedImage`` is what ``generation_submit`` stores as a ``GenerationInput``; the functions
that make one from an upload or from a frame of a video live here too.
"""

from __future__ import annotations

from dataclasses import dataclass


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
