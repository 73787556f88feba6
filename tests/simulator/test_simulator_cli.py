"""The simulator runs as a process: ``python -m workspace.simulator`` and ``manage.py``."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from workspace.simulator import SimulatorConfig
from workspace.simulator.cli import config_from_options

from .helpers import API_KEY, SSL_CONTEXT

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def running(command: list[str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Start the simulator process, yield its URL, then stop it the way a person would."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, *command], cwd=REPO, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        match = re.search(r"listening on (http://\S+)", first_line)
        assert match, first_line + (process.stderr.read() if process.stderr else "")
        yield match.group(1), process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_python_dash_m_serves_the_protocol_until_sigterm() -> None:
    command = ["-m", "workspace.simulator", "--port", "0", "--time-scale", "7", "--rpm", "9",
               "--seed", "3", "--api-key", API_KEY]
    with running(command) as (url, process):
        state = httpx.get(url + "/_sim/state", verify=SSL_CONTEXT).json()
        assert state["config"]["time_scale"] == 7.0
        assert (state["config"]["rpm_limit"], state["config"]["seed"]) == (9, 3)
        assert API_KEY not in str(state)
        response = httpx.post(url + "/v1/videos", json={"prompt": "p"}, verify=SSL_CONTEXT,
                              headers={"Authorization": f"Bearer {API_KEY}"})
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining-requests"] == "8"
    out, _ = process.communicate()
    assert process.returncode == 0
    assert "Stopping." in out and API_KEY not in out


def test_manage_py_simulate_provider() -> None:
    command = ["manage.py", "simulate_provider", "--host", "127.0.0.1", "--port", "0",
               "--moderation-rate", "1", "--render-seconds", "0"]
    with running(command) as (url, _):
        headers = {"Authorization": "Bearer anything"}
        video = httpx.post(url + "/v1/videos", json={"prompt": "p"}, headers=headers,
                           verify=SSL_CONTEXT).json()
        done = httpx.get(f"{url}/v1/videos/{video['id']}", headers=headers,
                         verify=SSL_CONTEXT).json()
        assert done["error"]["code"] == "moderation_blocked"


def test_bad_options_and_busy_ports_fail_clearly() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    bad = subprocess.run([sys.executable, "-m", "workspace.simulator", "--fail-5xx-rate", "2"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=30,
                         check=False)
    assert bad.returncode == 2 and "fail_5xx_rate" in bad.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        taken = subprocess.run([sys.executable, "-m", "workspace.simulator", "--port", port],
                               cwd=REPO, env=env, capture_output=True, text=True, timeout=30,
                               check=False)
    assert taken.returncode == 2 and "cannot listen" in taken.stderr


def test_options_map_onto_the_config() -> None:
    config = config_from_options({"render_seconds": 2.5, "rpm_limit": 10, "api_keys": ["k"],
                                  "insufficient_quota": None, "verbosity": 1, "port": 1})
    assert config == SimulatorConfig(render_seconds=2.5, rpm_limit=10, api_keys=["k"])
    with pytest.raises(ValueError, match="time_scale"):
        config_from_options({"time_scale": -1.0})
