"""A selection of videos as one streamed ZIP (issue 13, part 4)."""

from __future__ import annotations

import io
import zipfile

from django.urls import reverse

from workspace.generations.models import Status
from workspace.projects.services import project_create
from workspace.sharing.zips import MAX_VIDEOS_PER_ZIP, zip_entry_names


def _zip(client, project, videos):  # type: ignore[no-untyped-def]
    return client.get(reverse("sharing:zip", args=[project.pk]), {"g": [str(v.pk) for v in videos]})


def test_a_viewer_downloads_two_videos_with_meaningful_unique_names(  # type: ignore[no-untyped-def]
    signed_in, project, viewer, teammate, make_video
) -> None:
    first = make_video(project, teammate, prompt="Paper boat drifting down a rainy street at dusk")
    second = make_video(project, teammate, prompt="Paper boat drifting down a rainy street at dusk")
    answer = _zip(signed_in(viewer), project, [first, second])
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/zip"
    assert "attachment" in answer["Content-Disposition"]
    assert answer.streaming
    body = b"".join(answer.streaming_content)
    assert int(answer["Content-Length"]) == len(body)
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    names = archive.namelist()
    day = first.created_at.strftime("%Y-%m-%d")
    assert names == [
        f"launch-film-{day}-paper-boat-drifting-down-a-rainy-street-{str(first.pk)[:8]}.mp4",
        f"launch-film-{day}-paper-boat-drifting-down-a-rainy-street-{str(second.pk)[:8]}.mp4",
    ]
    assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())
    assert archive.read(names[0]) == first.video.open("rb").read()


def test_names_are_sanitized_and_unique_even_when_everything_matches(  # type: ignore[no-untyped-def]
    project, teammate, make_video
) -> None:
    video = make_video(project, teammate, prompt="../../etc/passwd \u202e evil\\name")
    names = zip_entry_names(generations=[video, video], project_name="Ünïcode / Film")
    assert names[0] != names[1]
    for name in names:
        assert "/" not in name and "\\" not in name and ".." not in name and name.isascii()
        assert name.startswith("unicode-film-")


def test_only_the_members_own_finished_videos_go_in(  # type: ignore[no-untyped-def]
    signed_in, project, teammate, outsider, make_video
) -> None:
    mine = make_video(project, teammate)
    failed = make_video(project, teammate)
    failed.status = Status.FAILED
    failed.save(update_fields=["status"])
    elsewhere = project_create(name="Elsewhere", owner=outsider)
    foreign = make_video(elsewhere, outsider)
    client = signed_in(teammate)
    answer = _zip(client, project, [mine, failed, foreign])
    archive = zipfile.ZipFile(io.BytesIO(b"".join(answer.streaming_content)))
    assert len(archive.namelist()) == 1 and str(mine.pk)[:8] in archive.namelist()[0]
    # Only the foreign video: nothing of this project chosen, nothing downloaded.
    refused = _zip(client, project, [foreign])
    assert refused.status_code == 400
    # An outsider asking through its own project id sees no project at all.
    assert _zip(signed_in(outsider), project, [mine]).status_code == 404


def test_past_the_bound_the_page_says_so(signed_in, project, teammate) -> None:  # type: ignore[no-untyped-def]
    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(MAX_VIDEOS_PER_ZIP + 1)]
    answer = signed_in(teammate).get(reverse("sharing:zip", args=[project.pk]), {"g": ids})
    assert answer.status_code == 400
    assert f"at most {MAX_VIDEOS_PER_ZIP} videos" in answer.content.decode()
    empty = signed_in(teammate).get(reverse("sharing:zip", args=[project.pk]))
    assert "Choose at least one video" in empty.content.decode()
