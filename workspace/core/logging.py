"""Logging filters and the JSON formatter (REELHOUSE_LOG_FORMAT=json)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import PermissionDenied


class ForbiddenWithoutTraceback(logging.Filter):
    """Keep the one-line warning of a 403 and drop its traceback.

    Django logs every PermissionDenied with the exception attached; a member opening a page
    their role does not allow is ordinary, and a traceback per refusal buries real errors.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            getattr(record, "status_code", None) == 403
            and record.exc_info
            and isinstance(record.exc_info[1], PermissionDenied)
        ):
            record.exc_info = None
            record.exc_text = None
        return True


# What every LogRecord carries; anything else on a record came from ``extra=`` and is kept.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, so a log shipper needs no pattern to split the fields.

    The message is formatted as the plain formatter would; a traceback goes whole into
    ``exc_info`` (one line, newlines escaped) rather than spilling over many lines. Fields passed
    with ``extra=`` are kept; ones JSON cannot carry (Django's request object) become their
    ``str``, except the request itself, which is reduced to method and path.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        for name, value in vars(record).items():
            if name in _STANDARD or name in entry:
                continue
            if name == "request":
                # Django's request logger passes the request: its method and path are enough
                # (its headers carry cookies).
                value = f"{getattr(value, 'method', '')} {getattr(value, 'path', '')}".strip()
            entry[name] = value
        return json.dumps(entry, default=str, ensure_ascii=False)
