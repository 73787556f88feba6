"""The unmodified official openai SDK against a live Reelhouse: a video script with a new base URL
and key runs through the member's budgets, the fair queue, the workers and the gallery.

Real HTTP (live_server), real forking RQ workers, real Redis, the provider simulator, and the
configured database (PostgreSQL for the race at the end).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx2
import openai
import pytest
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connection
from django.db.models import Sum
from django.test.testcases import LiveServerThread, _StaticFilesHandler
from django.utils import timezone
from openai import OpenAI

from tests.billing.conftest import budget
from workspace.api.models import ApiToken
from workspace.billing.models import BudgetCounter, Scope
from workspace.generations.models import Generation, Status

pytestmark = pytest.mark.django_db(transaction=True)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(autouse=True)
def _no_request_rate(settings) -> None:  # type: ignore[no-untyped-def]
    # create_and_poll below polls every 20 ms while forking workers run, which a loaded machine
    # can stretch past the default burst; the rate limit has tests of its own (test_rate_limit).
    settings.REELHOUSE_API_REQUESTS_PER_MINUTE = 0


def sdk(live_server: Any, secret: str, **options: Any) -> OpenAI:
    # No retries: a test must see the first answer (the SDK retries 429s and 5xx by default).
    return OpenAI(base_url=f"{live_server.url}/v1", api_key=secret, max_retries=0, **options)


def test_a_video_script_runs_unchanged_through_reelhouse(
    live_server, issue, teammate, project, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    client = sdk(live_server, issue(teammate, project))

    first = client.videos.create(
        model="sora-2", prompt="A paper boat on a rainy street", size="1280x720", seconds="4"
    )
    assert isinstance(first, openai.types.Video) and first.status == "queued"
    generation = Generation.objects.get(pk=first.id)
    assert (generation.project, generation.created_by) == (project, teammate)

    run_workers(lambda: Generation.objects.get(pk=first.id).is_terminal)
    done = client.videos.retrieve(first.id)
    assert (done.status, done.progress, done.seconds, done.size) == (
        "completed", 100, "4", "1280x720"
    )
    assert done.completed_at and done.error is None

    # create_and_poll blocks while it polls: it runs in a thread, the workers here, and the
    # workers start once the SDK's create has been answered.
    created = threading.Event()
    watcher = httpx2.Client(
        event_hooks={"response": [lambda r: created.set() if r.request.method == "POST" else None]}
    )
    polling = sdk(live_server, client.api_key, http_client=watcher)
    outcome: dict[str, Any] = {}

    def create_and_poll() -> None:
        try:
            outcome["video"] = polling.videos.create_and_poll(
                prompt="Fog rolling over a harbour", poll_interval_ms=20
            )
        except BaseException as error:  # reported by the assertion below
            outcome["error"] = error
            created.set()

    poller = threading.Thread(target=create_and_poll)
    poller.start()
    assert created.wait(timeout=30)
    assert "error" not in outcome, outcome
    run_workers(lambda: all(g.is_terminal for g in Generation.objects.all()))
    poller.join(timeout=30)
    assert not poller.is_alive() and "error" not in outcome, outcome
    second = outcome["video"]
    assert second.status == "completed" and second.id != first.id

    # Every variant downloads, with the types the app serves.
    movie = client.videos.download_content(first.id)
    assert movie.response.headers["content-type"] == "video/mp4" and movie.content[4:8] == b"ftyp"
    for variant in ("thumbnail", "spritesheet"):
        image = client.videos.download_content(first.id, variant=variant)
        assert image.response.headers["content-type"] == "image/jpeg"
        assert image.content[:2] == b"\xff\xd8"
        assert image.response.headers["x-content-type-options"] == "nosniff"

    # Auto-pagination: one video per page, every video once, newest first.
    assert [v.id for v in client.videos.list(limit=1)] == [second.id, first.id]
    assert [v.id for v in client.videos.list(order="asc")] == [first.id, second.id]

    deleted = client.videos.delete(first.id)
    assert deleted.deleted and deleted.id == first.id and deleted.object == "video.deleted"
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(first.id)
    # The other one is in the project's gallery, like any video made on the web.
    assert list(Generation.objects.filter(project=project).values_list("pk", flat=True)) == [
        uuid.UUID(second.id)
    ]


def test_the_sdks_own_exceptions(live_server, issue, teammate, outsider, project) -> None:  # type: ignore[no-untyped-def]
    secret = issue(teammate, project)
    client = sdk(live_server, secret)
    video = client.videos.create(prompt="A kite over dunes", seconds="4", size="1280x720")

    # 401: a wrong, a revoked, an expired key.
    with pytest.raises(openai.AuthenticationError):
        sdk(live_server, secret[:-2] + "zz").videos.list()
    expired = issue(teammate, project, expires_at=timezone.now() + timedelta(hours=1))
    ApiToken.objects.filter(expires_at__isnull=False).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(openai.AuthenticationError, match="expired"):
        sdk(live_server, expired).videos.retrieve(video.id)

    # 404: a video that does not exist, and one the token may not see.
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(str(uuid.uuid4()))
    with pytest.raises(openai.NotFoundError):
        sdk(live_server, issue(outsider)).videos.download_content(video.id)

    # 400 naming the parameter, from JSON and from a multipart upload.
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(prompt="A kite", seconds="5")  # type: ignore[arg-type]
    assert bad.value.param == "seconds"
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(prompt="A kite", size="1x1")  # type: ignore[arg-type]
    assert bad.value.param == "size"
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(prompt="A kite", input_reference=("first.png", PNG, "image/png"))
    # A PNG signature and nothing else: judged by its content, not its name.
    assert bad.value.param == "input_reference" and "not an image" in bad.value.message
    with pytest.raises(openai.BadRequestError, match="finished") as bad:
        client.videos.remix(video.id, prompt="The same kite at night")  # still queued
    assert bad.value.param == "video_id"

    # 403: a read-only key.
    with pytest.raises(openai.PermissionDeniedError):
        sdk(live_server, issue(teammate, project, write=False)).videos.create(prompt="x")

    # 429: the member's budget is spent; Retry-After says when it resets.
    budget(Scope.MEMBER, user=teammate, cents=0)
    with pytest.raises(openai.RateLimitError) as limited:
        client.videos.create(prompt="One more kite")
    assert "budget" in limited.value.message and "resets" in limited.value.message
    assert int(limited.value.response.headers["retry-after"]) > 0

    # Revoked: 401 at once.
    ApiToken.objects.update(revoked_at=timezone.now())
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        client.videos.list()


CREATES = 50


class _WideBacklog(ThreadedWSGIServer):
    # Django's listen backlog is 10: the kernel would drop most of fifty simultaneous connects
    # before any request reached the app, and the race would never be run.
    request_queue_size = CREATES


class _RaceServer(LiveServerThread):
    server_class = _WideBacklog


@pytest.fixture
def race_server() -> Iterator[str]:
    """A live server (like pytest-django's) that accepts fifty connections at once."""
    server = _RaceServer("127.0.0.1", _StaticFilesHandler)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    yield f"http://127.0.0.1:{server.port}"
    server.terminate()


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: concurrent transactions on their own connections (DATABASE_URL)",
)
def test_fifty_concurrent_creates_at_the_budget_edge_overspend_by_nothing(
    race_server, issue, teammate, project
) -> None:  # type: ignore[no-untyped-def]
    # A 4-second sora-2 video costs $0.40; the budget leaves room for exactly 7 of them.
    limit = budget(Scope.MEMBER, user=teammate, cents=7 * 40 + 39)
    client = OpenAI(
        base_url=f"{race_server}/v1",
        api_key=issue(teammate, project),
        max_retries=0,
        timeout=60,
        # One connection per racer, all opened at once.
        http_client=httpx2.Client(limits=httpx2.Limits(max_connections=CREATES)),
    )
    start = threading.Barrier(CREATES)
    accepted: list[str] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            start.wait(timeout=30)
            video = client.videos.create(prompt="A race", size="1280x720", seconds="4")
            with lock:
                accepted.append(video.id)
        except openai.RateLimitError as refusal:
            with lock:
                refused.append(refusal.message)
        except BaseException as error:  # reported by the assertion below
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=one) for _ in range(CREATES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(accepted) == 7 and len(refused) == CREATES - 7
    assert Generation.objects.filter(status=Status.QUEUED).count() == 7
    reserved = BudgetCounter.objects.filter(budget=limit).aggregate(total=Sum("reserved_cents"))
    assert reserved["total"] == 7 * 40 <= limit.limit_cents


def test_remix_edit_extend_and_image_input_through_the_sdk(
    live_server, issue, teammate, project, simulator, run_workers, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from tests.api.test_creative import png
    from workspace.generations.models import GenerationInput, Operation

    client = sdk(live_server, issue(teammate, project))
    source = client.videos.create(model="sora-2", prompt="A kite", size="1280x720", seconds="4")
    run_workers(lambda: Generation.objects.get(pk=source.id).is_terminal)
    assert client.videos.retrieve(source.id).status == "completed"

    remix = client.videos.remix(source.id, prompt="A kite at night")
    assert remix.remixed_from_video_id == source.id and remix.status == "queued"
    # openai 3.51's (as 2.54's) typed edit() and extend() take a file only (they refuse {"id": ...} before
    # sending), so the JSON form OpenAI's document defines goes through the SDK's own post().
    edit = client.post(
        "/videos/edits",
        body={"prompt": "A red kite", "video": {"id": source.id}},
        cast_to=openai.types.Video,
    )
    extension = client.post(
        "/videos/extensions",
        body={"prompt": "The kite flies off", "seconds": "4", "video": {"id": source.id}},
        cast_to=openai.types.Video,
    )
    image = tmp_path / "square.png"
    image.write_bytes(png())
    with image.open("rb") as upload:
        framed = client.videos.create(
            prompt="The kite from this picture", size="1280x720", seconds="4", input_reference=upload
        )
    made = [remix.id, edit.id, extension.id, framed.id]
    run_workers(lambda: all(Generation.objects.get(pk=i).is_terminal for i in made))
    finished = {i: client.videos.retrieve(i) for i in made}
    assert {v.status for v in finished.values()} == {"completed"}, finished
    assert finished[remix.id].remixed_from_video_id == source.id
    assert finished[extension.id].seconds == "8"  # the stitched clip, not the 4 s added
    operations = {
        str(g.pk): (g.operation, g.parent_id) for g in Generation.objects.filter(pk__in=made)
    }
    assert operations == {
        remix.id: (Operation.REMIX, uuid.UUID(source.id)),
        edit.id: (Operation.EDIT, uuid.UUID(source.id)),
        extension.id: (Operation.EXTEND, uuid.UUID(source.id)),
        framed.id: (Operation.GENERATE, None),
    }
    reference = GenerationInput.objects.get(generation_id=framed.id)
    assert (reference.width, reference.height, reference.fit) == (1280, 720, "crop")
    assert client.videos.download_content(extension.id).content

    with pytest.raises(openai.NotFoundError):
        client.videos.remix(str(uuid.uuid4()), prompt="Nothing to remix")
    with pytest.raises(openai.BadRequestError) as refused:
        client.videos.edit(prompt="x", video=("clip.mp4", b"\x00" * 64, "video/mp4"))
    assert refused.value.param == "video"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as remote:
        client.post(
            "/videos",
            body={"prompt": "x", "input_reference": {"image_url": "https://example.com/k.png"}},
            cast_to=openai.types.Video,
        )
    assert remote.value.param == "input_reference.image_url"  # type: ignore[attr-defined]
