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
from workspace.generations.services import generation_submit
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
    for when in (now - timedelta(seconds=301), now + timedelta(seconds=301)):
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
