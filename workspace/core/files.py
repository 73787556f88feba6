"""Serving stored files with HTTP Range support, which browsers need to seek in a video.

Django's FileResponse always sends the whole file; Safari refuses to play an MP4 without 206
answers, and other browsers cannot seek in long ones.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from typing import Any

from django.core.files import File
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 1 << 16


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


def file_response(
    request: HttpRequest, stored: File[Any], *, filename: str, as_attachment: bool
) -> HttpResponse | StreamingHttpResponse:
    size = stored.size
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if match is None or not (match.group(1) or match.group(2)):
        whole = FileResponse(
            stored.open("rb"),
            as_attachment=as_attachment,
            filename=filename,
            content_type=content_type,
        )
        whole["Accept-Ranges"] = "bytes"
        return whole
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:  # "bytes=-N": the last N bytes
        start = max(0, size - int(last))
        end = size - 1
    if start >= size or start > end:
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    length = end - start + 1
    partial = StreamingHttpResponse(
        _read_span(stored.open("rb"), start, length), status=206, content_type=content_type
    )
    partial["Content-Range"] = f"bytes {start}-{end}/{size}"
    partial["Content-Length"] = str(length)
    partial["Accept-Ranges"] = "bytes"
    disposition = "attachment" if as_attachment else "inline"
    partial["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return partial
