"""The gallery's review and favourite filters and badges, and the project's activity feed."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from workspace.generations.models import Generation
from workspace.generations.selectors import LIVE_OVERLAP
from workspace.projects.services import generation_move, project_create, project_rename
from workspace.reviews.models import ReviewState
from workspace.reviews.selectors import FeedCursor, activity_page
from workspace.reviews.services import (
    favourite_toggle,
    review_comment_add,
    review_decide,
    review_policy_set,
)


def _gallery(client, project, **query: str) -> str:  # type: ignore[no-untyped-def]
    return client.get(reverse("projects:detail", args=[project.pk]), query).content.decode()


def test_filters_by_review_state_and_by_my_favourites_in_the_url(  # type: ignore[no-untyped-def]
    signed_in, project, owner, viewer, teammate, make_video
) -> None:
    approved, changes, undecided, withdrawn = (
        make_video(project, teammate, prompt) for prompt in ("Alpha", "Bravo", "Charlie", "Delta")
    )
    review_decide(generation=approved, actor=owner, state=ReviewState.APPROVED)
    review_decide(generation=changes, actor=owner, state=ReviewState.CHANGES_REQUESTED)
    review_decide(generation=withdrawn, actor=owner, state=ReviewState.APPROVED)
    review_decide(generation=withdrawn, actor=owner, state=ReviewState.NONE)
    favourite_toggle(generation=changes, user=viewer)
    favourite_toggle(generation=undecided, user=teammate)  # someone else's star

    client = signed_in(viewer)

    def shown(**query: str) -> set[str]:
        page = _gallery(client, project, **query)
        return {p for p in ("Alpha", "Bravo", "Charlie", "Delta") if f">{chr(0x2068)}{p}" in page}

    assert shown() == {"Alpha", "Bravo", "Charlie", "Delta"}
    assert shown(review="approved") == {"Alpha"}
    assert shown(review="changes") == {"Bravo"}
    assert shown(review="none") == {"Charlie", "Delta"}
    assert shown(favourite="on") == {"Bravo"}
    assert shown(favourite="on", review="approved") == set()
    # The filter is in the page's own links (live updates and the form).
    page = _gallery(client, project, review="approved", favourite="on")
    assert "review=approved" in page and "favourite=on" in page
    live = client.get(
        reverse("generations:live", args=[project.pk]), {"since": "0", "review": "changes"}
    ).json()
    assert [card["id"] for card in live["cards"]] == [str(changes.pk)]
    assert 'data-review-state="changes"' in live["cards"][0]["html"]


def test_cards_show_the_review_state_and_my_star(
    signed_in, project, owner, viewer, make_video
) -> None:  # type: ignore[no-untyped-def]
    video = make_video(project, owner)
    review_decide(generation=video, actor=owner, state=ReviewState.APPROVED)
    favourite_toggle(generation=video, user=viewer)
    page = _gallery(signed_in(viewer), project)
    assert 'data-review-state="approved"' in page
    assert 'aria-pressed="true"' in page
    page = _gallery(signed_in(owner), project)
    assert 'aria-pressed="false"' in page  # the star is the viewer's, not the owner's


def test_the_gallery_costs_the_same_queries_for_3_cards_as_for_30(  # type: ignore[no-untyped-def]
    signed_in, project, owner, viewer, make_video
) -> None:
    client = signed_in(viewer)

    def count_after(total: int) -> int:
        while project.generations.count() < total:
            video = make_video(project, owner)
            review_decide(generation=video, actor=owner, state=ReviewState.APPROVED)
            favourite_toggle(generation=video, user=viewer)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("projects:detail", args=[project.pk])).status_code == 200
        return len(queries)

    assert count_after(3) == count_after(30)


def test_the_activity_feed_tells_what_happened_newest_first(  # type: ignore[no-untyped-def]
    signed_in, project, owner, teammate, viewer, outsider, make_video
) -> None:
    video = make_video(project, teammate, "Paper boat")
    review_comment_add(generation=video, author=viewer, text="Lovely light", at_ms=1500)
    review_decide(generation=video, actor=owner, state=ReviewState.CHANGES_REQUESTED)
    review_policy_set(project=project, deciders="owners", actor=owner)
    project_rename(project=project, name="Spring film", actor=owner)
    other = project_create(name="B-roll", owner=teammate)
    generation_move(
        generation=make_video(other, teammate, "Moved in"), to_project=project, actor=teammate
    )
    page = signed_in(viewer).get(reverse("reviews:activity", args=[project.pk])).content.decode()
    for text in (
        "commented at 0:01.5 on",
        "Lovely light",
        "requested changes on",
        "let owners only decide on reviews",
        "renamed the project from",
        "to \u2068Spring film\u2069",
        "from \u2068B-roll\u2069 to \u2068Spring film\u2069",
        "asked for a video",
        "created the project",
    ):
        assert text in page, text
    assert page.index("moved") < page.index("renamed") < page.index("commented")
    assert "from \u2068None" not in page
    assert (
        signed_in(outsider).get(reverse("reviews:activity", args=[project.pk])).status_code == 404
    )


def test_activity_pages_by_keyset_without_repeats_or_gaps_in_constant_queries(  # type: ignore[no-untyped-def]
    project, owner, viewer, make_video
) -> None:
    for index in range(7):
        video = make_video(project, owner, f"Take {index}")
        review_comment_add(generation=video, author=viewer, text=f"note {index}")
        review_decide(generation=video, actor=owner, state=ReviewState.APPROVED)
    everything = activity_page(project=project, size=1000).items
    seen: list[tuple[str, str]] = []
    cursor = None
    counts = set()
    while True:
        with CaptureQueriesContext(connection) as queries:
            page = activity_page(project=project, before=cursor, size=4)
        counts.add(len(queries))
        seen += [(item.kind, item.key) for item in page.items]
        if page.older is None:
            break
        cursor = FeedCursor.decode(page.older.encode())
    assert seen == [(item.kind, item.key) for item in everything]
    # Plus the audit log's project creation and its three members joining.
    assert len(seen) == len(set(seen)) == 7 * 3 + 4
    # Four sources, and the projects named by moves when the page has one: never per item.
    assert max(counts) <= 5, counts


def test_a_forged_feed_cursor_is_ignored(signed_in, project, viewer) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(viewer)
    for forged in ("x", "1_video_notauuid", "99999999999999999999999_audit_1", "1_nope_1"):
        answer = client.get(reverse("reviews:activity", args=[project.pk]), {"before": forged})
        assert answer.status_code == 200


def test_a_decision_reaches_open_project_pages_through_the_live_updates(  # type: ignore[no-untyped-def]
    signed_in, project, owner, viewer, make_video
) -> None:
    video = make_video(project, owner)
    client = signed_in(viewer)
    live = reverse("generations:live", args=[project.pk])
    cursor = client.get(live, {"since": "0"}).json()["cursor"]
    # Nothing changed: after the overlap window the finished card is not sent again.
    Generation.objects.filter(pk=video.pk).update(updated_at=video.updated_at - LIVE_OVERLAP * 2)
    assert client.get(live, {"since": cursor}).json()["cards"] == []
    review_decide(generation=video, actor=owner, state=ReviewState.APPROVED)
    cards = client.get(live, {"since": cursor}).json()["cards"]
    assert [card["id"] for card in cards] == [str(video.pk)]
    assert ":approved" in cards[0]["html"] and 'data-review-state="approved"' in cards[0]["html"]
