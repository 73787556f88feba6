"""Media on an S3-compatible object store (AWS S3, MinIO, Cloudflare R2, ...).

django-storages' S3Storage reads a file by downloading the whole object into a temporary file
first: fine for a thumbnail, not for the first 64 KiB of a 2 GB video a browser asks for to
start playing. ``MediaS3Storage`` adds what serving needs on top of it: one HEAD for size and
modification time, a ranged GetObject streamed in chunks, and a short-lived signed URL that
names the download and our content type. Everything else (save, delete, listdir, exists) is
django-storages' own, so every caller keeps going through ``default_storage``.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError
from django.core.files import File
from django.core.files.storage import Storage
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

_CHUNK = 1 << 16


def _missing(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = error.response.get("Error", {}).get("Code")
    return status == 404 or code in {"404", "NoSuchKey", "NotFound"}


class MediaS3Storage(S3Storage):
    """Private media in a bucket: nothing is public, a member reaches a file only through an
    access-checked view that streams it or redirects to a signed URL."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # botocore waits 60 s to connect, then retries: a readiness probe or a member's request
        # would hang on an unreachable store instead of failing soon enough to say so.
        configured: Config = self.client_config  # type: ignore[has-type]
        self.client_config = configured.merge(
            Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
            )
        )

    def forget_connections(self) -> None:
        """Before a fork: a child sharing the parent's pooled sockets to the store would read
        the parent's answers (the same hazard as a shared database connection)."""
        self._connections = threading.local()
        self._unsigned_connections = threading.local()
        self._bucket = None

    def _key(self, name: str) -> str:
        return self._normalize_name(clean_name(name))

    def stat(self, name: str) -> tuple[int, datetime]:
        """Size and last modification in one HEAD (``size()`` and ``get_modified_time()``
        would each send their own)."""
        try:
            head = self.connection.meta.client.head_object(
                Bucket=self.bucket_name, Key=self._key(name)
            )
        except ClientError as error:
            if _missing(error):
                raise FileNotFoundError(f"No stored file {name!r}.") from None
            raise
        return int(head["ContentLength"]), head["LastModified"]

    def stream(self, name: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes ``start..end`` (inclusive) of a file, fetched with a ranged GetObject and
        yielded as they arrive: only the asked span crosses the network, never the object."""
        request: dict[str, Any] = {"Bucket": self.bucket_name, "Key": self._key(name)}
        if start or end is not None:
            request["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            body = self.connection.meta.client.get_object(**request)["Body"]
        except ClientError as error:
            if _missing(error):
                raise FileNotFoundError(f"No stored file {name!r}.") from None
            raise
        try:
            yield from body.iter_chunks(_CHUNK)
        finally:
            body.close()

    def signed_url(
        self, name: str, *, disposition: str, content_type: str, seconds: int
    ) -> str:
        """A GET URL valid for ``seconds``; the store answers it with our content type and
        download name, not whatever was recorded at upload."""
        return self.url(
            name,
            parameters={
                "ResponseContentDisposition": disposition,
                "ResponseContentType": content_type,
            },
            expire=seconds,
        )


def object_store(storage: Storage | Any) -> MediaS3Storage | None:
    """The object store behind ``storage`` (a storage or the lazy ``default_storage``, whose
    class is its wrapped storage's), or None for local files."""
    return storage if isinstance(storage, MediaS3Storage) else None


@dataclass
class MoveReport:
    """What ``media_move`` did (or, in a dry run, would do), file by file counted."""

    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0  # already at the destination with the same size
    conflicts: list[str] = field(default_factory=list)  # there with another size: left alone
    failed: list[str] = field(default_factory=list)  # copy did not verify: removed again
    deleted_sources: int = 0


def _walk(storage: Storage, folder: str = "") -> Iterator[str]:
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:
        return  # a local media root that was never created holds nothing
    for name in sorted(files):
        yield f"{folder}/{name}" if folder else name
    for sub in sorted(folders):
        yield from _walk(storage, f"{folder}/{sub}" if folder else sub)


def read_chunks(storage: Storage, name: str) -> Iterator[bytes]:
    """A stored file's bytes in chunks, without holding the file in memory on any store."""
    store = object_store(storage)
    if store is not None:
        yield from store.stream(name)  # not S3File, which holds the whole object in memory
        return
    with storage.open(name, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _size(storage: Storage, name: str) -> int | None:
    try:
        return storage.size(name)
    except FileNotFoundError:
        return None


def _digest(storage: Storage, name: str) -> str:
    digest = hashlib.sha256()
    for chunk in read_chunks(storage, name):
        digest.update(chunk)
    return digest.hexdigest()


def media_move(
    *,
    source: Storage,
    destination: Storage,
    dry_run: bool = False,
    delete_source: bool = False,
    progress: Callable[[str, str], None] | None = None,
) -> MoveReport:
    """Copy every stored file from ``source`` to ``destination`` under the same name, so the
    database's file names stay right for either store.

    Re-runnable: a file already at the destination with the same size is skipped, so a second
    run after switching REELHOUSE_STORAGE picks up only what was written in between. Each copy
    is read back and compared by SHA-256 before it counts (and before ``delete_source`` removes
    the original); one that does not verify is removed from the destination and reported.
    """
    report = MoveReport()
    say = progress or (lambda _state, _name: None)
    for name in _walk(source):
        size = _size(source, name)
        if size is None:
            continue  # removed while we walked
        there = _size(destination, name)
        if there is not None:
            # Before an original is deleted, "already there" must mean the same bytes, not
            # merely the same size.
            verify = delete_source and not dry_run
            if there != size or (verify and _digest(source, name) != _digest(destination, name)):
                report.conflicts.append(name)
                say("conflict", name)
                continue
            report.skipped += 1
            say("skipped", name)
        elif dry_run:
            report.copied += 1
            report.copied_bytes += size
            say("would copy", name)
            continue
        else:
            digest = hashlib.sha256()
            with tempfile.TemporaryFile() as scratch:
                for chunk in read_chunks(source, name):
                    digest.update(chunk)
                    scratch.write(chunk)
                scratch.seek(0)
                saved = destination.save(name, File(scratch, name=name))
            if saved != name or _digest(destination, saved) != digest.hexdigest():
                destination.delete(saved)
                report.failed.append(name)
                say("failed", name)
                continue
            report.copied += 1
            report.copied_bytes += size
            say("copied", name)
        if delete_source and not dry_run:
            source.delete(name)
            report.deleted_sources += 1
    return report
