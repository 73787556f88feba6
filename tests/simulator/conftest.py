"""Fixtures for the provider simulator's tests: a fresh server per test on a free port.

No database is touched; the media renders are cached process-wide by the simulator itself, so
ffmpeg runs once per (variant, size, seconds) for the whole session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from workspace.providers.registry import provider_env_names
from workspace.simulator import SimulatorConfig, SimulatorServer

from .helpers import FAST, make_client


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replaces the suite-wide autouse fixture of the same name for these tests only.

    The simulator needs neither Redis nor Django settings; skipping them keeps these tests
    fast and stops them from flushing (or stopping) a Redis another test run is using.
    """
    for name in provider_env_names():
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_server() -> Iterator[Callable[..., SimulatorServer]]:
    """Start extra servers with their own config; all are stopped after the test."""
    servers: list[SimulatorServer] = []

    def factory(**config: Any) -> SimulatorServer:
        server = SimulatorServer(config=SimulatorConfig(**config)).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def sim(make_server: Callable[..., SimulatorServer]) -> SimulatorServer:
    return make_server(time_scale=FAST, seed=1234)


# Deliberately shadows pytest-django's Django test client inside tests/simulator: here every
# test talks HTTP to the simulator, so ``client`` is an httpx client on its /v1 base URL.
@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with make_client(sim) as http:
        yield http
