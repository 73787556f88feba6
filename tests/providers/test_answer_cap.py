"""An API answer is read up to a cap: a gateway that answers without end cannot fill a worker's
memory, and a create whose answer was too big to read is treated as one that may have made a
job (reconciled, never blindly sent again)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import pytest

from workspace.providers.errors import CreateOutcome, ErrorClass, ProviderError
from workspace.providers.http import ProviderHTTP

CAP = 1000


def endless() -> Iterator[bytes]:
    yield b'{"id": "video_1", "pad": "'
    for _ in range(10_000):  # 640 MB if it were all read
        yield b"x" * 65536


def gateway(answer: httpx.Response) -> ProviderHTTP:
    def classify(response: httpx.Response) -> ProviderError:
        return ProviderError(ErrorClass.INVALID_REQUEST, "refused")

    return ProviderHTTP(
        base_url="https://gateway.example/v1",
        headers={"Authorization": "Bearer sk-test"},
        secret="sk-test",
        classify=classify,
        connect_timeout=1,
        read_timeout=1,
        transport=httpx.MockTransport(lambda request: answer),
        max_answer_bytes=CAP,
    )


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (httpx.Response(200, content=endless()), CreateOutcome.AMBIGUOUS),
        (httpx.Response(200, headers={"Content-Length": str(CAP + 1)}, content=b"{}"), CreateOutcome.AMBIGUOUS),
        (httpx.Response(502, content=endless()), CreateOutcome.AMBIGUOUS),
        (httpx.Response(400, content=endless()), CreateOutcome.NOT_CREATED),
    ],
    ids=["2xx streamed", "2xx declared", "5xx", "4xx"],
)
def test_an_answer_over_the_cap_is_refused_unread(answer: httpx.Response, outcome: CreateOutcome) -> None:
    with pytest.raises(ProviderError) as raised:
        gateway(answer).request("POST", "videos", creates=True, json={"prompt": "x"})
    error = raised.value
    assert error.error_class is ErrorClass.PROVIDER_FAILED
    assert error.create_outcome is outcome
    assert f"more than {CAP} bytes" in error.message
    assert not error.transient


def test_an_answer_under_the_cap_reads_as_before_compressed_or_not() -> None:
    body = b'{"id": "video_1", "status": "queued"}'
    plain = gateway(httpx.Response(200, json={"id": "video_1", "status": "queued"}))
    assert plain.request("GET", "videos/video_1").json() == {"id": "video_1", "status": "queued"}
    zipped = gateway(
        httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=gzip.compress(body))
    )
    assert zipped.request("GET", "videos/video_1").json()["status"] == "queued"
