"""Standard Webhooks in: signature accept/reject, replay, and the immediate check it triggers."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from standardwebhooks import Webhook

from workspace.core.rq import get_queue
from workspace.generations.models import Generation, Status
from workspace.generations.submission import generation_submit
from workspace.providers.models import WebhookDelivery

SECRET = "whsec_" + base64.b64encode(b"a shared secret of thirty-two b.").decode()


@pytest.fixture
def webhook_secret(monkeypatch, channel):  # type: ignore[no-untyped-def]
    monkeypatch.setenv(channel.webhook_secret_env, SECRET)
    return SECRET


def signed(
    event: dict, *, msg_id: str = "msg_1", when: datetime | None = None, secret: str = SECRET
) -> tuple[bytes, dict[str, str]]:  # type: ignore[type-arg]
    body = json.dumps(event)
    when = when or datetime.now(tz=UTC)
    signature = Webhook(secret).sign(msg_id, when, body)
    headers = {
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(int(when.timestamp())),
        "HTTP_WEBHOOK_SIGNATURE": signature,
    }
    return body.encode(), headers


def completed(job_id: str) -> dict:  # type: ignore[type-arg]
    return {
        "id": "evt_1",
        "object": "event",
        "created_at": 1,
        "type": "video.completed",
        "data": {"id": job_id},
    }


def post(client, channel, body: bytes, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    url = reverse("providers:webhook", args=[channel.slug])
    return client.post(url, data=body, content_type="application/json", **headers)


def test_a_valid_webhook_is_accepted_once(client, channel, webhook_secret) -> None:  # type: ignore[no-untyped-def]
    body, headers = signed(completed("video_abc"))
    first = post(client, channel, body, headers)
    assert first.status_code == 200
    assert first.json() == {"ok": True, "duplicate": False}
    replay = post(client, channel, body, headers)
    assert replay.json() == {"ok": True, "duplicate": True}
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, headers: (body.replace(b"video_abc", b"video_xyz"), headers),
        lambda body, headers: (body, {**headers, "HTTP_WEBHOOK_SIGNATURE": "v1,AAAA"}),
        lambda body, headers: (body, {k: v for k, v in headers.items() if k != "HTTP_WEBHOOK_ID"}),
    ],
    ids=["altered body", "bad signature", "missing header"],
)
def test_forged_webhooks_are_refused(client, channel, webhook_secret, tamper) -> None:  # type: ignore[no-untyped-def]
    body, headers = tamper(*signed(completed("video_abc")))
    answer = post(client, channel, body, headers)
    assert answer.status_code == 400
    assert not WebhookDelivery.objects.exists()


def test_old_and_future_webhooks_are_refused(client, channel, webhook_secret) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(tz=UTC)
    for when in (now - timedelta(seconds=330), now + timedelta(seconds=330)):
        body, headers = signed(completed("video_abc"), when=when)
        answer = post(client, channel, body, headers)
        assert answer.status_code == 400
        assert "timestamp" in answer.json()["error"]


def test_a_channel_without_a_secret_has_no_webhook_endpoint(client, channel) -> None:  # type: ignore[no-untyped-def]
    body, headers = signed(completed("video_abc"))
    assert post(client, channel, body, headers).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_completion_webhook_triggers_the_download_at_once(
    client, project, channel, teammate, webhook_secret, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    from tests.generations.test_pipeline import send_now

    # The provider renders this one at once; only our side does not know yet.
    simulator.update_config(render_seconds=0.0)
    generation = generation_submit(
        project=project, user=teammate, model="sora-2", prompt="Rain", size="1280x720", seconds=4
    )
    send_now(generation)
    generation.refresh_from_db()
    assert generation.status == Status.IN_PROGRESS
    # With webhooks on, the next safety-net poll is minutes away in production (no wait in
    # tests), so drop the queued poll to see the webhook alone finish the job.
    get_queue().empty()
    body, headers = signed(completed(generation.provider_job_id or ""))
    assert post(client, channel, body, headers).status_code == 200
    run_workers(lambda: Generation.objects.get(pk=generation.pk).is_terminal)
    assert Generation.objects.get(pk=generation.pk).status == Status.COMPLETED


def signed_raw(body: bytes, *, msg_id: str = "msg_1") -> dict[str, str]:
    when = datetime.now(tz=UTC)
    # standardwebhooks signs text; sign the bytes exactly as sent (latin-1 keeps them 1:1).
    signature = Webhook(SECRET).sign(msg_id, when, body.decode("latin-1"))
    return {
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(int(when.timestamp())),
        "HTTP_WEBHOOK_SIGNATURE": signature,
    }


def test_a_signed_body_that_is_not_json_is_refused_plainly(client, channel, webhook_secret) -> None:  # type: ignore[no-untyped-def]
    client.raise_request_exception = False
    body = b"this is not json"
    answer = post(client, channel, body, signed_raw(body))
    assert answer.status_code == 400
    assert answer.json() == {"error": "The body is not JSON."}
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"\xff\xfe not text", None),  # not UTF-8, whoever signed it
        (b"{}", {"HTTP_WEBHOOK_SIGNATURE": "v1AAAA"}),  # no comma in the signature
        (b"{}", {"HTTP_WEBHOOK_SIGNATURE": "v1,A"}),  # not base64
    ],
    ids=["not utf-8", "signature without a version", "signature not base64"],
)
def test_malformed_deliveries_are_400_not_500(
    client, channel, webhook_secret, body, headers
) -> None:  # type: ignore[no-untyped-def]
    client.raise_request_exception = False
    answer = post(client, channel, body, {**signed_raw(body), **(headers or {})})
    assert answer.status_code == 400
    assert answer.json()["error"]
    assert not WebhookDelivery.objects.exists()


def test_a_webhook_id_longer_than_its_column_is_refused(client, channel, webhook_secret) -> None:  # type: ignore[no-untyped-def]
    client.raise_request_exception = False
    body, headers = signed(completed("video_abc"), msg_id="m" * 201)
    answer = post(client, channel, body, headers)
    assert answer.status_code == 400
    assert "webhook-id" in answer.json()["error"]
    assert not WebhookDelivery.objects.exists()
    body, headers = signed(completed("video_abc"), msg_id="m" * 200)
    assert post(client, channel, body, headers).status_code == 200


def test_nul_bytes_in_a_signed_event_are_not_a_500(client, channel, webhook_secret) -> None:  # type: ignore[no-untyped-def]
    # PostgreSQL refuses NUL in text columns; the provider's event type and job id are stored.
    client.raise_request_exception = False
    event = {"type": "video.completed\u0000", "data": {"id": "video_\u0000abc"}}
    body, headers = signed(event)
    answer = post(client, channel, body, headers)
    assert answer.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert "\x00" not in delivery.event_type + delivery.provider_job_id


@pytest.mark.parametrize("secret", ["whsec_not*base64", "whsec_"])
def test_a_misconfigured_secret_is_503_and_logged(client, channel, monkeypatch, caplog, secret) -> None:  # type: ignore[no-untyped-def]
    client.raise_request_exception = False
    monkeypatch.setenv(channel.webhook_secret_env, secret)
    body, headers = signed(completed("video_abc"))
    answer = post(client, channel, body, headers)
    assert answer.status_code == 503
    assert "OPENAI_WEBHOOK_SECRET is not a valid whsec_ secret" in caplog.text
