"""Serving stored files: fixed types, sandboxing headers, Range, HEAD and conditional requests."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from workspace.generations.models import Generation
from workspace.generations.submission import generation_submit

from ..conftest import PASSWORD

# Not a playable video, but the view never looks inside: these are the bytes it must serve.
BODY = bytes(range(256)) * 4  # 1024 bytes
# Opened as a document, a file runs no script and loads nothing but itself.
FILE_CSP = "sandbox; default-src 'none'; media-src 'self'; img-src 'self'"


@pytest.fixture
def member(client, teammate):  # type: ignore[no-untyped-def]
    assert client.login(username=teammate.username, password=PASSWORD)
    return client


def stored_generation(project, user, **files: str) -> Generation:  # type: ignore[no-untyped-def]
    generation = generation_submit(
        project=project, user=user, model="sora-2", prompt="Waves", size="1280x720", seconds=4
    )
    for variant, extension in files.items():
        name = f"generations/{project.pk}/{generation.pk}/{variant}.{extension}"
        setattr(generation, variant, default_storage.save(name, ContentFile(BODY)))
    generation.save()
    return generation


@pytest.fixture
def video_url(project, teammate) -> str:  # type: ignore[no-untyped-def]
    generation = stored_generation(project, teammate, video="mp4")
    return reverse("generations:file", args=[project.pk, generation.pk, "video"])


def test_a_video_is_served_with_the_fixed_type_and_sandboxing_headers(member, video_url) -> None:  # type: ignore[no-untyped-def]
    answer = member.get(video_url)
    assert answer.status_code == 200
    assert b"".join(answer.streaming_content) == BODY
    assert answer["Content-Type"] == "video/mp4"
    assert answer["Content-Length"] == str(len(BODY))
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert answer["Content-Security-Policy"] == FILE_CSP
    assert answer["Content-Disposition"].startswith("inline")
    assert answer["ETag"].startswith('"') and answer["Last-Modified"].endswith("GMT")


@pytest.mark.parametrize(
    ("extension", "content_type"),
    [("mov", "video/quicktime"), ("webm", "video/webm"), ("png", "image/png"),
     ("webp", "image/webp"), ("jpg", "image/jpeg")],
)
def test_each_allowed_type_is_served_as_itself(member, project, teammate, extension, content_type) -> None:  # type: ignore[no-untyped-def]
    generation = stored_generation(project, teammate, thumbnail=extension)
    answer = member.get(reverse("generations:file", args=[project.pk, generation.pk, "thumbnail"]))
    assert answer["Content-Type"] == content_type


@pytest.mark.parametrize("extension", ["html", "svg", "bin"])
def test_a_legacy_file_of_another_type_is_only_ever_downloaded(member, project, teammate, extension) -> None:  # type: ignore[no-untyped-def]
    # Stored before types were checked, with the extension the provider's header chose.
    generation = stored_generation(project, teammate, thumbnail=extension)
    answer = member.get(reverse("generations:file", args=[project.pk, generation.pk, "thumbnail"]))
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/octet-stream"
    assert answer["Content-Disposition"].startswith("attachment")
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert answer["Content-Security-Policy"] == FILE_CSP


def test_a_range_is_served_as_206(member, video_url) -> None:  # type: ignore[no-untyped-def]
    answer = member.get(video_url, HTTP_RANGE="bytes=5-9")
    assert answer.status_code == 206
    assert b"".join(answer.streaming_content) == BODY[5:10]
    assert answer["Content-Range"] == f"bytes 5-9/{len(BODY)}"
    assert answer["Content-Length"] == "5"
    assert answer["Content-Type"] == "video/mp4"
    assert answer["Content-Security-Policy"] == FILE_CSP
    suffix = member.get(video_url, HTTP_RANGE="bytes=-4")
    assert b"".join(suffix.streaming_content) == BODY[-4:]


@pytest.mark.parametrize(
    "header",
    ["bytes=5-3", "bytes=0-1,5-6", "items=0-5", "bytes=-", "bytes=abc-"],
)
def test_an_invalid_range_is_ignored(member, video_url, header) -> None:  # type: ignore[no-untyped-def]
    answer = member.get(video_url, HTTP_RANGE=header)
    assert answer.status_code == 200
    assert b"".join(answer.streaming_content) == BODY


def test_ranges_of_thousands_of_digits_never_fail(member, video_url) -> None:  # type: ignore[no-untyped-def]
    huge = "9" * 5000  # beyond int()'s 4300-digit limit
    open_ended = member.get(video_url, HTTP_RANGE=f"bytes=0-{huge}")
    assert open_ended.status_code == 206
    assert open_ended["Content-Range"] == f"bytes 0-{len(BODY) - 1}/{len(BODY)}"
    suffix = member.get(video_url, HTTP_RANGE=f"bytes=-{huge}")
    assert suffix.status_code == 206 and b"".join(suffix.streaming_content) == BODY
    beyond = member.get(video_url, HTTP_RANGE=f"bytes={huge}-")
    assert beyond.status_code == 416
    assert beyond["Content-Range"] == f"bytes */{len(BODY)}"
    backwards = member.get(video_url, HTTP_RANGE=f"bytes={huge}-5")
    assert backwards.status_code == 200


def test_a_range_beyond_the_end_is_unsatisfiable(member, video_url) -> None:  # type: ignore[no-untyped-def]
    answer = member.get(video_url, HTTP_RANGE=f"bytes={len(BODY)}-")
    assert answer.status_code == 416
    assert answer["Content-Range"] == f"bytes */{len(BODY)}"


def test_head_answers_the_headers_without_the_body(member, video_url) -> None:  # type: ignore[no-untyped-def]
    whole = member.get(video_url)
    head = member.head(video_url)
    assert head.status_code == 200
    assert head.content == b""
    for header in ("Content-Type", "Content-Length", "ETag", "Last-Modified",
                   "Content-Security-Policy", "X-Content-Type-Options", "Accept-Ranges"):
        assert head[header] == whole[header], header
    ranged = member.head(video_url, HTTP_RANGE="bytes=0-99")
    assert ranged.status_code == 206 and ranged["Content-Length"] == "100"


def test_outsiders_get_404_for_head_too(client, outsider, video_url) -> None:  # type: ignore[no-untyped-def]
    assert client.login(username=outsider.username, password=PASSWORD)
    assert client.head(video_url).status_code == 404


def test_conditional_requests_answer_304(member, video_url) -> None:  # type: ignore[no-untyped-def]
    first = member.get(video_url)
    etag, modified = first["ETag"], first["Last-Modified"]
    by_etag = member.get(video_url, HTTP_IF_NONE_MATCH=etag)
    assert by_etag.status_code == 304
    assert by_etag["ETag"] == etag
    assert "private" in by_etag["Cache-Control"]
    assert member.get(video_url, HTTP_IF_MODIFIED_SINCE=modified).status_code == 304
    assert member.head(video_url, HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert member.get(video_url, HTTP_IF_NONE_MATCH='"something-else"').status_code == 200


def test_if_range_serves_the_range_only_for_the_same_file(member, video_url) -> None:  # type: ignore[no-untyped-def]
    first = member.get(video_url)
    etag, modified = first["ETag"], first["Last-Modified"]
    for validator in (etag, modified):
        same = member.get(video_url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=validator)
        assert same.status_code == 206, validator
    for stale in ('"older"', "W/" + etag, "Mon, 01 Jan 2001 00:00:00 GMT", "garbage"):
        changed = member.get(video_url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=stale)
        assert changed.status_code == 200, stale
        assert b"".join(changed.streaming_content) == BODY


def test_other_methods_are_refused(member, video_url) -> None:  # type: ignore[no-untyped-def]
    assert member.post(video_url).status_code == 405
