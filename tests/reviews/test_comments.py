"""Comments on a video, at a timecode, with @mentions that notify (issue 13, part 3)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from workspace.core.models import AuditEvent, Notification
from workspace.projects.services import project_archive
from workspace.reviews.forms import format_timecode, parse_timecode
from workspace.reviews.models import COMMENT_MAX_LENGTH, Comment
from workspace.reviews.services import (
    mentioned_usernames,
    review_comment_add,
    review_comment_delete,
)


def _add_url(video) -> str:  # type: ignore[no-untyped-def]
    return reverse("reviews:comment_add", args=[video.project_id, video.pk])


def _detail_url(video) -> str:  # type: ignore[no-untyped-def]
    return reverse("generations:detail", args=[video.project_id, video.pk])


@pytest.mark.parametrize(
    ("typed", "ms"),
    [
        ("3", 3000),
        ("3.5", 3500),
        ("3,25", 3250),
        ("0:03", 3000),
        ("1:02.5", 62500),
        ("1:00:00", 3_600_000),
        (" 0:04 ", 4000),
    ],
)
def test_timecodes_people_type_are_understood(typed: str, ms: int) -> None:
    assert parse_timecode(typed) == ms


@pytest.mark.parametrize("typed", ["", "abc", "1:75", "-3", "1:2:3:4", "3s", "1e3"])
def test_what_is_not_a_timecode_is_refused(typed: str) -> None:
    assert parse_timecode(typed) is None


def test_timecodes_are_shown_as_minutes_and_seconds() -> None:
    assert format_timecode(3500) == "0:03.5"
    assert format_timecode(62000) == "1:02"


def test_a_viewer_comments_at_a_timecode_and_the_page_links_it_to_the_player(  # type: ignore[no-untyped-def]
    signed_in, video, viewer
) -> None:
    client = signed_in(viewer)
    answer = client.post(_add_url(video), {"text": "The boat tilts here", "at": "0:02.5"})
    # No stored file: the time is said, not linked to a file that is not there.
    page = client.get(_detail_url(video)).content.decode()
    assert "at 0:02.5" in page and "data-seek-ms" not in page
    video.video.name = f"generations/{video.project_id}/{video.pk}/video.mp4"
    video.save(update_fields=["video"])
    comment = Comment.objects.get()
    assert answer.status_code == 302
    assert answer["Location"] == f"{_detail_url(video)}#comment-{comment.pk}"
    assert (comment.author, comment.at_ms, comment.text) == (viewer, 2500, "The boat tilts here")
    page = client.get(_detail_url(video)).content.decode()
    assert f'id="comment-{comment.pk}"' in page
    assert 'data-seek-ms="2500"' in page and "at 0:02.5" in page
    assert "#t=2.500" in page  # without the script, the link opens the video at that moment


def test_mentions_notify_the_members_named_and_nobody_else(  # type: ignore[no-untyped-def]
    video, viewer, teammate, owner, outsider
) -> None:
    comment = review_comment_add(
        generation=video,
        author=viewer,
        text=f"@{teammate.username} and @{owner.username.upper()}. Not @{outsider.username}, "
        f"nor me @{viewer.username}, nor mail@{teammate.username}.com",
    )
    notified = Notification.objects.order_by("user__username")
    assert [n.user for n in notified] == [owner, teammate]
    assert all(n.url.endswith(f"#comment-{comment.pk}") for n in notified)
    assert f"{viewer.username} mentioned you" in notified[0].title


def test_mentions_are_read_up_to_a_bound() -> None:
    text = " ".join(f"@user{i}" for i in range(50)) + " @last."
    names = mentioned_usernames(text)
    assert len(names) == 20 and names[0] == "user0"
    assert mentioned_usernames("see @tariq.") == ["tariq"]


def test_an_empty_comment_comes_back_with_its_error_and_nothing_is_saved(  # type: ignore[no-untyped-def]
    signed_in, video, viewer
) -> None:
    client = signed_in(viewer)
    answer = client.post(_add_url(video), {"text": "   ", "at": "0:01"})
    assert answer.status_code == 302 and answer["Location"].endswith("#comment-form")
    page = client.get(_detail_url(video)).content.decode()
    assert "the comment is empty" in page
    assert 'value="0:01"' in page  # the time typed is kept
    assert not Comment.objects.exists()
    # Shown once: a reload is a clean form.
    assert "the comment is empty" not in client.get(_detail_url(video)).content.decode()


def test_a_too_long_comment_or_a_bad_time_keeps_the_input_and_says_why(  # type: ignore[no-untyped-def]
    signed_in, video, viewer
) -> None:
    client = signed_in(viewer)
    long_text = "x" * (COMMENT_MAX_LENGTH + 1)
    client.post(_add_url(video), {"text": long_text, "at": ""})
    page = client.get(_detail_url(video)).content.decode()
    assert f"at most {COMMENT_MAX_LENGTH:,} characters" in page
    assert long_text in page
    client.post(_add_url(video), {"text": "Late in the shot", "at": "0:09"})
    page = client.get(_detail_url(video)).content.decode()
    assert "The video is 4 seconds long" in page and "Late in the shot" in page
    client.post(_add_url(video), {"text": "Somewhere", "at": "soon"})
    page = client.get(_detail_url(video)).content.decode()
    assert "minutes:seconds" in page and "Somewhere" in page
    assert not Comment.objects.exists()


def test_an_outsider_cannot_comment_or_see_comments(signed_in, video, outsider) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(outsider)
    assert client.post(_add_url(video), {"text": "hello"}).status_code == 404
    with pytest.raises(PermissionDenied):
        review_comment_add(generation=video, author=outsider, text="hello")
    assert not Comment.objects.exists()


def test_an_archived_project_takes_no_comments(video, viewer, owner) -> None:  # type: ignore[no-untyped-def]
    project_archive(project=video.project, actor=owner)
    with pytest.raises(ValidationError, match="archived"):
        review_comment_add(generation=video, author=viewer, text="too late")


def test_authors_delete_their_own_comments_and_owners_any(  # type: ignore[no-untyped-def]
    signed_in, video, viewer, teammate, owner
) -> None:
    mine = review_comment_add(generation=video, author=viewer, text="mine")
    theirs = review_comment_add(generation=video, author=teammate, text="theirs")
    with pytest.raises(PermissionDenied):
        review_comment_delete(comment=theirs, actor=viewer)
    client = signed_in(viewer)
    delete = reverse("reviews:comment_delete", args=[video.project_id, theirs.pk])
    assert client.post(delete).status_code == 403
    delete_mine = reverse("reviews:comment_delete", args=[video.project_id, mine.pk])
    assert client.post(delete_mine).status_code == 302
    review_comment_delete(comment=theirs, actor=owner)
    assert not Comment.objects.exists()
    logged = AuditEvent.objects.filter(target_type="comment").order_by("id")
    assert [(e.actor_name, e.target_repr) for e in logged] == [
        (viewer.username, "mine"),
        (owner.username, "theirs"),
    ]


def test_a_comment_of_another_project_is_not_found_through_this_one(  # type: ignore[no-untyped-def]
    signed_in, video, owner, outsider, make_video
) -> None:
    from workspace.projects.services import project_create

    elsewhere = project_create(name="Elsewhere", owner=outsider)
    other = review_comment_add(
        generation=make_video(elsewhere, outsider), author=outsider, text="private"
    )
    client = signed_in(owner)
    delete = reverse("reviews:comment_delete", args=[video.project_id, other.pk])
    assert client.post(delete).status_code == 404
    assert Comment.objects.filter(pk=other.pk).exists()


def test_a_huge_post_is_not_kept_whole_in_the_session(signed_in, video, viewer) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(viewer)
    client.post(_add_url(video), {"text": "y" * 1_000_000, "at": "1" * 1000})
    page = client.get(_detail_url(video)).content.decode()
    assert "at most 2,000 characters" in page
    assert "y" * (COMMENT_MAX_LENGTH * 4) in page and "y" * (COMMENT_MAX_LENGTH * 4 + 1) not in page
    assert not Comment.objects.exists()


def test_comment_text_is_escaped_with_mentions_marked_and_line_breaks_kept(  # type: ignore[no-untyped-def]
    signed_in, video, viewer, teammate
) -> None:
    review_comment_add(
        generation=video,
        author=viewer,
        text=f'<script>alert(1)</script> "@{teammate.username}"\nsecond line \u202eevil',
    )
    page = signed_in(viewer).get(_detail_url(video)).content.decode()
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f'&quot;<span class="mention">@{teammate.username}</span>&quot;<br>second line' in page
    assert "\u202eevil\u2069" in page  # the override ends with the comment
