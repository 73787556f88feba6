"""The README's run command on a fresh state directory: it must start everything a video needs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def children(pid: int, command: str) -> list[int]:
    """The direct children of ``pid`` whose command line contains ``command``."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid and command in line:
            found.append(int(entry.name))
    return found


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_up_serves_the_app_and_generates_a_video(tmp_path: Path) -> None:
    web, simulator = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "OPENAI_API_KEY", "DEBUG")
    }
    env.update(
        REELHOUSE_VAR_DIR=str(tmp_path / "var"),
        REELHOUSE_SIMULATOR_URL=f"http://127.0.0.1:{simulator}",
        DJANGO_SUPERUSER_PASSWORD="a long first admin password",
    )
    log = tmp_path / "up.log"
    # A file, not a pipe: the workers log for as long as they run, and a full pipe would stall them.
    with log.open("w") as output:
        up = subprocess.Popen(
            [sys.executable, "manage.py", "up", "--port", str(web), "--workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "Press Ctrl-C to stop" not in log.read_text():  # the banner's last line
            assert up.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        banner = log.read_text()
        assert "Reelhouse is running at" in banner
        assert "Sign in as 'admin'" in banner
        # Exactly the Procfile's processes (one worker asked for, a dispatch worker per lane),
        # after the embedded Redis it provisioned.
        assert (
            "Processes (from Procfile): redis, web.1, worker.1, dispatch.1, dispatch.2, "
            "scheduler.1, simulator.1\n" in banner
        )

        manage = [sys.executable, "manage.py"]
        subprocess.run(
            [*manage, "project_create", "--name", "Demo", "--owner", "admin"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        submitted = subprocess.run(
            [
                *manage,
                "generation_submit",
                "--user",
                "admin",
                "--project",
                "Demo",
                "--prompt",
                "A paper boat on a rainy street",
                "--wait",
                "--timeout",
                "120",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        assert "Completed:" in submitted.stdout

        # The only default-queue worker dies as under the out-of-memory killer: it is replaced
        # (a fresh RQ name, no clash with its dead registration) and the next video completes.
        (worker,) = children(up.pid, "rqworker default")
        os.kill(worker, signal.SIGKILL)
        while "worker.1 was killed by SIGKILL; restarting it" not in log.read_text():
            assert up.poll() is None, log.read_text()
            assert time.monotonic() < deadline + 120, log.read_text()
            time.sleep(0.2)
        again = subprocess.run(
            [
                *manage,
                "generation_submit",
                "--user",
                "admin",
                "--project",
                "Demo",
                "--prompt",
                "A second boat",
                "--wait",
                "--timeout",
                "120",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert again.returncode == 0, again.stdout + again.stderr + log.read_text()[-5000:]
        assert "Completed:" in again.stdout
        assert "There exists an active worker named" not in log.read_text()
        (replacement,) = children(up.pid, "rqworker default")
        assert replacement != worker

        sign_in = httpx.get(f"http://127.0.0.1:{web}/accounts/sign-in/", timeout=10)
        assert sign_in.status_code == 200
        assert "Sign in" in sign_in.text
        assert "script-src 'self'" in sign_in.headers["Content-Security-Policy"]

        # DEBUG is off unless the operator asks: our 404 page, not Django's debug page, and
        # static files still served (whitenoise from the source folders).
        missing = httpx.get(f"http://127.0.0.1:{web}/no-such-page/", timeout=10)
        assert missing.status_code == 404
        assert "We can\u2019t find that page" in missing.text
        assert "URLconf" not in missing.text
        css = httpx.get(f"http://127.0.0.1:{web}/static/css/app.css", timeout=10)
        assert css.status_code == 200
        assert "text/css" in css.headers["Content-Type"]

        # Local state is the owner's alone.
        var = tmp_path / "var"
        assert mode(var) == 0o700
        for private in ("secret_key", "first-admin-password.txt", "reelhouse.sqlite3"):
            assert mode(var / private) == 0o600, private
        assert mode(var / "redis") == 0o700
        videos = [p for p in (var / "media").rglob("*") if p.is_file()]
        assert videos
        assert {mode(p) for p in videos} == {0o600}
        assert {mode(p) for p in (var / "media").rglob("*") if p.is_dir()} == {0o700}
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
