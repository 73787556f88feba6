"""Bad configuration stops the process at start, with a message that names the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start_django(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REELHOUSE_"))}
    for name in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"):
        clean.pop(name, None)
    clean.update({"REELHOUSE_VAR_DIR": str(tmp_path), **env})
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DEBUG": "ture"}, "DEBUG"),
        ({"DATABASE_URL": "mysql://db/reelhouse"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
        ({"REELHOUSE_ENV": "staging"}, "REELHOUSE_ENV"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"PROVIDER_READ_TIMEOUT": "soon"}, "PROVIDER_READ_TIMEOUT"),
        ({"REELHOUSE_ENV": "production"}, "SECRET_KEY"),
        (
            {"REELHOUSE_ENV": "production", "SECRET_KEY": "x" * 40, "ALLOWED_HOSTS": "a.example"},
            "DATABASE_URL",
        ),
    ],
)
def test_bad_values_fail_loudly(tmp_path: Path, env: dict[str, str], named: str) -> None:
    result = start_django(tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr.strip().splitlines()[-1]


def test_local_mode_needs_no_configuration_and_keeps_its_secret_key(tmp_path: Path) -> None:
    assert start_django(tmp_path).returncode == 0
    key = (tmp_path / "secret_key").read_text()
    assert start_django(tmp_path).returncode == 0
    assert (tmp_path / "secret_key").read_text() == key
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
