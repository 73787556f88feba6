"""Remix, edits, extensions and image input through /v1/videos, as OpenAI's contract has them:
each goes through generation_submit like the web forms, and every refusal is a 400 naming the
parameter (or a 404 for a video the key cannot see), never a 500."""

from __future__ import annotations

import base64
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from tests.api.test_videos import CREATE, envelope, valid
from workspace.generations.models import Generation, GenerationInput, Operation, Status
from workspace.generations.submission import generation_submit
from workspace.projects.services import project_create

pytestmark = pytest.mark.django_db


def png(width: int = 640, height: int = 640) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, format="PNG")
    return out.getvalue()


def _finished(project, user, **changes) -> Generation:  # type: ignore[no-untyped-def]
    """A completed video whose provider copy is still there (what a change is made from)."""
    generation = generation_submit(
        project=project, user=user, model="sora-2", prompt="Source", size="1280x720", seconds=4
    )
    Generation.objects.filter(pk=generation.pk).update(
        **{
            "status": Status.COMPLETED,
            "progress": 100,
            "completed_at": timezone.now(),
            "provider_job_id": f"video_{generation.pk.hex}",
            "provider_expires_at": timezone.now() + timedelta(hours=1),
            **changes,
        }
    )
    generation.refresh_from_db()
    return generation


def test_remix_json_and_multipart(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    source = _finished(project, teammate)
    client = api(issue(teammate, project))
    answer = client.post(f"/videos/{source.pk}/remix", {"prompt": "Now at night"})
    assert answer.status_code == 200, answer.content
    video = answer.json()
    valid("VideoResource", video)
    assert video["remixed_from_video_id"] == str(source.pk)
    assert (video["size"], video["seconds"], video["model"]) == ("1280x720", "4", "sora-2")
    remix = Generation.objects.get(pk=video["id"])
    assert (remix.operation, remix.parent, remix.prompt) == (
        Operation.REMIX, source, "Now at night"
    )
    multipart = client.client.post(
        f"/v1/videos/{source.pk}/remix", {"prompt": "In snow"}, headers=client.headers
    )
    assert multipart.status_code == 200, multipart.content
    assert multipart.json()["remixed_from_video_id"] == str(source.pk)
    # Other videos say they were not remixed.
    assert client.get(f"/videos/{source.pk}").json()["remixed_from_video_id"] is None


def test_a_source_that_cannot_be_changed_is_a_400_naming_it(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    client = api(issue(teammate, project))
    running = generation_submit(
        project=project, user=teammate, model="sora-2", prompt="x", size="1280x720", seconds=4
    )
    error = envelope(client.post(f"/videos/{running.pk}/remix", {"prompt": "y"}), 400, "video_id")
    assert "finished" in error["message"]
    expired = _finished(project, teammate, provider_expires_at=timezone.now() - timedelta(hours=1))
    error = envelope(client.post("/videos/edits", {"prompt": "y", "video": {"id": str(expired.pk)}}), 400, "video")
    assert "expired" in error["message"]
    envelope(client.post(f"/videos/{expired.pk}/remix", {}), 400, "prompt")
    assert Generation.objects.count() == 2


def test_another_members_or_projects_video_is_a_404(api, issue, teammate, outsider, project) -> None:  # type: ignore[no-untyped-def]
    source = _finished(project, teammate)
    other = project_create(name="Elsewhere", owner=teammate)
    elsewhere = _finished(other, teammate)
    stranger = api(issue(outsider))
    envelope(stranger.post(f"/videos/{source.pk}/remix", {"prompt": "x"}), 404, "video_id")
    scoped = api(issue(teammate, project))
    envelope(scoped.post(f"/videos/{elsewhere.pk}/remix", {"prompt": "x"}), 404, "video_id")
    body = {"prompt": "x", "video": {"id": str(elsewhere.pk)}, "seconds": "4"}
    envelope(scoped.post("/videos/edits", body), 404, "video")
    envelope(scoped.post("/videos/extensions", body), 404, "video")
    envelope(scoped.post("/videos/not-a-uuid/remix", {"prompt": "x"}), 404, "video_id")
    assert Generation.objects.count() == 2


def test_a_read_only_key_cannot_change_videos(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    source = _finished(project, teammate)
    envelope(api(issue(teammate, project, write=False)).post(f"/videos/{source.pk}/remix", {"prompt": "x"}), 403)
    assert Generation.objects.count() == 1


def test_edits_take_the_video_by_id_in_json_or_multipart(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    source = _finished(project, teammate)
    client = api(issue(teammate, project))
    json_edit = client.post("/videos/edits", {"prompt": "Red coat", "video": {"id": str(source.pk)}})
    assert json_edit.status_code == 200, json_edit.content
    form_edit = client.client.post(
        "/v1/videos/edits", {"prompt": "Blue coat", "video[id]": str(source.pk)}, headers=client.headers
    )
    assert form_edit.status_code == 200, form_edit.content
    edits = Generation.objects.filter(operation=Operation.EDIT, parent=source)
    assert sorted(e.prompt for e in edits) == ["Blue coat", "Red coat"]
    assert form_edit.json()["remixed_from_video_id"] is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "x"}, "video"),
        ({"prompt": "x", "video": 12}, "video"),
        ({"prompt": "x", "video": {}}, "video"),
        ({"prompt": "x", "video": {"id": 5}}, "video"),
        ({"video": {"id": "00000000-0000-0000-0000-000000000000"}}, "prompt"),
    ],
)
def test_a_bad_source_parameter_is_a_400(api, issue, teammate, project, body, param) -> None:  # type: ignore[no-untyped-def]
    envelope(api(issue(teammate, project)).post("/videos/edits", body), 400, param)


def test_an_uploaded_source_video_is_refused_naming_video(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    client = api(issue(teammate, project))
    for path in ("/v1/videos/edits", "/v1/videos/extensions"):
        answer = client.client.post(
            path,
            {"prompt": "x", "seconds": "4", "video": SimpleUploadedFile("clip.mp4", b"\x00" * 64)},
            headers=client.headers,
        )
        error = envelope(answer, 400, "video")
        assert "uploaded file is not supported" in error["message"]
    assert not Generation.objects.exists()


def test_extensions_add_seconds_and_report_the_stitched_length(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    source = _finished(project, teammate)
    client = api(issue(teammate, project))
    answer = client.post(
        "/videos/extensions", {"prompt": "Keep going", "video": {"id": str(source.pk)}, "seconds": "8"}
    )
    assert answer.status_code == 200, answer.content
    video = answer.json()
    valid("VideoResource", video)
    extension = Generation.objects.get(pk=video["id"])
    assert (extension.operation, extension.parent, extension.seconds) == (Operation.EXTEND, source, 8)
    assert video["seconds"] == "12"  # 4 s of the source and 8 s added: the whole clip
    error = envelope(
        client.post(
            "/videos/extensions", {"prompt": "x", "video": {"id": str(source.pk)}, "seconds": "7"}
        ),
        400,
        "seconds",
    )
    assert "not 7" in error["message"]
    envelope(client.post("/videos/extensions", {"prompt": "x", "video": {"id": str(source.pk)}}), 400, "seconds")
    assert Generation.objects.count() == 2


def test_extending_past_the_models_maximum_is_a_400_naming_seconds(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    from workspace.providers.services import channel_get_default

    sora = channel_get_default().catalog.get("sora-2")
    assert sora is not None
    long_source = _finished(project, teammate, seconds=sora.max_total_seconds)
    error = envelope(
        api(issue(teammate, project)).post(
            "/videos/extensions", {"prompt": "x", "video": {"id": str(long_source.pk)}, "seconds": "4"}
        ),
        400,
        "seconds",
    )
    assert f"{sora.max_total_seconds} seconds" in error["message"]


def test_an_uploaded_input_reference_is_checked_and_cropped_to_the_size(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    client = api(issue(teammate, project))
    answer = client.client.post(
        "/v1/videos",
        {**CREATE, "input_reference": SimpleUploadedFile("square.png", png(), "image/png")},
        headers=client.headers,
    )
    assert answer.status_code == 200, answer.content
    stored = GenerationInput.objects.get(generation_id=answer.json()["id"])
    assert (stored.role, stored.width, stored.height, stored.fit) == ("first_frame", 1280, 720, "crop")
    assert stored.original_name == "square.png"
    with Image.open(stored.image) as image:
        assert image.size == (1280, 720)


def test_a_data_url_input_reference_in_json_or_multipart(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    client = api(issue(teammate, project))
    url = "data:image/png;base64," + base64.b64encode(png(1280, 720)).decode()
    answer = client.post("/videos", {**CREATE, "input_reference": {"image_url": url}})
    assert answer.status_code == 200, answer.content
    form = client.client.post(
        "/v1/videos", {**CREATE, "input_reference[image_url]": url}, headers=client.headers
    )
    assert form.status_code == 200, form.content
    inputs = GenerationInput.objects.all()
    assert [(i.width, i.height, i.fit) for i in inputs] == [(1280, 720, "")] * 2


@pytest.mark.parametrize(
    ("reference", "param", "words"),
    [
        ({"image_url": "https://example.com/a.png"}, "input_reference.image_url", "does not fetch"),
        ({"image_url": "http://127.0.0.1/a.png"}, "input_reference.image_url", "does not fetch"),
        ({"file_id": "file-123"}, "input_reference.file_id", "no Files API"),
        ({}, "input_reference.image_url", "needs 'image_url'"),
        ({"image_url": "data:image/png;base64,@@@"}, "input_reference.image_url", "base64"),
        ({"image_url": "data:image/png;base64," + base64.b64encode(b"not an image").decode()},
         "input_reference.image_url", "image"),
        ({"image_url": "data:image/png;base64," + base64.b64encode(png(64, 64)).decode()},
         "input_reference.image_url", ""),
        ({"image_url": "data:image/png;base64," + base64.b64encode(png(4000, 200)).decode()},
         "input_reference", "wider"),
        ("a string", "input_reference", "image file"),
    ],
)
def test_a_bad_input_reference_is_a_400_naming_it(api, issue, teammate, project, reference, param, words) -> None:  # type: ignore[no-untyped-def]
    error = envelope(
        api(issue(teammate, project)).post("/videos", {**CREATE, "input_reference": reference}), 400, param
    )
    assert words in error["message"]
    assert not Generation.objects.exists()


def test_a_bad_uploaded_input_reference_is_refused(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    client = api(issue(teammate, project))
    answer = client.client.post(
        "/v1/videos",
        {"prompt": "x", "input_reference": SimpleUploadedFile("a.png", b"\x89PNG")},
        headers=client.headers,
    )
    envelope(answer, 400, "input_reference")
    assert not Generation.objects.exists()


def test_a_json_body_past_the_upload_limit_says_to_upload_the_file(api, issue, teammate, project, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    url = "data:image/png;base64," + base64.b64encode(png()).decode()
    error = envelope(
        api(issue(teammate, project)).post("/videos", {**CREATE, "input_reference": {"image_url": url}}),
        400,
    )
    assert "multipart file upload" in error["message"]
    assert not Generation.objects.exists()
