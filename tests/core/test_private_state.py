"""Local state is written readable by its owner only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from workspace.core import embedded_redis
from workspace.core.management.commands.up import Command


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_stored_files_and_their_folders_are_private(tmp_path: Path) -> None:
    # The suite's storage lives in tmp_path/media (tests/conftest.py).
    name = default_storage.save("generations/7/video.mp4", ContentFile(b"\x00" * 16))
    stored = Path(default_storage.path(name))
    assert mode(stored) == 0o600
    assert mode(stored.parent) == 0o700
    assert mode(stored.parent.parent) == 0o700


@pytest.mark.django_db
def test_the_first_admin_password_file_is_private_and_the_hint_works(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.VAR_DIR = tmp_path
    first = Command()._ensure_admin()
    assert "Sign in as 'admin'" in first
    assert mode(tmp_path / "first-admin-password.txt") == 0o600
    later = Command()._ensure_admin()
    assert "python3 reelhouse.py manage changepassword NAME" in later


def test_the_embedded_redis_folder_is_private(tmp_path: Path) -> None:
    socket_path = tmp_path / "redis" / "redis.sock"
    process = embedded_redis.start(socket_path)
    try:
        assert mode(socket_path.parent) == 0o700
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)


def test_reelhouse_py_has_the_manage_command_the_hint_names() -> None:
    root = Path(__file__).resolve().parents[2]
    source = (root / "reelhouse.py").read_text()
    assert 'if command == "manage":' in source
    assert subprocess.run(
        [sys.executable, str(root / "manage.py"), "help", "changepassword"],
        capture_output=True, text=True, timeout=60, cwd=root,
    ).returncode == 0
