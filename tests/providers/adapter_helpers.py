"""Shared by the Runway, fal and Gemini adapter tests: adapters on the real simulator over HTTP."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from workspace.providers.adapters.base import JobStatus, ProviderJob, VideoAdapter
from workspace.providers.errors import ErrorClass, ProviderError
from workspace.providers.registry import provider
from workspace.simulator.protocols.common import MediaHost
from workspace.simulator.server import SimulatorServer

# Long enough that mask_secret shows only its ends; none of it may ever surface whole.
KEY = "live-key-0123456789abcdef0123456789abcdef"
WRONG_KEY = "stale-key-fedcba9876543210fedcba9876543210"
TERMINAL = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED)


def build(
    adapter_class: Callable[..., VideoAdapter],
    simulator: SimulatorServer,
    kind: str,
    *,
    key: str = KEY,
    **options: Any,
) -> VideoAdapter:
    return adapter_class(
        base_url=simulator.url + provider(kind).simulator_path,
        api_key=key,
        connect_timeout=2,
        read_timeout=5,
        download_timeout=10,
        **options,
    )


def wait(adapter: VideoAdapter, job_id: str, timeout: float = 5.0) -> ProviderJob:
    deadline = time.monotonic() + timeout
    while True:
        job = adapter.retrieve(job_id)
        if job.status in TERMINAL:
            return job
        assert time.monotonic() < deadline, f"still {job.status} after {timeout}s"
        time.sleep(0.005)


def download(adapter: VideoAdapter, job_id: str) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    content_type = adapter.download(job_id, variant="video", destination=buffer)
    return content_type, buffer.getvalue()


def raises(call: Callable[[], object], error_class: ErrorClass) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        call()
    assert caught.value.error_class is error_class, caught.value
    return caught.value


def media_host(simulator: SimulatorServer) -> MediaHost:
    host = simulator.routes["/cdn"]
    assert isinstance(host, MediaHost)
    return host


def assert_key_never_leaked(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    for record in caplog.records:
        assert KEY not in record.getMessage() and WRONG_KEY not in record.getMessage()
        assert KEY not in str(record.args or "")
    for text in texts:
        assert KEY not in text and WRONG_KEY not in text


def keep_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


class RecordingPacer:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.pushbacks: list[float] = []

    def acquire(self, kind: str, *, max_wait: float) -> float:
        self.calls.append(kind)
        return 0.0

    def pushback(self, seconds: float) -> None:
        self.pushbacks.append(seconds)


class RecordingCircuit:
    def __init__(self) -> None:
        self.allowed = 0
        self.outcomes: list[bool] = []

    def allow(self) -> None:
        self.allowed += 1

    def record(self, *, ok: bool) -> str:
        self.outcomes.append(ok)
        return "closed"


class EdgeRecorder:
    """An httpx MockTransport that answers from a table and keeps every request it saw."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._answer(request)

    def to_host(self, host: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == host]

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def carries_key(request: httpx.Request) -> bool:
    return any(KEY in value for value in request.headers.values()) or KEY in str(request.url)
