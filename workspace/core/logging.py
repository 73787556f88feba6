"""Logging filters."""

from __future__ import annotations

import logging

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
