"""Uploads kept between a refused form and the member's next try, so nothing is uploaded twice.

A checked upload (``CheckedImage``: our own re-encoded bytes, not yet fitted, so a changed size
or fit still applies) is saved under ``drafts/<user id>/<token>.<ext>`` in default storage and
named in the member's session; only the session that stashed it can use it. Each stash removes
the member's drafts older than ``DRAFT_MAX_AGE``, and a used one is deleted with the session's
reference, so drafts never outlive a working session by long.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from workspace.generations.images import CheckedImage

logger = logging.getLogger(__name__)

SESSION_KEY = "generations:drafts"
DRAFT_MAX_AGE = timedelta(hours=2)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class DraftStash:
    """The drafts of one member's session."""

    def __init__(self, session: MutableMapping[str, Any], *, user_id: int) -> None:
        self.session = session
        self.user_id = user_id

    def _entries(self) -> dict[str, dict[str, Any]]:
        entries = self.session.get(SESSION_KEY)
        return entries if isinstance(entries, dict) else {}

    def _save_entries(self, entries: dict[str, dict[str, Any]]) -> None:
        self.session[SESSION_KEY] = entries

    def put(self, image: CheckedImage) -> str:
        self.sweep()
        token = secrets.token_urlsafe(12)
        extension = _EXTENSIONS.get(image.content_type, "bin")
        name = default_storage.save(
            f"drafts/{self.user_id}/{token}.{extension}", ContentFile(image.content)
        )
        entries = self._entries()
        entries[token] = {
            "name": name,
            "content_type": image.content_type,
            "width": image.width,
            "height": image.height,
            "original_name": image.original_name,
            "animated": image.animated,
            "at": timezone.now().timestamp(),
        }
        self._save_entries(entries)
        return token

    def info(self, token: str) -> dict[str, Any] | None:
        entry = self._entries().get(token)
        return entry if isinstance(entry, dict) else None

    def get(self, token: str) -> CheckedImage | None:
        """The stashed image, or None when the token is not this session's or it is gone."""
        entry = self.info(token)
        if entry is None:
            return None
        try:
            with default_storage.open(entry["name"], "rb") as handle:
                content = handle.read()
        except (OSError, KeyError):
            return None
        return CheckedImage(
            content=content,
            content_type=entry["content_type"],
            width=entry["width"],
            height=entry["height"],
            original_name=entry.get("original_name", ""),
            animated=bool(entry.get("animated")),
        )

    def path_of(self, token: str) -> str | None:
        entry = self.info(token)
        return entry["name"] if entry else None

    def discard(self, tokens: list[str]) -> None:
        entries = self._entries()
        for token in tokens:
            entry = entries.pop(token, None)
            if entry:
                _delete(entry["name"])
        self._save_entries(entries)

    def sweep(self) -> None:
        """Forget this session's old drafts and delete the member's old draft files, including
        those of sessions that ended without a second try."""
        cutoff = timezone.now() - DRAFT_MAX_AGE
        entries = self._entries()
        kept = {t: e for t, e in entries.items() if e.get("at", 0) >= cutoff.timestamp()}
        if len(kept) != len(entries):
            self._save_entries(kept)
        folder = f"drafts/{self.user_id}"
        try:
            _, files = default_storage.listdir(folder)
        except (FileNotFoundError, NotImplementedError):
            return
        for filename in files:
            name = f"{folder}/{filename}"
            try:
                old = default_storage.get_modified_time(name) < cutoff
            except (OSError, NotImplementedError):
                continue
            if old:
                _delete(name)


def _delete(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:
        logger.warning("could not delete draft %s", name)
