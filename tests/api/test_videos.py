"""/v1/videos through Django's client: the contract, scopes, errors and allowances.

The openai SDK's view of the same API is tests/api/test_openai_sdk.py, over real HTTP.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.utils import timezone
from openapi_schema_validator import OAS31Validator

from tests.billing.conftest import budget
from workspace.api.models import ApiToken
from workspace.billing.models import Scope
from workspace.billing.periods import Period
from workspace.generations.models import Generation, Status
from workspace.generations.submission import generation_submit
from workspace.projects.services import project_create

pytestmark = pytest.mark.django_db

REFERENCE = (
    Path(__file__).resolve().parents[2] / "workspace/providers/specs/openai-videos-openapi.yaml"
)
SPEC = yaml.safe_load(REFERENCE.read_text())


def valid(name: str, instance: object) -> None:
    schema = {**SPEC["components"]["schemas"][name], "components": SPEC["components"]}
    OAS31Validator(schema).validate(instance)


def envelope(answer, status: int, param: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert answer.status_code == status, answer.content
    body = answer.json()
    valid("ErrorResponse", body)
    assert body["error"]["param"] == param
    return body["error"]


CREATE = {"model": "sora-2", "prompt": "A lighthouse in fog", "size": "1280x720", "seconds": "4"}


def test_create_retrieve_list_and_the_gallery_agree(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    client = api(issue(teammate, project))
    created = client.post("/videos", CREATE)
    assert created.status_code == 200, created.content
    video = created.json()
    valid("VideoResource", video)
    generation = Generation.objects.get()
    assert video["id"] == str(generation.pk) and video["status"] == "queued"
    assert (generation.project, generation.created_by) == (project, teammate)
    assert video["seconds"] == "4" and video["model"] == "sora-2"
    got = client.get(f"/videos/{video['id']}")
    assert got.json() == video and got["openai-poll-after-ms"]
    listed = client.get("/videos").json()
    valid("VideoListResource", listed)
    assert [v["id"] for v in listed["data"]] == [video["id"]]


def test_multipart_create_and_defaults(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    client = api(issue(teammate, project))
    answer = client.client.post(
        "/v1/videos", {"prompt": "Rain on a window"}, headers=client.headers
    )
    assert answer.status_code == 200, answer.content
    generation = Generation.objects.get()
    assert generation.model == "sora-2" and generation.seconds == 4


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "sora-2"}, "prompt"),
        ({**CREATE, "prompt": ""}, "prompt"),
        ({**CREATE, "prompt": 12}, "prompt"),
        ({**CREATE, "prompt": "a\x00b"}, "prompt"),
        ({**CREATE, "prompt": "\ud800"}, "prompt"),
        ({**CREATE, "model": "sora-2\x00"}, "model"),
        ({**CREATE, "seconds": "five"}, "seconds"),
        ({**CREATE, "seconds": "²"}, "seconds"),
        ({**CREATE, "seconds": True}, "seconds"),
        ({**CREATE, "seconds": "7"}, "seconds"),
        ({**CREATE, "size": "1x1"}, "size"),
        ({**CREATE, "model": "no-such-model"}, "model"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(api, issue, teammate, project, body, param) -> None:  # type: ignore[no-untyped-def]
    envelope(api(issue(teammate, project)).post("/videos", body), 400, param)
    assert not Generation.objects.exists()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        (b"x", "text/plain"),
    ],
)
def test_unreadable_bodies_are_400s(api, issue, teammate, project, body, content_type) -> None:  # type: ignore[no-untyped-def]
    client = api(issue(teammate, project))
    answer = client.client.generic("POST", "/v1/videos", body, content_type, headers=client.headers)
    envelope(answer, 400)


def test_missing_wrong_revoked_and_expired_keys_are_401s(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    secret = issue(teammate, project)
    assert "provide an API key" in envelope(api(None).get("/videos"), 401)["message"]
    assert "Incorrect" in envelope(api(secret + "x").get("/videos"), 401)["message"]
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert "expired" in envelope(api(secret).get("/videos"), 401)["message"]
    ApiToken.objects.update(expires_at=None, revoked_at=timezone.now())
    assert "revoked" in envelope(api(secret).post("/videos", CREATE), 401)["message"]
    assert not Generation.objects.exists()


def test_a_session_never_authenticates_the_api(signed_in, teammate, project) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(teammate)
    assert client.get("/v1/videos").status_code == 401
    assert client.post("/v1/videos", CREATE, content_type="application/json").status_code == 401
    assert not Generation.objects.exists()


def test_a_read_only_token_reads_but_cannot_create_or_delete(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    done = _completed(project, teammate)
    client = api(issue(teammate, project, write=False))
    assert client.get(f"/videos/{done.pk}").status_code == 200
    envelope(client.post("/videos", CREATE), 403)
    envelope(client.delete(f"/videos/{done.pk}"), 403)
    assert Generation.objects.count() == 1


def _completed(project, user, prompt: str = "Done") -> Generation:  # type: ignore[no-untyped-def]
    generation = generation_submit(
        project=project, user=user, model="sora-2", prompt=prompt, size="1280x720", seconds=4
    )
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.COMPLETED, progress=100, completed_at=timezone.now()
    )
    generation.refresh_from_db()
    return generation


def test_a_token_sees_only_its_scope(api, issue, owner, teammate, outsider, project) -> None:  # type: ignore[no-untyped-def]
    other = project_create(name="Side project", owner=teammate)
    here, there = _completed(project, teammate), _completed(other, teammate)
    scoped = api(issue(teammate, project))
    assert [v["id"] for v in scoped.get("/videos").json()["data"]] == [str(here.pk)]
    envelope(scoped.get(f"/videos/{there.pk}"), 404, "video_id")
    envelope(scoped.get(f"/videos/{there.pk}/content"), 404, "video_id")
    envelope(scoped.delete(f"/videos/{there.pk}"), 404, "video_id")
    envelope(scoped.get("/videos", **{"OpenAI-Project": str(other.pk)}), 400, "OpenAI-Project")
    # A token for all projects sees both, or one through the header.
    everywhere = api(issue(teammate))
    assert len(everywhere.get("/videos").json()["data"]) == 2
    only_other = everywhere.get("/videos", **{"OpenAI-Project": str(other.pk)}).json()
    assert [v["id"] for v in only_other["data"]] == [str(there.pk)]
    # Two writable projects: a create must name one.
    envelope(everywhere.post("/videos", CREATE), 400, "OpenAI-Project")
    made = everywhere.post("/videos", CREATE, **{"OpenAI-Project": str(other.pk)})
    assert Generation.objects.get(pk=made.json()["id"]).project == other
    # The owner of the first project sees its videos, never the side project's.
    owners = api(issue(owner))
    assert str(there.pk) not in str(owners.get("/videos").json())
    envelope(owners.get("/videos", **{"OpenAI-Project": str(other.pk)}), 400, "OpenAI-Project")
    for nonsense in ("9" * 30, "-1", "0", "proj_abc", "1\u00e9"):
        envelope(owners.get("/videos", **{"OpenAI-Project": nonsense}), 400, "OpenAI-Project")
    # An outsider cannot tell any of them exist.
    stranger = api(issue(outsider))
    assert stranger.get("/videos").json()["data"] == []
    for video_id in (here.pk, there.pk, "not-a-uuid"):
        envelope(stranger.get(f"/videos/{video_id}"), 404, "video_id")


def test_pagination_after_limit_order(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    made = [_completed(project, teammate, prompt=f"shot {i}") for i in range(5)]
    base = timezone.now()
    for i, generation in enumerate(made):
        Generation.objects.filter(pk=generation.pk).update(created_at=base + timedelta(seconds=i))
    client = api(issue(teammate, project))
    oldest_first = [str(g.pk) for g in made]
    seen, after = [], None
    while True:
        query = {"limit": 2, "order": "asc", **({"after": after} if after else {})}
        page = client.get("/videos", query).json()
        valid("VideoListResource", page)
        seen += [v["id"] for v in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == oldest_first
    newest = client.get("/videos", {"limit": 3}).json()
    assert [v["id"] for v in newest["data"]] == oldest_first[::-1][:3] and newest["has_more"]
    assert client.get("/videos", {"limit": 0}).json()["data"] == []
    for query, param in (
        ({"limit": 101}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"order": "up"}, "order"),
        ({"after": "nope"}, "after"),
    ):
        envelope(client.get("/videos", query), 400, param)


def test_content_variants_and_delete(api, issue, teammate, project, settings, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    from django.core.files.base import ContentFile

    done = _completed(project, teammate)
    for variant, name in (("video", "v.mp4"), ("thumbnail", "t.jpg"), ("spritesheet", "s.jpg")):
        getattr(done, variant).save(name, ContentFile(b"bytes of " + variant.encode()), save=False)
    done.save()
    client = api(issue(teammate, project))
    for variant, kind in (("video", "video/mp4"), ("thumbnail", "image/jpeg"), ("spritesheet", "image/jpeg")):
        answer = client.get(f"/videos/{done.pk}/content", {"variant": variant})
        assert answer.status_code == 200 and answer["Content-Type"] == kind
        assert b"".join(answer.streaming_content) == b"bytes of " + variant.encode()
        assert answer["X-Content-Type-Options"] == "nosniff"
        assert answer["Content-Security-Policy"].startswith("sandbox")
    envelope(client.get(f"/videos/{done.pk}/content", {"variant": "poster"}), 400, "variant")
    queued = generation_submit(
        project=project, user=teammate, model="sora-2", prompt="x", size="1280x720", seconds=4
    )
    envelope(client.get(f"/videos/{queued.pk}/content"), 404, "variant")
    envelope(client.delete(f"/videos/{queued.pk}"), 400, "video_id")
    stored = Path(settings.STORAGES["default"]["OPTIONS"]["location"]) / done.video.name
    assert stored.exists()
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.delete(f"/videos/{done.pk}")
    assert answer.status_code == 200
    valid("DeletedVideoResource", answer.json())
    assert answer.json() == {"id": str(done.pk), "object": "video.deleted", "deleted": True}
    assert not Generation.objects.filter(pk=done.pk).exists()
    assert not stored.exists(), "the stored files go with it"
    envelope(client.get(f"/videos/{done.pk}"), 404, "video_id")


def test_only_the_author_or_a_project_owner_deletes(api, issue, owner, teammate, viewer, project) -> None:  # type: ignore[no-untyped-def]
    done = _completed(project, owner)
    envelope(api(issue(viewer, project)).delete(f"/videos/{done.pk}"), 403)
    envelope(api(issue(teammate, project)).delete(f"/videos/{done.pk}"), 403)
    assert api(issue(owner, project)).delete(f"/videos/{done.pk}").status_code == 200


def test_a_viewer_cannot_create(api, issue, viewer, project) -> None:  # type: ignore[no-untyped-def]
    envelope(api(issue(viewer, project)).post("/videos", CREATE), 403)


def test_characters_and_unknown_urls_say_not_available(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    client = api(issue(teammate, project))
    envelope(client.post("/videos/characters", {"prompt": "x"}), 404)
    envelope(client.get("/nothing/here"), 404)
    envelope(client.client.put("/v1/videos", headers=client.headers), 405)


def test_a_refusing_budget_is_a_429_naming_it_with_retry_after(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    budget(Scope.MEMBER, user=teammate, cents=50, period=Period.MONTH)  # one 4 s sora-2 ($0.40)
    client = api(issue(teammate, project))
    first = client.post("/videos", CREATE)
    assert first.status_code == 200
    assert first["x-ratelimit-limit-cents"] == "50"
    assert first["x-ratelimit-remaining-cents"] == "10"
    assert int(first["x-ratelimit-reset-cents"].rstrip("s")) > 0
    refused = client.post("/videos", CREATE)
    error = envelope(refused, 429)
    assert error["code"] == "budget_exceeded" and "budget" in error["message"].lower()
    assert "resets" in error["message"]
    reset = timezone.now() + timedelta(seconds=int(refused["Retry-After"]))
    assert timezone.now() < reset <= timezone.now() + timedelta(days=32)
    assert Generation.objects.count() == 1


def test_a_budget_that_never_resets_gives_no_retry_after(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    budget(Scope.MEMBER, user=teammate, cents=0, period=Period.NONE)
    refused = api(issue(teammate, project)).post("/videos", CREATE)
    assert "never resets" in envelope(refused, 429)["message"]
    assert "Retry-After" not in refused


def test_a_full_queue_is_a_429(api, issue, teammate, project, channel) -> None:  # type: ignore[no-untyped-def]
    channel.member_max_queued = 1
    channel.save()
    client = api(issue(teammate, project))
    first = client.post("/videos", CREATE)
    assert first["x-ratelimit-remaining-queued"] == "0"
    refused = client.post("/videos", CREATE)
    assert envelope(refused, 429)["code"] == "queue_full" and int(refused["Retry-After"]) > 0
    assert Generation.objects.count() == 1


def test_content_of_a_video_whose_files_retention_removed_is_410(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    done = _completed(project, teammate)
    Generation.objects.filter(pk=done.pk).update(
        files_removed_at=timezone.now(), files_removed_reason="older than 30 days"
    )
    client = api(issue(teammate, project))
    for variant in ("video", "thumbnail"):
        error = envelope(client.get(f"/videos/{done.pk}/content", {"variant": variant}), 410, "variant")
        assert error["code"] == "content_removed" and "retention policy" in error["message"]
    assert client.get(f"/videos/{done.pk}").status_code == 200  # the record itself stays
