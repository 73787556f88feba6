"""Share links (issue 13, part 4): read-only, expiring, revocable, audited, nothing else reachable."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from workspace.core.models import AuditEvent
from workspace.generations.models import Status
from workspace.projects.services import generation_move, membership_add, project_create
from workspace.sharing.models import MAX_VIDEOS_PER_LINK, ShareLink
from workspace.sharing.services import share_link_create, share_link_resolve, share_link_revoke


def _create(project, actor, videos, **extra):  # type: ignore[no-untyped-def]
    options = {"lifetime_days": 7, "show_prompt": False, **extra}
    return share_link_create(
        project=project, generation_ids=[str(v.pk) for v in videos], actor=actor, **options
    )


def _public(token: str) -> str:
    return reverse("sharing:public", args=[token])


def test_an_editor_shares_and_a_stranger_watches_only_those_videos(  # type: ignore[no-untyped-def]
    project, teammate, make_video
) -> None:
    shared = make_video(project, teammate, prompt="Paper boat on a rainy street")
    hidden = make_video(project, teammate, prompt="Secret storyboard")
    issued = _create(project, teammate, [shared], show_prompt=True)
    # Stored hashed: the token itself is nowhere in the row.
    assert issued.token not in str(ShareLink.objects.filter(pk=issued.link.pk).values().get())

    stranger = Client()
    page = stranger.get(_public(issued.token))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Paper boat on a rainy street" in html
    assert "Secret storyboard" not in html and str(hidden.pk) not in html
    # No way into the app from here, no index, no referrer, no session or CSRF cookie.
    assert page["X-Robots-Tag"].startswith("noindex")
    assert page["Referrer-Policy"] == "no-referrer"
    assert not page.cookies
    hrefs = re.findall(r'(?:href|src)="([^"]+)"', html)
    assert all(h.startswith(("/static/", _public(issued.token))) for h in hrefs), hrefs

    video_url = reverse("sharing:public_file", args=[issued.token, shared.pk, "video"])
    whole = stranger.get(video_url)
    assert whole.status_code == 200
    body = b"".join(whole.streaming_content)  # type: ignore[attr-defined]
    assert body == shared.video.open("rb").read()
    ranged = stranger.get(video_url, HTTP_RANGE="bytes=0-9")
    assert ranged.status_code == 206 and ranged["Content-Range"].endswith(f"/{len(body)}")
    assert b"".join(ranged.streaming_content) == body[:10]  # type: ignore[attr-defined]
    # A video of the project that was not shared is not served through the link.
    other = reverse("sharing:public_file", args=[issued.token, hidden.pk, "video"])
    assert stranger.get(other).status_code == 404

    issued.link.refresh_from_db()
    assert issued.link.open_count == 1 and issued.link.last_opened_at is not None


def test_the_prompt_is_shown_only_when_the_link_says_so(project, teammate, make_video) -> None:  # type: ignore[no-untyped-def]
    video = make_video(project, teammate, prompt="Lighthouse in thick fog")
    issued = _create(project, teammate, [video], show_prompt=False)
    page = Client().get(_public(issued.token)).content.decode()
    assert "Lighthouse in thick fog" not in page
    assert "video.mp4" not in page  # nor the stored file's name


def test_revoked_and_expired_links_answer_410_and_unknown_ones_404(  # type: ignore[no-untyped-def]
    project, owner, teammate, make_video
) -> None:
    video = make_video(project, teammate)
    revoked = _create(project, teammate, [video])
    expired = _create(project, teammate, [video], lifetime_days=1)
    assert share_link_revoke(link=revoked.link, actor=owner) is True
    assert share_link_revoke(link=revoked.link, actor=owner) is False  # once, audited once
    ShareLink.objects.filter(pk=expired.link.pk).update(expires_at=timezone.now())
    stranger = Client()
    for issued, state in ((revoked, "revoked"), (expired, "expired")):
        page = stranger.get(_public(issued.token))
        assert page.status_code == 410
        assert f'data-share-state="{state}"' in page.content.decode()
        file_url = reverse("sharing:public_file", args=[issued.token, video.pk, "video"])
        assert stranger.get(file_url).status_code == 410
    wrong = revoked.token[:-4] + "AAAA"
    assert stranger.get(_public(wrong)).status_code == 404
    assert stranger.get(_public("nonsense")).status_code == 404
    events = AuditEvent.objects.filter(target_type="share link")
    assert events.filter(action=AuditEvent.Action.CREATED).count() == 2
    assert events.filter(action=AuditEvent.Action.CHANGED).count() == 1


def test_viewers_and_outsiders_cannot_share_or_revoke(  # type: ignore[no-untyped-def]
    project, teammate, viewer, outsider, make_video
) -> None:
    video = make_video(project, teammate)
    for persona in (viewer, outsider):
        with pytest.raises(PermissionDenied):
            _create(project, persona, [video])
    issued = _create(project, teammate, [video])
    with pytest.raises(PermissionDenied):
        share_link_revoke(link=issued.link, actor=viewer)


def test_the_viewer_is_told_who_may_share(signed_in, project, viewer, teammate, make_video) -> None:  # type: ignore[no-untyped-def]
    video = make_video(project, teammate)
    client = signed_in(viewer)
    page = client.get(reverse("sharing:create", args=[project.pk]), {"g": str(video.pk)})
    assert "only owners and editors can create share links" in page.content.decode()
    assert client.post(reverse("sharing:create", args=[project.pk])).status_code == 403


def test_links_are_bounded_in_time_and_size_and_to_finished_videos_of_the_project(  # type: ignore[no-untyped-def]
    project, teammate, outsider, make_video
) -> None:
    video = make_video(project, teammate)
    with pytest.raises(ValidationError, match="1, 7 or 30"):
        _create(project, teammate, [video], lifetime_days=365)
    with pytest.raises(ValidationError, match="at least one"):
        _create(project, teammate, [])
    elsewhere = project_create(name="Elsewhere", owner=outsider)
    foreign = make_video(elsewhere, outsider)
    with pytest.raises(ValidationError, match="Only finished videos of this project"):
        _create(project, teammate, [video, foreign])
    video.status = Status.FAILED
    video.save(update_fields=["status"])
    with pytest.raises(ValidationError, match="Only finished videos"):
        _create(project, teammate, [video])
    with pytest.raises(ValidationError, match=f"at most {MAX_VIDEOS_PER_LINK}"):
        share_link_create(
            project=project,
            generation_ids=[f"00000000-0000-0000-0000-{i:012d}" for i in range(60)],
            actor=teammate,
            lifetime_days=7,
            show_prompt=False,
        )
    assert not ShareLink.objects.exists()


def test_creating_through_the_page_shows_the_link_once_on_settings(  # type: ignore[no-untyped-def]
    signed_in, project, teammate, make_video
) -> None:
    video = make_video(project, teammate)
    client = signed_in(teammate)
    answer = client.post(
        reverse("sharing:create", args=[project.pk]),
        {"g": str(video.pk), "lifetime_days": "30"},
    )
    assert answer.status_code == 302
    link = ShareLink.objects.get()
    assert timedelta(days=29) < link.expires_at - timezone.now() <= timedelta(days=30)
    settings_page = client.get(answer["Location"]).content.decode()
    url = re.search(r'value="(http://testserver/s/[^"]+)"', settings_page)
    assert url is not None and share_link_resolve(token=url[1].rsplit("/", 2)[-2]) == link
    again = client.get(answer["Location"]).content.decode()
    assert url[1] not in again and f'data-share-link="{link.prefix}"' in again  # secret gone

    client.post(reverse("sharing:revoke", args=[project.pk, link.pk]))
    link.refresh_from_db()
    assert link.state == "revoked"
    listed = client.get(answer["Location"]).content.decode()
    assert f'data-share-link="{link.prefix}"' not in listed


def test_a_video_moved_out_of_the_project_leaves_the_link(  # type: ignore[no-untyped-def]
    project, owner, teammate, make_video
) -> None:
    video = make_video(project, teammate)
    issued = _create(project, teammate, [video])
    other = project_create(name="Other", owner=owner)
    membership_add(project=other, username=teammate.username, role="editor", actor=owner)
    generation_move(generation=video, to_project=other, actor=teammate)
    file_url = reverse("sharing:public_file", args=[issued.token, video.pk, "video"])
    assert Client().get(file_url).status_code == 404
