"""Outgoing webhooks: set on the tokens page, signed the Standard Webhooks way, delivered by real
RQ workers to a real local HTTP receiver, retried, logged, and never sent twice.

Signatures are checked with the ``standardwebhooks`` package, as a member's receiver would.
Nothing sleeps: each test waits for the receiver's requests or for the workers to finish.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from openai import OpenAI
from standardwebhooks import Webhook

from workspace.api import webhooks
from workspace.api.models import ApiToken, TokenVideo, WebhookAttempt, WebhookEvent
from workspace.api.webhooks import (
    on_generation_finished,
    token_webhook_set,
    webhook_deliver,
    webhook_events_resume,
    webhook_url_check,
)
from workspace.core.models import AuditEvent
from workspace.core.rq import get_queue
from workspace.generations.models import Generation, Status
from workspace.generations.submission import generation_cancel, generation_submit

pytestmark = pytest.mark.django_db(transaction=True)

CREATE = {"model": "sora-2", "prompt": "A lighthouse in fog", "size": "1280x720", "seconds": "4"}


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local HTTP server answering each POST with the next planned status (200 once the plan
    runs out); "hang" holds the answer until the test ends, so the sender times out."""

    url: str
    requests: queue.Queue[Received] = field(default_factory=queue.Queue)
    plan: list[int | str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    count: int = 0

    def next(self, timeout: float = 30) -> Received:
        return self.requests.get(timeout=timeout)


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:  # type: ignore[no-untyped-def]
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hook = state["receiver"]
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            hook.count += 1
            answer = hook.plan.pop(0) if hook.plan else 200
            hook.requests.put(Received({k.lower(): v for k, v in self.headers.items()}, body))
            if answer == "hang":
                hook.release.wait(30)
                return
            self.send_response(int(answer))
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_port}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # The operator's allowance the local receiver needs; everything private is refused without.
    settings.REELHOUSE_WEBHOOK_PRIVATE_HOSTS = "127.0.0.1"
    yield state["receiver"]
    state["receiver"].release.set()
    server.shutdown()
    server.server_close()


@dataclass
class Hooked:
    token: ApiToken
    api_key: str
    signing_secret: str


def hooked_token(user, project, url: str) -> Hooked:  # type: ignore[no-untyped-def]
    from workspace.api.services import token_create

    issued = token_create(owner=user, name="hooked", project=project, can_write=True, expires_at=None)
    secret = token_webhook_set(token=issued.token, actor=user, url=url, new_secret=False)
    assert secret is not None and secret.startswith("whsec_")
    return Hooked(issued.token, issued.secret, secret)


def verified(secret: str, request: Received) -> dict[str, Any]:
    """The payload, once the standardwebhooks package accepts its signature."""
    return Webhook(secret).verify(request.body.decode(), request.headers)


def delivered(event: WebhookEvent) -> Callable[[], bool]:
    return lambda: WebhookEvent.objects.get(pk=event.pk).state == WebhookEvent.State.DELIVERED


def make_event(token: ApiToken, project, user, status: str = Status.FAILED) -> WebhookEvent:  # type: ignore[no-untyped-def]
    generation = generation_submit(
        project=project, user=user, channel=project_channel(), model="sora-2",
        prompt="A lighthouse", size="1280x720", seconds=4,
    )
    TokenVideo.objects.create(generation=generation, token=token)
    generation_cancel(generation=generation, user=user)
    return WebhookEvent.objects.get(video_id=generation.pk)


def project_channel():  # type: ignore[no-untyped-def]
    from workspace.providers.services import channel_get_default

    return channel_get_default()


# --- Where webhooks may go -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/hook",
        "https://0.0.0.0/hook",
    ],
)
def test_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match=r"private address|https"):
        webhook_url_check(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/hook", "https://"),
        ("https://user:pass@93.184.215.14/hook", "credentials"),
        ("http://93.184.215.14/hook", "Use https"),
        ("https://[not-an-address/hook", "valid URL"),
        ("https:///hook", "https://"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        webhook_url_check(url)


def test_a_public_address_is_accepted_and_the_operator_can_allow_a_private_host(settings) -> None:  # type: ignore[no-untyped-def]
    assert webhook_url_check(" https://93.184.215.14/hook ") == "https://93.184.215.14/hook"
    with pytest.raises(ValidationError):
        webhook_url_check("http://10.1.2.3:8080/hook")
    settings.REELHOUSE_WEBHOOK_PRIVATE_HOSTS = "10.0.0.0/8"
    assert webhook_url_check("http://10.1.2.3:8080/hook") == "http://10.1.2.3:8080/hook"


# --- The tokens page -----------------------------------------------------------------------


def test_the_owner_sets_a_webhook_and_sees_its_secret_once(
    client, signed_in, teammate, outsider, project, issue
) -> None:  # type: ignore[no-untyped-def]
    issue(teammate, project)
    token = ApiToken.objects.get()
    signed_in(teammate)
    url = f"/api-tokens/{token.pk}/webhook/"

    refused = client.post(url, {f"hook{token.pk}-url": "https://10.0.0.7/hook"})
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "private address" in page and 'value="https://10.0.0.7/hook"' in page  # input kept
    token.refresh_from_db()
    assert token.webhook_url == ""

    answer = client.post(url, {f"hook{token.pk}-url": "https://93.184.215.14/hook"})
    assert answer.status_code == 200
    shown = answer.context["webhook_secret"][1]
    assert shown.startswith("whsec_") and shown in answer.content.decode()
    token.refresh_from_db()
    assert token.webhook_url == "https://93.184.215.14/hook"
    assert shown not in token.webhook_secret_encrypted  # stored encrypted
    assert shown not in client.get("/api-tokens/").content.decode()  # never again
    assert AuditEvent.objects.filter(changes__webhook_url__1="https://93.184.215.14/hook").exists()

    # Changing the URL keeps the secret; asking for a new one replaces it.
    moved = client.post(url, {f"hook{token.pk}-url": "https://93.184.215.15/hook"})
    assert moved.status_code == 302
    rotated = client.post(
        url, {f"hook{token.pk}-url": "https://93.184.215.15/hook", f"hook{token.pk}-new_secret": "on"}
    )
    assert rotated.context["webhook_secret"][1] not in (shown, None)
    # Emptying the URL stops the webhooks.
    assert client.post(url, {f"hook{token.pk}-url": ""}).status_code == 302
    token.refresh_from_db()
    assert token.webhook_url == ""

    signed_in(outsider)
    assert client.post(url, {f"hook{token.pk}-url": "https://93.184.215.14/hook"}).status_code == 404


# --- Deliveries -----------------------------------------------------------------------------


def test_a_finished_video_is_delivered_signed_to_the_tokens_receiver(
    api, teammate, project, simulator, run_workers, receiver, client, signed_in
) -> None:  # type: ignore[no-untyped-def]
    hooked = hooked_token(teammate, project, receiver.url)
    hook_secret = hooked.signing_secret
    created = api(hooked.api_key).post("/videos", CREATE)
    assert created.status_code == 200, created.content
    video_id = created.json()["id"]

    run_workers(lambda: WebhookEvent.objects.filter(state="delivered").exists())
    request = receiver.next()
    payload = verified(hook_secret, request)
    event = WebhookEvent.objects.get()
    assert payload == {
        "id": event.event_id,
        "object": "event",
        "type": "video.completed",
        "created_at": int(event.created_at.timestamp()),
        "data": {"id": video_id},
    }
    assert request.headers["webhook-id"] == event.event_id
    assert Generation.objects.get(pk=video_id).status == Status.COMPLETED
    # The openai SDK's own check of OpenAI's webhooks accepts it too, and parses the event.
    unwrapped = OpenAI(api_key="unused").webhooks.unwrap(
        request.body, request.headers, secret=hook_secret
    )
    assert (unwrapped.type, unwrapped.data.id) == ("video.completed", video_id)
    # A wrong secret does not verify: the signature is really checked.
    with pytest.raises(Exception, match="No matching signature"):
        Webhook("whsec_" + "A" * 43 + "=").verify(request.body.decode(), request.headers)

    signed_in(teammate)
    page = client.get("/api-tokens/").content.decode()
    assert "video.completed" in page and video_id in page and "HTTP 200" in page


def test_a_failed_or_canceled_video_sends_video_failed(
    teammate, project, receiver, run_workers
) -> None:  # type: ignore[no-untyped-def]
    hooked = hooked_token(teammate, project, receiver.url)
    token, secret = hooked.token, hooked.signing_secret
    event = make_event(token, project, teammate)
    assert event.event_type == "video.failed"
    run_workers(delivered(event))
    assert verified(secret, receiver.next())["type"] == "video.failed"


def test_only_videos_made_by_a_hooked_token_have_events_and_each_end_one(
    teammate, project, receiver, issue
) -> None:  # type: ignore[no-untyped-def]
    channel = project_channel()
    plain = generation_submit(
        project=project, user=teammate, channel=channel, model="sora-2", prompt="Web form",
        size="1280x720", seconds=4,
    )
    generation_cancel(generation=plain, user=teammate)
    issue(teammate, project)  # a token without a webhook
    unhooked = ApiToken.objects.get()
    other = generation_submit(
        project=project, user=teammate, channel=channel, model="sora-2", prompt="No hook",
        size="1280x720", seconds=4,
    )
    TokenVideo.objects.create(generation=other, token=unhooked)
    generation_cancel(generation=other, user=teammate)
    assert not WebhookEvent.objects.exists()

    token = hooked_token(teammate, project, receiver.url).token
    event = make_event(token, project, teammate)
    # The same end reported again (a duplicated signal) records nothing new.
    on_generation_finished(Generation, generation=Generation.objects.get(pk=event.video_id))
    assert WebhookEvent.objects.count() == 1


def test_failures_are_retried_with_the_same_webhook_id_until_the_receiver_takes_it(
    teammate, project, receiver, run_workers
) -> None:  # type: ignore[no-untyped-def]
    hooked = hooked_token(teammate, project, receiver.url)
    token, secret = hooked.token, hooked.signing_secret
    receiver.plan = [500, 503, 302]
    event = make_event(token, project, teammate)
    run_workers(delivered(event))

    requests = [receiver.next() for _ in range(4)]
    assert {r.headers["webhook-id"] for r in requests} == {event.event_id}
    assert len({r.body for r in requests}) == 1  # the same event every time
    for request in requests:
        verified(secret, request)  # each attempt signed afresh, each valid
    log = list(WebhookAttempt.objects.filter(event=event).values_list("number", "status_code"))
    assert log == [(1, 500), (2, 503), (3, 302), (4, 200)]
    errors = list(WebhookAttempt.objects.filter(event=event).values_list("error", flat=True))
    assert "answered 500" in errors[0] and "Redirects" in errors[2] and errors[3] == ""


def test_a_receiver_that_does_not_answer_in_time_is_tried_again(
    teammate, project, receiver, run_workers, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.REELHOUSE_WEBHOOK_TIMEOUT = 0.3
    token = hooked_token(teammate, project, receiver.url).token
    receiver.plan = ["hang"]
    event = make_event(token, project, teammate)
    run_workers(delivered(event))
    first, second = WebhookAttempt.objects.filter(event=event)
    assert first.status_code is None and "No answer in time" in first.error
    assert second.status_code == 200


def test_delivery_gives_up_after_the_last_attempt(
    teammate, project, receiver, run_workers, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(webhooks, "MAX_ATTEMPTS", 3)
    token = hooked_token(teammate, project, receiver.url).token
    receiver.plan = [500] * 10
    event = make_event(token, project, teammate)
    with pytest.raises(AssertionError, match="ran out of work"):
        run_workers(delivered(event))
    event.refresh_from_db()
    assert (event.state, event.attempts, receiver.count) == ("failed", 3, 3)


def test_a_duplicate_job_sends_nothing_twice(teammate, project, receiver) -> None:  # type: ignore[no-untyped-def]
    token = hooked_token(teammate, project, receiver.url).token
    receiver.plan = ["hang", 200]
    event = make_event(token, project, teammate)
    get_queue().empty()  # this test runs the jobs itself

    # One job is sending (its receiver holds the answer); a duplicate meanwhile does nothing.
    sender = threading.Thread(target=webhook_deliver, kwargs={"event_id": event.pk})
    sender.start()
    receiver.next()
    webhook_deliver(event_id=event.pk)
    assert receiver.count == 1
    receiver.release.set()
    sender.join()
    event.refresh_from_db()
    assert event.state == "pending"  # the held attempt got no answer, so a retry is due

    webhook_deliver(event_id=event.pk)
    event.refresh_from_db()
    assert (event.state, receiver.count) == ("delivered", 2)
    # Delivered: duplicates of its job, and the recovery sweep, send nothing more.
    webhook_deliver(event_id=event.pk)
    webhook_deliver(event_id=event.pk)
    assert webhook_events_resume(stale_after=webhooks.timedelta(0)) == 0
    assert receiver.count == 2


def test_a_revoked_token_or_a_private_address_ends_delivery_without_sending(
    teammate, project, receiver, settings
) -> None:  # type: ignore[no-untyped-def]
    from workspace.api.services import token_revoke

    token = hooked_token(teammate, project, receiver.url).token
    event = make_event(token, project, teammate)
    get_queue().empty()
    settings.REELHOUSE_WEBHOOK_PRIVATE_HOSTS = ""  # the operator withdrew the allowance
    webhook_deliver(event_id=event.pk)
    event.refresh_from_db()
    assert event.state == "failed" and receiver.count == 0
    assert "private address" in WebhookAttempt.objects.get(event=event).error

    settings.REELHOUSE_WEBHOOK_PRIVATE_HOSTS = "127.0.0.1"
    second = make_event(token, project, teammate)
    get_queue().empty()
    token_revoke(token=token, actor=teammate)
    webhook_deliver(event_id=second.pk)
    second.refresh_from_db()
    assert second.state == "failed" and receiver.count == 0


def test_the_recovery_sweep_re_enqueues_a_lost_delivery(teammate, project, receiver) -> None:  # type: ignore[no-untyped-def]
    token = hooked_token(teammate, project, receiver.url).token
    event = make_event(token, project, teammate)
    get_queue().empty()  # Redis lost the job
    assert webhook_events_resume(stale_after=webhooks.timedelta(0)) == 1
    job = get_queue().jobs[0]
    assert job.func_name.endswith("webhook_deliver_job") and job.args == (event.pk,)
    job.perform()
    assert json.loads(receiver.next().body)["id"] == event.event_id


def test_redis_down_when_a_video_ends_breaks_nothing_and_the_sweep_catches_up(
    teammate, project, receiver, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import redis

    from workspace.core import rq

    token = hooked_token(teammate, project, receiver.url).token

    def down(name: str = "default") -> None:
        raise redis.ConnectionError("Redis is down")

    # Every enqueue fails (this module's get_queue is the real one, imported before).
    monkeypatch.setattr(rq, "get_queue", down)
    event = make_event(token, project, teammate)  # the cancel itself succeeds
    assert Generation.objects.get(pk=event.video_id).status == Status.CANCELED
    assert not get_queue().jobs
    monkeypatch.undo()
    assert webhook_events_resume(stale_after=webhooks.timedelta(0)) == 1
    get_queue().jobs[0].perform()
    assert json.loads(receiver.next().body)["id"] == event.event_id

