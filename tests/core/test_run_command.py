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
