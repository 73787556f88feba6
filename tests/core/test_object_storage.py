"""Media on an S3-compatible store, against a real S3 HTTP server (moto's, on a free port).

A provider's video goes through the pipeline into the bucket; members get it only through the
access-checked view, streamed with Range (only the asked bytes fetched from the store), HEAD
and 304, or redirected to a signed URL when the operator allows it; uploads go to the same
bucket; ``media_move`` copies between stores and can be re-run.
"""

from __future__ import annotations

import io
import os
import re
from io import StringIO
from pathlib import Path

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from PIL import Image

from workspace.core.storage import object_store
from workspace.generations.models import Generation, Status
from workspace.generations.submission import generation_submit

from ..conftest import PASSWORD, S3_SECRET_ACCESS_KEY, bucket_keys

BODY = os.urandom(300_000)


def member_client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def stored_video(project, user) -> Generation:  # type: ignore[no-untyped-def]
    generation = generation_submit(
        project=project, user=user, model="sora-2", prompt="Waves", size="1280x720", seconds=4
    )
    generation.video = default_storage.save(generation.storage_name("video.mp4"), ContentFile(BODY))
    generation.status = Status.COMPLETED
    generation.save()
    return generation


def file_url(generation: Generation, variant: str = "video") -> str:
    return reverse("generations:file", args=[generation.project_id, generation.pk, variant])


def get_object_ranges(storage) -> list[str | None]:  # type: ignore[no-untyped-def]
    """The Range header of every GetObject this thread's store connection sends from now on."""
    seen: list[str | None] = []

    def record(request, **_):  # type: ignore[no-untyped-def]
        value = request.headers.get("Range")
        seen.append(value.decode() if isinstance(value, bytes) else value)

    client = object_store(storage).connection.meta.client  # type: ignore[union-attr]
    client.meta.events.register("before-send.s3.GetObject", record)
    return seen


@pytest.mark.django_db(transaction=True)
def test_a_provider_video_is_stored_in_the_bucket_and_served_by_range(
    s3_media, project, teammate, simulator, run_workers, caplog
) -> None:  # type: ignore[no-untyped-def]
    generation = generation_submit(
        project=project, user=teammate, model="sora-2", prompt="A lighthouse in fog",
        size="1280x720", seconds=4,
    )
    run_workers(lambda: Generation.objects.get(pk=generation.pk).is_terminal)
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED, generation.error_message
    keys = bucket_keys(s3_media)
    for stored in (generation.video, generation.thumbnail, generation.spritesheet):
        assert stored.name in keys and keys[stored.name] > 0
    whole = s3_media.client.get_object(Bucket=s3_media.bucket, Key=generation.video.name)
    video = whole["Body"].read()
    assert video[4:8] == b"ftyp"
    assert not (Path(storages["media-local"].location)).exists()  # nothing went to local disk

    ranges = get_object_ranges(default_storage)
    answer = member_client(teammate).get(file_url(generation), HTTP_RANGE="bytes=100-1123")
    assert answer.status_code == 206
    assert b"".join(answer.streaming_content) == video[100:1124]
    assert answer["Content-Range"] == f"bytes 100-1123/{len(video)}"
    assert answer["Content-Type"] == "video/mp4"
    # The store was asked for those bytes only, not for the whole object.
    assert ranges == ["bytes=100-1123"]
    assert S3_SECRET_ACCESS_KEY not in caplog.text


@pytest.mark.django_db
def test_whole_files_head_and_conditional_requests_from_the_bucket(s3_media, project, teammate) -> None:  # type: ignore[no-untyped-def]
    generation = stored_video(project, teammate)
    member = member_client(teammate)
    ranges = get_object_ranges(default_storage)
    answer = member.get(file_url(generation))
    assert answer.status_code == 200
    assert b"".join(answer.streaming_content) == BODY
    assert answer["Content-Length"] == str(len(BODY))
    assert answer["Accept-Ranges"] == "bytes"
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert answer["Cache-Control"] == "private, max-age=3600"
    etag, modified = answer["ETag"], answer["Last-Modified"]
    assert ranges == [None]  # one plain GetObject, streamed

    head = member.head(file_url(generation))
    assert (head.status_code, head["Content-Length"], head.content) == (200, str(len(BODY)), b"")
    assert member.get(file_url(generation), HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert member.get(file_url(generation), HTTP_IF_MODIFIED_SINCE=modified).status_code == 304
    # The suffix form and an unsatisfiable range, answered from the HEAD's size.
    tail = member.get(file_url(generation), HTTP_RANGE="bytes=-10")
    assert b"".join(tail.streaming_content) == BODY[-10:]
    refused = member.get(file_url(generation), HTTP_RANGE=f"bytes={len(BODY)}-")
    assert (refused.status_code, refused["Content-Range"]) == (416, f"bytes */{len(BODY)}")
    # HEAD, 304 and 416 are answered from one HEAD request: no GetObject for them.
    assert ranges == [None, "bytes=299990-299999"]


@pytest.mark.django_db
def test_a_missing_object_is_a_404_through_the_api(s3_media, project, teammate) -> None:  # type: ignore[no-untyped-def]
    from workspace.api.services import token_create

    generation = stored_video(project, teammate)
    s3_media.client.delete_object(Bucket=s3_media.bucket, Key=generation.video.name)
    secret = token_create(
        owner=teammate, name="t", project=project, can_write=False, expires_at=None
    ).secret
    answer = Client().get(
        f"/v1/videos/{generation.pk}/content", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert answer.status_code == 404


@pytest.mark.django_db
def test_signed_url_mode_redirects_members_only_after_the_access_check(
    s3_media, s3_server, settings, project, teammate, outsider
) -> None:  # type: ignore[no-untyped-def]
    settings.REELHOUSE_MEDIA_SIGNED_URLS = True
    settings.REELHOUSE_MEDIA_SIGNED_URL_SECONDS = 120
    generation = stored_video(project, teammate)
    member = member_client(teammate)

    answer = member.get(file_url(generation) + "?download=1")
    assert answer.status_code == 302
    location = answer["Location"]
    assert location.startswith(f"{s3_server}/{s3_media.bucket}/")
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=120" in location
    assert S3_SECRET_ACCESS_KEY not in location
    # A cached redirect would outlive the URL (and a revoked membership).
    assert answer["Cache-Control"] == "private, no-store"

    fetched = httpx.get(location)
    assert fetched.status_code == 200 and fetched.content == BODY
    # The store answers with our content type and the download name, not the upload's.
    assert fetched.headers["content-type"] == "video/mp4"
    assert re.match(r'attachment; filename="[\w-]+\.mp4"', fetched.headers["content-disposition"])
    # Range is the store's to answer on the signed URL.
    part = httpx.get(location, headers={"Range": "bytes=0-9"})
    assert (part.status_code, part.content) == (206, BODY[:10])

    # HEAD cannot use a URL signed for GET: it is answered here.
    head = member.head(file_url(generation))
    assert (head.status_code, head["Content-Length"]) == (200, str(len(BODY)))

    # The API answers with the bytes whatever the mode: scripts expect them, not a redirect.
    from workspace.api.services import token_create

    secret = token_create(
        owner=teammate, name="t", project=project, can_write=False, expires_at=None
    ).secret
    content = Client().get(
        f"/v1/videos/{generation.pk}/content", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert content.status_code == 200 and b"".join(content.streaming_content) == BODY

    stranger = member_client(outsider).get(file_url(generation))
    assert stranger.status_code == 404 and "Location" not in stranger
    assert Client().get(file_url(generation)).status_code == 302  # to the sign-in page
    assert "X-Amz" not in Client().get(file_url(generation))["Location"]


def png(name: str = "still.png") -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (20, 120, 220)).save(out, format="PNG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/png")


@pytest.mark.django_db
def test_uploaded_images_and_kept_drafts_go_to_the_bucket(s3_media, project, teammate) -> None:  # type: ignore[no-untyped-def]
    editor = member_client(teammate)
    create = reverse("generations:create", args=[project.pk])
    form = {"prompt": "The boat sails off", "model": "sora-2", "size": "1280x720", "seconds": "4"}
    answer = editor.post(create, {**form, "start": "image", "first_frame": png(), "fit": "crop"},
                         follow=True)
    assert "Queued." in answer.content.decode()
    item = Generation.objects.get().inputs.get()
    assert item.image.name in bucket_keys(s3_media)
    served = editor.get(reverse("generations:input", args=[project.pk, item.generation_id, item.pk]))
    assert served.status_code == 200
    assert Image.open(io.BytesIO(b"".join(served.streaming_content))).size == (1280, 720)

    # A refused form keeps the upload for the next try: in the bucket too.
    refused = editor.post(create, {**form, "prompt": "", "start": "image", "first_frame": png()},
                          follow=True).content.decode()
    token = re.search(r'name="first_frame_kept" value="([\w-]+)"', refused)
    assert token
    assert any(key.startswith("drafts/") for key in bucket_keys(s3_media))
    assert editor.get(reverse("generations:draft", args=[project.pk, token[1]])).status_code == 200


def put_local(name: str, body: bytes) -> None:
    assert storages["media-local"].save(name, ContentFile(body)) == name


def run_move(*args: str) -> str:
    out = StringIO()
    call_command("media_move", *args, stdout=out)
    return out.getvalue()


LOCAL_FILES = {
    "generations/1/0b5e/video.mp4": os.urandom(700_000),
    "generations/1/0b5e/thumbnail.jpg": os.urandom(2_000),
    "inputs/1/0b5e/first_frame.png": os.urandom(3_000),
    "drafts/7/kept.png": b"",  # empty files move too
}


@pytest.mark.django_db
def test_media_move_to_s3_and_back_is_verified_and_rerunnable(
    s3_media, settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    for name, body in LOCAL_FILES.items():
        put_local(name, body)

    dry = run_move("--to", "s3", "--dry-run")
    assert "would copy 4" in dry and "skipped 0" in dry
    assert bucket_keys(s3_media) == {}

    first = run_move("--to", "s3")
    assert "copied 4" in first and "0 conflicts, 0 failed" in first
    assert bucket_keys(s3_media) == {name: len(body) for name, body in LOCAL_FILES.items()}
    for name, body in LOCAL_FILES.items():
        stored = s3_media.client.get_object(Bucket=s3_media.bucket, Key=name)["Body"].read()
        assert stored == body

    # Re-run after more was written locally: only the new file is copied.
    put_local("generations/1/77aa/video.mp4", b"new")
    again = run_move("--to", "s3")
    assert "copied 1" in again and "skipped 4" in again
    assert "copied 0" in run_move("--to", "s3")

    # A different file under a name that exists at the destination is never overwritten.
    s3_media.client.put_object(Bucket=s3_media.bucket, Key="generations/1/88bb/video.mp4",
                               Body=b"the bucket's own")
    put_local("generations/1/88bb/video.mp4", b"another video")
    with pytest.raises(CommandError, match="conflict"):
        run_move("--to", "s3")
    kept = s3_media.client.get_object(Bucket=s3_media.bucket, Key="generations/1/88bb/video.mp4")
    assert kept["Body"].read() == b"the bucket's own"

    # An original is deleted only when the copy already there has the same bytes, not just size.
    s3_media.client.put_object(Bucket=s3_media.bucket, Key="generations/1/99cc/video.mp4",
                               Body=b"bucket")
    put_local("generations/1/99cc/video.mp4", b"local!")
    with pytest.raises(CommandError, match="conflict"):
        run_move("--to", "s3", "--delete-source")
    assert storages["media-local"].exists("generations/1/99cc/video.mp4")
    s3_media.client.delete_object(Bucket=s3_media.bucket, Key="generations/1/99cc/video.mp4")
    storages["media-local"].delete("generations/1/99cc/video.mp4")

    # Back to an empty local store, removing each object once its copy is verified.
    settings.STORAGES = {
        **settings.STORAGES,
        "media-local": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "back"), "base_url": "/nonexistent/"},
        },
    }
    back = run_move("--to", "local", "--delete-source")
    assert "copied 6" in back and "6 originals deleted" in back
    assert bucket_keys(s3_media) == {}
    for name, body in LOCAL_FILES.items():
        assert (tmp_path / "back" / name).read_bytes() == body
    assert S3_SECRET_ACCESS_KEY not in first + again + back


@pytest.mark.django_db
def test_media_move_without_a_bucket_says_what_to_set(settings) -> None:  # type: ignore[no-untyped-def]
    settings.STORAGES = {k: v for k, v in settings.STORAGES.items() if k != "media-s3"}
    with pytest.raises(CommandError, match="REELHOUSE_S3_BUCKET"):
        run_move("--to", "s3")
