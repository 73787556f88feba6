"""Review decisions, who may make them, and favourites (issue 13, part 3)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from workspace.core.models import AuditEvent
from workspace.generations.models import Status
from workspace.reviews.models import Deciders, Favourite, ReviewDecision, ReviewState
from workspace.reviews.services import favourite_toggle, review_decide, review_policy_set


def _decide_url(video) -> str:  # type: ignore[no-untyped-def]
    return reverse("reviews:decide", args=[video.project_id, video.pk])


def _detail(client, video) -> str:  # type: ignore[no-untyped-def]
    return client.get(
        reverse("generations:detail", args=[video.project_id, video.pk])
    ).content.decode()


def test_an_editor_approves_and_the_page_shows_who_and_when(signed_in, video, teammate) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(teammate)
    answer = client.post(_decide_url(video), {"state": ReviewState.APPROVED})
    assert answer.status_code == 302 and answer["Location"].endswith("#review")
    decision = ReviewDecision.objects.get()
    assert (decision.state, decision.decided_by, decision.is_current) == (
        "approved",
        teammate,
        True,
    )
    page = _detail(client, video)
    assert "review-approved" in page and f"by {teammate.username}" in page
    event = AuditEvent.objects.get(changes__has_key="review_state")
    assert event.changes == {"review_state": ["none", "approved"]}
    assert (event.actor_name, event.target_id) == (teammate.username, str(video.pk))


def test_history_is_kept_and_the_latest_decision_is_current(video, teammate, owner) -> None:  # type: ignore[no-untyped-def]
    review_decide(generation=video, actor=teammate, state=ReviewState.APPROVED)
    review_decide(generation=video, actor=owner, state=ReviewState.CHANGES_REQUESTED)
    # The same decision again records nothing.
    review_decide(generation=video, actor=owner, state=ReviewState.CHANGES_REQUESTED)
    review_decide(generation=video, actor=owner, state=ReviewState.NONE)
    history = list(ReviewDecision.objects.order_by("id").values_list("state", "is_current"))
    assert history == [("approved", False), ("changes", False), ("none", True)]
    assert AuditEvent.objects.filter(changes__has_key="review_state").count() == 3


def test_withdrawing_when_nothing_was_decided_records_nothing(video, owner) -> None:  # type: ignore[no-untyped-def]
    assert review_decide(generation=video, actor=owner, state=ReviewState.NONE) is None
    assert not ReviewDecision.objects.exists()


def test_a_viewer_may_comment_but_not_decide(signed_in, video, viewer) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(viewer)
    assert client.post(_decide_url(video), {"state": ReviewState.APPROVED}).status_code == 403
    assert "Approve</button>" not in _detail(client, video)
    assert not ReviewDecision.objects.exists()


def test_owners_only_is_a_project_setting_that_stops_editors(  # type: ignore[no-untyped-def]
    signed_in, video, teammate, owner
) -> None:
    client = signed_in(owner)
    settings_url = reverse("projects:settings", args=[video.project_id])
    policy_url = reverse("reviews:policy", args=[video.project_id])
    assert "Owners and editors" in client.get(settings_url).content.decode()
    answer = client.post(policy_url, {"deciders": Deciders.OWNERS})
    assert answer.status_code == 302
    event = AuditEvent.objects.get(changes__has_key="review_deciders")
    assert event.changes == {"review_deciders": ["editors", "owners"]}
    assert (event.target_type, event.target_id) == ("project", str(video.project_id))
    with pytest.raises(PermissionDenied, match="only project owners"):
        review_decide(generation=video, actor=teammate, state=ReviewState.APPROVED)
    review_decide(generation=video, actor=owner, state=ReviewState.APPROVED)
    editor = signed_in(teammate)
    assert editor.post(_decide_url(video), {"state": ReviewState.NONE}).status_code == 403
    page = _detail(editor, video)
    assert "owners only approve videos" in page


def test_only_owners_choose_who_decides(signed_in, video, teammate) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(teammate)
    answer = client.post(reverse("reviews:policy", args=[video.project_id]), {"deciders": "owners"})
    assert answer.status_code == 403
    with pytest.raises(PermissionDenied):
        review_policy_set(project=video.project, deciders=Deciders.OWNERS, actor=teammate)


def test_a_bad_policy_choice_is_refused_with_a_message(signed_in, video, owner) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(owner)
    answer = client.post(
        reverse("reviews:policy", args=[video.project_id]), {"deciders": "everyone"}, follow=True
    )
    assert "Choose owners only, or owners and editors." in answer.content.decode()
    assert not AuditEvent.objects.filter(changes__has_key="review_deciders").exists()


def test_an_unfinished_video_cannot_be_decided(video, owner, make_video, project) -> None:  # type: ignore[no-untyped-def]
    running = make_video(project, owner, status=Status.QUEUED)
    with pytest.raises(ValidationError, match="finished video"):
        review_decide(generation=running, actor=owner, state=ReviewState.APPROVED)


def test_favourites_are_per_member_and_toggle(signed_in, video, viewer, teammate) -> None:  # type: ignore[no-untyped-def]
    assert favourite_toggle(generation=video, user=viewer) is True
    assert favourite_toggle(generation=video, user=teammate) is True
    assert favourite_toggle(generation=video, user=viewer) is False
    assert list(Favourite.objects.values_list("user", flat=True)) == [teammate.pk]
    client = signed_in(viewer)
    url = reverse("reviews:favourite", args=[video.project_id, video.pk])
    answer = client.post(url, headers={"X-Requested-With": "fetch"})
    assert answer.json() == {"favourite": True}
    # Without the script: back to the page it came from, never to another site.
    back = client.post(url, {"next": "https://evil.example/"})
    assert back["Location"] == reverse("generations:detail", args=[video.project_id, video.pk])
    assert not Favourite.objects.filter(user=viewer).exists()


def test_an_outsider_cannot_star_or_decide(signed_in, video, outsider) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(outsider)
    url = reverse("reviews:favourite", args=[video.project_id, video.pk])
    assert client.post(url).status_code == 404
    assert client.post(_decide_url(video), {"state": "approved"}).status_code == 404
    with pytest.raises(PermissionDenied):
        favourite_toggle(generation=video, user=outsider)


def test_without_the_script_a_star_returns_to_the_gallery_page_it_was_on(  # type: ignore[no-untyped-def]
    signed_in, video, viewer
) -> None:
    client = signed_in(viewer)
    url = reverse("reviews:favourite", args=[video.project_id, video.pk])
    gallery = (
        "http://testserver" + reverse("projects:detail", args=[video.project_id]) + "?review=none"
    )
    answer = client.post(url, headers={"Referer": gallery})
    assert answer["Location"] == gallery
    assert Favourite.objects.filter(user=viewer, generation=video).exists()
