"""The app reaches the simulator's HTTPS port, trusting its generated authority for that origin
and for no other."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings

from tests.providers.adapter_helpers import KEY, download, raises, wait
from workspace.providers.adapters.base import JobStatus, VideoRequest
from workspace.providers.errors import ErrorClass
from workspace.providers.http import trust_for_origin
from workspace.providers.integrations.fal.adapter import FalQueueAdapter
from workspace.simulator.server import SimulatorServer

REQUEST = VideoRequest(model="fal-ai/veo3.1", prompt="a paper boat", size="1280x720", seconds=4)


def fal_at(base_url: str) -> FalQueueAdapter:
    return FalQueueAdapter(base_url=base_url, api_key=KEY, connect_timeout=2, read_timeout=5,
                           download_timeout=10)


@pytest.fixture
def trusted(simulator: SimulatorServer) -> Iterator[SimulatorServer]:
    assert simulator.tls_url is not None
    trust_for_origin(simulator.tls_url, simulator.ca_file)
    yield simulator
    trust_for_origin(simulator.tls_url, None)


def test_a_fal_channel_works_end_to_end_over_the_simulators_tls(trusted) -> None:  # type: ignore[no-untyped-def]
    adapter = fal_at(f"{trusted.tls_url}/fal")
    try:
        job = adapter.create(REQUEST)
        done = wait(adapter, job.id)
        assert done.status is JobStatus.COMPLETED
        content_type, video = download(adapter, job.id)
        assert content_type == "video/mp4" and video[4:8] == b"ftyp"
    finally:
        adapter.close()


def test_the_authority_is_trusted_for_the_simulators_origin_only(trusted) -> None:  # type: ignore[no-untyped-def]
    # Another server with the same authority on another port: not vouched for.
    with SimulatorServer() as other:
        assert other.ca_file == trusted.ca_file and other.tls_url != trusted.tls_url
        adapter = fal_at(f"{other.tls_url}/fal")
        try:
            raises(lambda: adapter.create(REQUEST), ErrorClass.NETWORK)
        finally:
            adapter.close()


def test_settings_point_the_app_at_the_simulators_authority() -> None:
    assert settings.SIMULATOR_TLS_URL.startswith("https://")
    assert settings.SIMULATOR_CA_FILE.name == "ca.pem"
