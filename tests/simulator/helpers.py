"""Helpers shared by the simulator tests: schema checks, polling, test images."""

from __future__ import annotations

import ssl
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import yaml
from openapi_schema_validator import OAS31Validator, validate

from workspace.simulator import SimulatorServer

SPEC_PATH = (Path(__file__).resolve().parents[2] / "workspace" / "providers" / "specs"
             / "openai-videos-openapi.yaml")
API_KEY = "sk-simulator-test-key-0123456789abcdef"
# Fast enough that a default 6 s render takes 0.12 s of real time.
FAST = 50.0

# Only plain http is used, but httpx builds a TLS context per client (~40 ms); share one.
SSL_CONTEXT = ssl.create_default_context()
_components: dict[str, Any] | None = None
_checked: set[str] = set()


def spec_components() -> dict[str, Any]:
    global _components
    if _components is None:
        _components = yaml.safe_load(SPEC_PATH.read_text())["components"]
    return _components


def assert_schema(instance: Any, schema_name: str) -> None:
    """Validate against a component schema, resolving $refs against the whole spec document."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec_components()}
    # The schema itself is checked once per name; re-checking it costs ~10 ms a call.
    validate(instance, schema, cls=OAS31Validator, check_schema=schema_name not in _checked)
    _checked.add(schema_name)


def assert_error(response: httpx.Response, status: int, *, param: str | None = None,
                 code: str | None = None, type_: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert_schema(body, "ErrorResponse")
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if param is not None:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    if type_ is not None:
        assert error["type"] == type_, error
    return error


def wait_for(client: httpx.Client, video_id: str, statuses: tuple[str, ...] = ("completed",),
             timeout: float = 30.0) -> dict[str, Any]:
    """Poll GET /videos/{id} (the protocol's own way to wait) until a status is reached."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/videos/{video_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"still {body['status']} after {timeout}s"
        time.sleep(0.005)


def make_png(width: int, height: int) -> bytes:
    """A valid, solid-colour RGB PNG (compresses to a few KB even at 1280x720)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\x00" + b"\x30\x60\x90" * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def mp4_seconds(data: bytes) -> float:
    """The movie header's duration: what a player shows as the clip's length."""
    at = data.index(b"mvhd")
    version = data[at + 4]
    if version == 1:
        timescale, duration = struct.unpack(">IQ", data[at + 24:at + 36])
    else:
        timescale, duration = struct.unpack(">II", data[at + 16:at + 24])
    return float(duration / timescale)


def make_client(server: SimulatorServer, *, key: str | None = API_KEY,
                timeout: float = 10.0) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.Client(base_url=server.url + "/v1", headers=headers, timeout=timeout,
                        verify=SSL_CONTEXT)
