"""Drafts of a refused form: one session's own, deleted when used or old."""

from __future__ import annotations

import os
import time

from django.core.files.storage import default_storage

from workspace.generations.drafts import DRAFT_MAX_AGE, DraftStash
from workspace.generations.images import CheckedImage


def image(name: str = "a.png") -> CheckedImage:
    return CheckedImage(
        content=b"\x89PNG fake", content_type="image/png", width=10, height=10, original_name=name
    )


def test_a_draft_is_kept_for_its_session_and_deleted_when_used() -> None:
    session: dict = {}
    stash = DraftStash(session, user_id=7)
    token = stash.put(image())
    kept = stash.get(token)
    assert kept is not None and kept.content == b"\x89PNG fake" and kept.original_name == "a.png"
    path = stash.path_of(token)
    assert path and path.startswith("drafts/7/") and default_storage.exists(path)
    # Another session (even of the same member) does not know the token.
    assert DraftStash({}, user_id=7).get(token) is None
    stash.discard([token])
    assert stash.get(token) is None and not default_storage.exists(path)


def test_old_drafts_are_swept_including_those_of_ended_sessions() -> None:
    ended = DraftStash({}, user_id=7)
    old_path = ended.path_of(ended.put(image("old.png")))
    assert old_path
    stale = time.time() - DRAFT_MAX_AGE.total_seconds() - 60
    os.utime(default_storage.path(old_path), (stale, stale))
    session: dict = {}
    stash = DraftStash(session, user_id=7)
    fresh = stash.put(image("new.png"))  # each stash sweeps the member's old drafts
    assert not default_storage.exists(old_path)
    assert stash.get(fresh) is not None
    # Another member's drafts are not touched.
    other = DraftStash({}, user_id=8)
    other_path = other.path_of(other.put(image()))
    assert other_path
    os.utime(default_storage.path(other_path), (stale, stale))
    stash.put(image())
    assert default_storage.exists(other_path)
