"""Error classification of the OpenAI adapter, faked only at the HTTP edge (httpx transport)."""

import logging

import httpx
import pytest

from workspace.providers.adapters.base import VideoRequest
from workspace.providers.errors import CreateOutcome, ErrorClass, ProviderError
from workspace.providers.http import parse_duration, retry_after_seconds
from workspace.providers.integrations.openai_videos.adapter import (
    OpenAIVideosAdapter,
    classify_job_failure,
)

KEY = "sk-live-abcdefghijklmnopqrstuvwxyz123456"
REQUEST = VideoRequest(model="sora-2", prompt="p", size="1280x720", seconds=4)


def adapter(handler) -> OpenAIVideosAdapter:  # type: ignore[no-untyped-def]
    return OpenAIVideosAdapter(
        base_url="https://provider.invalid/v1",
        api_key=KEY,
        connect_timeout=1,
        read_timeout=1,
        download_timeout=1,
        transport=httpx.MockTransport(handler),
    )


def envelope(
    status: int, message: str, code: str | None, kind: str = "invalid_request_error", headers=None
):  # type: ignore[no-untyped-def]
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return lambda request: httpx.Response(status, json=body, headers=headers or {})


@pytest.mark.parametrize(
    ("answer", "error_class", "outcome"),
    [
        (
            envelope(
                429, "Rate limit reached", "rate_limit_exceeded", "requests", {"retry-after": "7"}
            ),
            ErrorClass.RATE_LIMITED,
            CreateOutcome.NOT_CREATED,
        ),
        (
            envelope(
                429,
                "You exceeded your current quota",
                "credit_balance_exhausted",
                "insufficient_quota",
            ),
            ErrorClass.QUOTA_EXHAUSTED,
            CreateOutcome.NOT_CREATED,
        ),
        (
            envelope(401, "Incorrect API key provided", "invalid_api_key"),
            ErrorClass.AUTH,
            CreateOutcome.NOT_CREATED,
        ),
        (envelope(403, "Country not supported", None), ErrorClass.AUTH, CreateOutcome.NOT_CREATED),
        (
            envelope(400, "Invalid value for size", "invalid_value"),
            ErrorClass.INVALID_REQUEST,
            CreateOutcome.NOT_CREATED,
        ),
        (
            envelope(400, "content policy violation", "moderation_blocked"),
            ErrorClass.MODERATION,
            CreateOutcome.NOT_CREATED,
        ),
        (
            envelope(500, "The server had an error", None, "server_error"),
            ErrorClass.OVERLOADED,
            CreateOutcome.AMBIGUOUS,
        ),
        (
            envelope(
                503, "The engine is currently overloaded", "server_is_overloaded", "server_error"
            ),
            ErrorClass.OVERLOADED,
            CreateOutcome.AMBIGUOUS,
        ),
        (
            lambda r: httpx.Response(502, text="<html>Bad gateway</html>"),
            ErrorClass.OVERLOADED,
            CreateOutcome.AMBIGUOUS,
        ),
    ],
)
def test_create_failures_are_classified_once(answer, error_class, outcome) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProviderError) as caught:
        adapter(answer).create(REQUEST)
    assert caught.value.error_class == error_class
    assert caught.value.create_outcome == outcome


def test_rate_limit_hints_are_read() -> None:
    answer = envelope(
        429,
        "slow down",
        "rate_limit_exceeded",
        "requests",
        {"retry-after": "3", "x-ratelimit-reset-requests": "6m0s"},
    )
    with pytest.raises(ProviderError) as caught:
        adapter(answer).retrieve("video_1")
    assert caught.value.retry_after == 360.0
    assert parse_duration("1.5s") == 1.5
    assert parse_duration("20ms") == 0.02
    assert parse_duration("soon") is None
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25


@pytest.mark.parametrize(
    ("exception", "outcome"),
    [
        (httpx.ConnectError("refused"), CreateOutcome.NOT_CREATED),
        (httpx.ConnectTimeout("slow connect"), CreateOutcome.NOT_CREATED),
        (httpx.ReadTimeout("no answer"), CreateOutcome.AMBIGUOUS),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            CreateOutcome.AMBIGUOUS,
        ),
    ],
)
def test_network_failures_say_whether_a_job_may_exist(exception, outcome) -> None:  # type: ignore[no-untyped-def]
    def handler(request):  # type: ignore[no-untyped-def]
        raise exception

    with pytest.raises(ProviderError) as caught:
        adapter(handler).create(REQUEST)
    assert caught.value.error_class == ErrorClass.NETWORK
    assert caught.value.create_outcome == outcome
    assert caught.value.transient


def test_job_failures_map_to_classes() -> None:
    assert (
        classify_job_failure({"code": "moderation_blocked", "message": "blocked"}).error_class
        == ErrorClass.MODERATION
    )
    assert (
        classify_job_failure({"code": "processing_error", "message": "heavy load"}).error_class
        == ErrorClass.OVERLOADED
    )
    assert (
        classify_job_failure({"code": "weird", "message": "?"}).error_class
        == ErrorClass.PROVIDER_FAILED
    )
    assert classify_job_failure(None).message


def test_the_key_never_leaks_into_errors_or_logs(caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    seen_headers = {}

    def handler(request):  # type: ignore[no-untyped-def]
        seen_headers.update(request.headers)
        return httpx.Response(
            401,
            json={
                "error": {
                    "message": f"Incorrect API key provided: {KEY}",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        )

    with pytest.raises(ProviderError) as caught:
        adapter(handler).create(REQUEST)
    assert seen_headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in caught.value.message
    assert KEY not in repr(caught.value)
    assert KEY not in caplog.text


def test_the_create_request_matches_the_spec() -> None:
    sent = {}

    def handler(request):  # type: ignore[no-untyped-def]
        sent["method"], sent["path"] = request.method, request.url.path
        sent["body"] = request.read()
        return httpx.Response(
            200,
            json={
                "id": "video_1",
                "object": "video",
                "model": "sora-2",
                "status": "queued",
                "progress": 0,
                "created_at": 1,
                "completed_at": None,
                "expires_at": None,
                "prompt": "p",
                "size": "1280x720",
                "seconds": "4",
                "remixed_from_video_id": None,
                "error": None,
            },
            headers={"openai-poll-after-ms": "1500"},
        )

    job = adapter(handler).create(REQUEST)
    assert (sent["method"], sent["path"]) == ("POST", "/v1/videos")
    assert b'"seconds":"4"' in sent["body"].replace(b" ", b"")
    assert job.id == "video_1"
    assert job.poll_after == 1.5
