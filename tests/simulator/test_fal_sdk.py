"""fal-client 1.0.3, unmodified, drives the simulated fal queue over HTTPS.

fal-client speaks only TLS to the queue host (``https://{FAL_QUEUE_RUN_HOST}/``, read from the
environment when the module is imported), so the SDK runs in a child process whose environment
points it at the simulator's HTTPS port and trusts the simulator's authority (SSL_CERT_FILE), as
a developer would set it up. The child reports what the SDK returned and raised as JSON.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from workspace.simulator import SimulatorServer

from .helpers import API_KEY, SSL_CONTEXT

SCRIPT = r'''
import json, sys, time
import fal_client

client = fal_client.SyncClient(key=sys.argv[1])
out = {}
app = "fal-ai/veo3.1/fast"
handle = client.submit(app, {"prompt": "a lighthouse", "duration": "4s"})
out["request_id"] = handle.request_id
out["urls"] = [handle.response_url, handle.status_url, handle.cancel_url]
seen = []
deadline = time.monotonic() + 30
while True:
    status = client.status(app, handle.request_id, with_logs=True)
    seen.append(type(status).__name__)
    if isinstance(status, fal_client.Completed):
        break
    assert time.monotonic() < deadline, seen
    time.sleep(0.01)
out["statuses"] = seen
result = client.result(app, handle.request_id)
out["video_url"] = result["video"]["url"]

slow = client.submit(app, {"prompt": "a slow boat", "duration": "8s"})
client.cancel(app, slow.request_id)
out["after_cancel"] = type(client.status(app, slow.request_id)).__name__

try:
    client.submit(app, {"prompt": "x", "duration": "5s"})
except fal_client.client.FalClientHTTPError as error:
    out["invalid"] = [error.status_code, str(error)]
try:
    fal_client.SyncClient(key="wrong:key").submit(app, {"prompt": "x", "duration": "4s"})
except fal_client.client.FalClientHTTPError as error:
    out["unauthorized"] = error.status_code
print(json.dumps(out))
'''


def run_sdk(sim: SimulatorServer) -> dict[str, Any]:
    assert sim.tls_url is not None and sim.ca_file is not None
    env = {
        **os.environ,
        # The SDK reads a bare host; a path after it is kept by its string formatting.
        "FAL_QUEUE_RUN_HOST": sim.tls_url.removeprefix("https://") + "/fal",
        "SSL_CERT_FILE": str(sim.ca_file),
    }
    env.pop("FAL_KEY", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, API_KEY], env=env, capture_output=True, text=True,
        timeout=120, cwd=Path(__file__).resolve().parents[2], check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_the_official_client_submits_polls_reads_and_cancels_over_https(
    sim: SimulatorServer,
) -> None:
    sim.update_config(api_keys=[API_KEY])
    out = run_sdk(sim)
    prefix = f"{sim.tls_url}/fal/fal-ai/veo3.1/requests/{out['request_id']}"
    # Every URL the simulator hands out over TLS is on TLS too.
    assert out["urls"] == [prefix, prefix + "/status", prefix + "/cancel"]
    assert out["statuses"][-1] == "Completed"
    assert set(out["statuses"]) <= {"Queued", "InProgress", "Completed"}
    assert out["video_url"].startswith(f"{sim.tls_url}/cdn/")
    assert out["after_cancel"] == "Completed"
    status, message = out["invalid"]
    assert status == 422 and "duration" in message
    assert out["unauthorized"] == 401
    log = {entry["id"]: entry for entry in sim.creates()}
    assert log[out["request_id"]]["billed"]
    assert any(entry["status"] == "canceled" for entry in log.values())


def test_plain_http_stays_available(sim: SimulatorServer) -> None:
    response = httpx.post(sim.url + "/fal/fal-ai/veo3.1/fast", verify=SSL_CONTEXT,
                          json={"prompt": "a lighthouse", "duration": "4s"},
                          headers={"Authorization": f"Key {API_KEY}"})
    assert response.status_code == 200
    assert response.json()["status_url"].startswith(sim.url + "/fal/")


def test_an_untrusting_client_is_refused_and_the_server_carries_on(sim: SimulatorServer) -> None:
    assert sim.tls_url is not None and sim.tls is not None
    with pytest.raises(httpx.ConnectError):
        httpx.get(sim.tls_url + "/fal/fal-ai/veo3.1/requests/x/status",
                  verify=ssl.create_default_context())
    trusted = httpx.get(sim.tls_url + "/fal/fal-ai/veo3.1/requests/x/status",
                        verify=sim.tls.client_context())
    assert trusted.status_code in (401, 404)
