"""A selection of videos as one ZIP, streamed while it is read: never whole in memory or on disk.

Entries are stored, not deflated (MP4s are already compressed: deflate would cost CPU for a
percent or two). zipstream-ng knows every entry's size up front, so the answer carries a
Content-Length and the browser shows real download progress.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.core.files import File
from django.utils.text import slugify
from zipstream import ZIP_STORED, ZipStream

from workspace.core.storage import read_chunks
from workspace.generations.models import Generation, Status

MAX_VIDEOS_PER_ZIP = 50
_PROMPT_CHARS = 40
_PROJECT_CHARS = 30


def _words(text: str, limit: int) -> str:
    slug = slugify(text)
    if len(slug) <= limit:
        return slug
    cut = slug[:limit]
    if slug[limit] != "-" and "-" in cut:  # no half word at the cut
        cut = cut.rsplit("-", 1)[0]
    return cut.rstrip("-")


def zip_entry_name(*, generation: Generation, project_name: str) -> str:
    """``<project>-<date>-<first words of prompt>-<short id>.mp4``, ASCII and path-free."""
    parts = [
        _words(project_name, _PROJECT_CHARS) or "project",
        generation.created_at.strftime("%Y-%m-%d"),
        _words(generation.prompt, _PROMPT_CHARS) or "video",
        str(generation.pk)[:8],
    ]
    stored = generation.video.name or ""
    extension = stored.rsplit(".", 1)[-1].lower() if "." in stored else "mp4"
    return f"{'-'.join(parts)}.{slugify(extension) or 'mp4'}"


def zip_entry_names(*, generations: Sequence[Generation], project_name: str) -> list[str]:
    """One name per video, unique within the archive (two takes could share every part)."""
    names: list[str] = []
    taken: set[str] = set()
    for generation in generations:
        name = zip_entry_name(generation=generation, project_name=project_name)
        stem, dot, extension = name.rpartition(".")
        candidate, n = name, 2
        while candidate.lower() in taken:
            candidate, n = f"{stem}-{n}{dot}{extension}", n + 1
        taken.add(candidate.lower())
        names.append(candidate)
    return names


def zippable(generations: Iterable[Generation]) -> list[Generation]:
    return [g for g in generations if g.status == Status.COMPLETED and g.video]


def _chunks(stored: File[Any]) -> Iterator[bytes]:
    # Opened when the archive reaches this entry, so only one file is open at a time.
    yield from read_chunks(stored.storage, stored.name or "")  # type: ignore[attr-defined]


def zip_stream(*, generations: Sequence[Generation], project_name: str) -> ZipStream:
    """The archive as an iterable of bytes, its total length known (``len()``) before a byte."""
    archive = ZipStream(compress_type=ZIP_STORED, sized=True)
    names = zip_entry_names(generations=generations, project_name=project_name)
    for generation, name in zip(generations, names, strict=True):
        archive.add(
            _chunks(generation.video),
            arcname=name,
            size=generation.video.size,
        )
    return archive
