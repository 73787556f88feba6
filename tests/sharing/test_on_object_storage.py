"""Selection ZIPs and share links with media in an S3 bucket (moto's real S3 server)."""

from __future__ import annotations

import io
import os
import zipfile

import httpx
from django.test import Client
from django.urls import reverse

from workspace.sharing.services import share_link_create, share_link_revoke


def test_a_zip_streams_each_video_from_the_bucket(s3_media, signed_in, project, viewer, teammate, make_video) -> None:  # type: ignore[no-untyped-def]
    bodies = [os.urandom(150_000), os.urandom(90_000)]
    videos = [make_video(project, teammate, data=body) for body in bodies]
    answer = signed_in(viewer).get(
        reverse("sharing:zip", args=[project.pk]), {"g": [str(v.pk) for v in videos]}
    )
    assert answer.status_code == 200
    body = b"".join(answer.streaming_content)
    assert int(answer["Content-Length"]) == len(body)
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert [archive.read(name) for name in archive.namelist()] == bodies


def test_a_share_link_redirects_to_a_signed_url_only_while_it_is_open(  # type: ignore[no-untyped-def]
    s3_media, settings, project, owner, teammate, make_video
) -> None:
    settings.REELHOUSE_MEDIA_SIGNED_URLS = True
    body = os.urandom(40_000)
    video = make_video(project, teammate, data=body)
    issued = share_link_create(
        project=project, generation_ids=[str(video.pk)], actor=teammate, lifetime_days=7,
        show_prompt=False,
    )
    file_url = reverse("sharing:public_file", args=[issued.token, video.pk, "video"])
    stranger = Client()
    answer = stranger.get(file_url)
    assert answer.status_code == 302
    assert answer["Cache-Control"] == "private, no-store"
    fetched = httpx.get(answer["Location"])
    assert fetched.status_code == 200 and fetched.content == body
    share_link_revoke(link=issued.link, actor=owner)
    closed = stranger.get(file_url)
    assert closed.status_code == 410 and "Location" not in closed
