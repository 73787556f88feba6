#!/usr/bin/env python3
"""Zero-setup entry point: needs only Python 3.11+.

    python3 reelhouse.py up      # install what is missing, then run the whole app
    python3 reelhouse.py test    # install what is missing (with test tools), then run the tests

It keeps a virtual environment in .venv and reinstalls only when pyproject.toml changes. Any
other words are passed on: ``python3 reelhouse.py up --port 9000``,
``python3 reelhouse.py test -k simulator``, ``python3 reelhouse.py manage createsuperuser``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"


def ensure_environment(*, dev: bool) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before any install
        sys.exit("Reelhouse needs Python 3.11 or newer.")
    extras = "[dev]" if dev else ""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".installed{'-dev' if dev else ''}"
    if stamp.exists() and stamp.read_text() == digest and PYTHON.exists():
        return
    if not PYTHON.exists():
        print("Creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing dependencies into .venv (first run only) …", flush=True)
    subprocess.run(
        [
            str(PYTHON),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-e",
            f"{ROOT}{extras}",
        ],
        check=True,
    )
    stamp.write_text(digest)


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("up", [])
    os.chdir(ROOT)
    if command == "up":
        ensure_environment(dev=False)
        return subprocess.call([str(PYTHON), "manage.py", "up", *rest])
    if command == "test":
        ensure_environment(dev=True)
        return subprocess.call([str(PYTHON), "-m", "pytest", *rest])
    if command == "manage":
        ensure_environment(dev=False)
        return subprocess.call([str(PYTHON), "manage.py", *rest])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
