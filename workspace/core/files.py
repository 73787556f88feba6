"""Serving stored files: fixed content types, HTTP Range, HEAD and conditional requests.

Django's FileResponse always sends the whole file; Safari refuses to play an MP4 without 206
answers, and other browsers cannot seek in long ones.

Every file went through a provider, so it is served as hostile content from our own origin:
its type comes from our own table (core/media_types.py), never from a guess; the browser may
not sniff another one; and opened as a document it runs in a sandbox with no scripts.

On an object store (core/storage.py) the bytes come from a ranged GetObject streamed as it
arrives, or, when the operator allows it, the member is redirected to a short-lived signed URL
once the caller has checked access.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.files import File
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.utils.cache import get_conditional_response
from django.utils.http import content_disposition_header, http_date, parse_http_date_safe

from workspace.core.media_types import media_type_for_extension
from workspace.core.storage import MediaS3Storage, object_store

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 1 << 16
# Any position with more digits than this lies beyond every file we could store; comparing
# lengths first keeps int() away from numbers of thousands of digits (it refuses those).
_MAX_DIGITS = 18
_BEYOND_ANY_FILE = 10**_MAX_DIGITS
# Playback in our own <video>/<img> ignores this; it matters when the file is opened directly.
FILE_CSP = "sandbox; default-src 'none'; media-src 'self'; img-src 'self'"


class _Unsatisfiable(Exception):
    pass


def _read_span(handle: File[Any], start: int, length: int) -> Iterator[bytes]:
    try:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _position(digits: str) -> int:
    return int(digits) if len(digits) <= _MAX_DIGITS else _BEYOND_ANY_FILE


def _requested_span(header: str, size: int) -> tuple[int, int] | None:
    """The (start, end) a single-range ``Range`` header asks for; None to send the whole file.

    RFC 9110 §14.2: a header we cannot parse (several ranges, ``bytes=5-3``) is ignored; a
    valid one that lies wholly beyond the file is unsatisfiable (416).
    """
    match = _RANGE.match(header.strip())
    if match is None or not (match.group(1) or match.group(2)):
        return None
    first, last = match.groups()
    if first:
        start = _position(first)
        if last and _position(last) < start:
            return None
        end = min(_position(last), size - 1) if last else size - 1
    else:  # "bytes=-N": the last N bytes
        suffix = _position(last)
        if suffix == 0:
            raise _Unsatisfiable
        start, end = max(0, size - suffix), size - 1
    if start >= size:
        raise _Unsatisfiable
    return start, end


def _if_range_holds(request: HttpRequest, etag: str | None, last_modified: int | None) -> bool:
    """RFC 9110 §13.1.5: honour Range only if the file is still the one the client holds."""
    condition = request.headers.get("If-Range")
    if condition is None:
        return True
    condition = condition.strip()
    if condition.startswith(('"', "W/")):
        return etag is not None and condition == etag  # a strong comparison: W/ never matches
    date = parse_http_date_safe(condition)
    return date is not None and last_modified is not None and date == last_modified


def _describe(stored: File[Any], store: MediaS3Storage | None) -> tuple[int, datetime | None]:
    """The file's size and, where its storage knows it, its modification time."""
    name = getattr(stored, "name", None)
    if store is not None and name:
        return store.stat(name)
    size = stored.size
    storage = getattr(stored, "storage", None)
    if storage is None or not name:
        return size, None
    try:
        return size, storage.get_modified_time(name)
    except (NotImplementedError, OSError):
        return size, None


def _validators(size: int, modified: datetime | None) -> tuple[str | None, int | None]:
    """A strong ETag and Last-Modified from the file's size and mtime."""
    if modified is None:
        return None, None
    stamp = modified.timestamp()
    return f'"{size:x}-{int(stamp * 1_000_000):x}"', int(stamp)


def _signed_redirect(
    store: MediaS3Storage, name: str, *, disposition: str, content_type: str
) -> HttpResponseRedirect:
    url = store.signed_url(
        name,
        disposition=disposition,
        content_type=content_type,
        seconds=settings.REELHOUSE_MEDIA_SIGNED_URL_SECONDS,
    )
    response = HttpResponseRedirect(url)
    # The URL stops working in minutes: a cached redirect would outlive it, and a revoked
    # share link or membership must stop the next request, not the next hour's.
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def file_response(
    request: HttpRequest,
    stored: File[Any],
    *,
    filename: str,
    as_attachment: bool,
    may_redirect: bool = True,
) -> HttpResponseBase:
    """The file, after the caller checked access; ``may_redirect=False`` always sends the bytes
    (for clients that may not follow a redirect), even when signed URLs are on."""
    extension = filename.rsplit(".", 1)[-1] if "." in filename else ""
    media = media_type_for_extension(extension)
    if media is None:
        # Stored before types were checked: the browser gets bytes to save, never to render.
        content_type, as_attachment = "application/octet-stream", True
    else:
        content_type = media.content_type
    disposition = content_disposition_header(as_attachment, filename) or "inline"
    store = object_store(getattr(stored, "storage", None))
    redirect = may_redirect and settings.REELHOUSE_MEDIA_SIGNED_URLS
    if store is not None and redirect and request.method == "GET":
        # Only GET: a URL signed for GET is refused for HEAD, which is answered here instead.
        return _signed_redirect(
            store, stored.name or "", disposition=disposition, content_type=content_type
        )
    size, modified = _describe(stored, store)
    etag, last_modified = _validators(size, modified)
    headers = {
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": FILE_CSP,
        "Content-Disposition": disposition,
    }
    if etag is not None and last_modified is not None:
        headers["ETag"] = etag
        headers["Last-Modified"] = http_date(last_modified)

    # If-None-Match / If-Modified-Since (304) and If-Match / If-Unmodified-Since (412).
    probe = HttpResponse(headers=headers)
    conditional = get_conditional_response(
        request, etag=etag, last_modified=last_modified, response=probe
    )
    if conditional is not None and conditional is not probe:
        return conditional

    span = None
    if "Range" in request.headers and _if_range_holds(request, etag, last_modified):
        try:
            span = _requested_span(request.headers["Range"], size)
        except _Unsatisfiable:
            refused = HttpResponse(status=416, headers=headers)
            refused["Content-Range"] = f"bytes */{size}"
            return refused
    start, end = span if span is not None else (0, size - 1)
    length = end - start + 1 if size else 0
    status = 206 if span is not None else 200
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"

    response: HttpResponseBase
    if request.method == "HEAD":
        response = HttpResponse(status=status, content_type=content_type)
    elif store is not None:
        key = stored.name or ""
        chunks = store.stream(key, start=start, end=end) if span else store.stream(key)
        response = StreamingHttpResponse(chunks, status=status, content_type=content_type)
    elif span is None:
        response = FileResponse(stored.open("rb"), content_type=content_type)
    else:
        response = StreamingHttpResponse(
            _read_span(stored.open("rb"), start, length), status=206, content_type=content_type
        )
    # Set last: FileResponse writes a Content-Disposition of its own from the stored name.
    for name, value in headers.items():
        response[name] = value
    response["Content-Length"] = str(length)
    return response
