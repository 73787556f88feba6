"""Reviewing videos in real Chromium (issue 13, part 3): a comment at a timecode that seeks the
player when clicked, an approval that shows on the gallery card, and stars, at desktop and
phone widths without horizontal overflow."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from tests.browser.conftest import DESKTOP, PHONE, Tab, expect
from workspace.core.models import Notification
from workspace.projects.models import Project
from workspace.reviews.models import Comment, Favourite, ReviewDecision

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OpenTab = Callable[..., Tab]
VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])


def _ready_player(page):  # type: ignore[no-untyped-def]
    """The page's player once it knows the video's length (it can seek from then on)."""
    player = page.locator("video.player")
    handle = player.element_handle()
    player.evaluate("v => { if (v.readyState < 1) v.load(); }")
    page.wait_for_function("v => v.readyState >= 1", arg=handle)
    return player, handle


@VIEWPORTS
def test_a_viewer_comments_at_the_players_time_and_the_timecode_seeks_the_player(
    open_tab: OpenTab,
    project: Project,
    viewer: User,
    teammate: User,
    make_videos,  # type: ignore[no-untyped-def]
    viewport,  # type: ignore[no-untyped-def]
) -> None:
    (video,) = make_videos(project, teammate, "A paper boat drifting down a rainy street")
    tab = open_tab(viewport)
    tab.sign_in(viewer.username)
    page = tab.visit(f"/projects/{project.pk}/generations/{video.pk}/")

    # An empty comment: the error beside the field, the time typed kept, nothing saved.
    page.get_by_label("At (optional)").fill("0:01")
    page.get_by_role("button", name="Comment", exact=True).click()
    expect(page.locator("#comment-form")).to_contain_text("the comment is empty")
    expect(page.get_by_label("At (optional)")).to_have_value("0:01")
    assert not Comment.objects.exists()

    player, handle = _ready_player(page)
    player.evaluate("v => { v.pause(); v.currentTime = 2.5; }")
    page.wait_for_function("v => !v.seeking && Math.abs(v.currentTime - 2.5) < 0.1", arg=handle)
    page.get_by_role("button", name="Use the player").click()
    expect(page.get_by_label("At (optional)")).to_have_value("0:02.5")
    page.get_by_label("Comment", exact=True).fill(f"@{teammate.username} the boat tilts here")
    page.get_by_role("button", name="Comment", exact=True).click()

    comment = page.locator(".comment").filter(has_text="the boat tilts here")
    expect(comment).to_be_visible()
    saved = Comment.objects.get()
    assert saved.at_ms == 2500 and saved.author == viewer
    assert page.url.endswith(f"#comment-{saved.pk}")
    assert Notification.objects.filter(user=teammate, url__endswith=f"#comment-{saved.pk}").exists()

    # Clicking the timecode seeks the page's player; it does not leave the page.
    player, handle = _ready_player(page)
    player.evaluate("v => { v.pause(); v.currentTime = 0; }")
    page.wait_for_function("v => !v.seeking && v.currentTime < 0.1", arg=handle)
    detail_url = page.url.split("#")[0]
    comment.get_by_role("link", name="at 0:02.5").click()
    page.wait_for_function("v => !v.seeking && Math.abs(v.currentTime - 2.5) < 0.1", arg=handle)
    assert page.url.split("#")[0] == detail_url
    tab.assert_no_horizontal_overflow()
    tab.watch.check()


@VIEWPORTS
def test_an_approval_shows_on_the_card_and_stars_toggle_in_place(
    open_tab: OpenTab,
    project: Project,
    owner: User,
    teammate: User,
    make_videos,  # type: ignore[no-untyped-def]
    viewport,  # type: ignore[no-untyped-def]
) -> None:
    (video,) = make_videos(project, owner, "Waves at dawn over a quiet harbour " + "W" * 200)
    tab = open_tab(viewport)
    tab.sign_in(teammate.username)
    page = tab.visit(f"/projects/{project.pk}/generations/{video.pk}/")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("[data-review-current]")).to_contain_text("Approved")
    expect(page.locator("[data-review-current]")).to_contain_text(f"by {teammate.username}")
    assert ReviewDecision.objects.get(is_current=True).state == "approved"
    tab.assert_no_horizontal_overflow()

    page = tab.visit(f"/projects/{project.pk}/")
    card = page.locator(f"#gen-{video.pk}")
    expect(card.locator("[data-review-state]")).to_have_text("Review: Approved")
    star = card.locator("[data-favourite]")
    expect(star).to_have_attribute("aria-pressed", "false")
    with page.expect_response(lambda r: r.url.endswith("/favourite/")):
        star.click()
    expect(star).to_have_attribute("aria-pressed", "true")
    assert Favourite.objects.filter(user=teammate, generation=video).exists()
    tab.assert_no_horizontal_overflow()

    # The filters find it, in the URL.
    page.get_by_label("Review", exact=True).select_option("approved")
    page.get_by_label("My favourites only").check()
    page.get_by_role("button", name="Find").click()
    expect(page.locator(f"#gen-{video.pk}")).to_be_visible()
    assert "review=approved" in page.url and "favourite=on" in page.url

    for path in (f"/projects/{project.pk}/activity/", f"/projects/{project.pk}/settings/"):
        page = tab.visit(path)
        tab.assert_no_horizontal_overflow()
    expect(page.get_by_text("owners and editors")).to_be_visible()
    tab.watch.check()
