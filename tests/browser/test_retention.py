"""An owner sets the project's retention policy; removed videos read "files removed" (issue 15,
part 4), on a desktop and a phone."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from tests.browser.conftest import DESKTOP, PHONE, Tab, expect
from tests.generations.test_retention import video
from workspace.generations.models import Generation, RetentionPolicy
from workspace.generations.retention import retention_apply
from workspace.projects.models import Project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_an_owner_sets_retention_and_removed_videos_say_so(
    open_tab: Callable[..., Tab],
    project: Project,
    owner: User,
    teammate: User,
    viewport,  # type: ignore[no-untyped-def]
) -> None:
    old = video(project, teammate, days_ago=40, prompt="Fog over the harbour")
    video(project, teammate, days_ago=2, prompt="Sun on the pier")
    tab = open_tab(viewport)
    tab.sign_in(owner.username)
    page = tab.visit(f"/projects/{project.pk}/settings/")
    panel = page.locator("#retention")
    expect(panel).to_contain_text("The organisation\u2019s default: files are kept.")
    panel.get_by_label("This project's own").check()
    panel.get_by_label("Remove files of videos older than (days)").fill("30")
    panel.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Retention settings saved.")
    expect(panel.locator("[data-retention-policy]")).to_contain_text(
        "files of videos older than 30 days are removed"
    )
    expect(panel.locator("[data-retention-due]")).to_contain_text("1 video")
    tab.assert_no_horizontal_overflow()
    assert RetentionPolicy.objects.get(project=project).remove_after_days == 30

    assert retention_apply(dry_run=False).count == 1
    page = tab.visit(f"/projects/{project.pk}/")
    card = page.locator(f"#gen-{old.pk}")
    expect(card.locator("[data-files-removed]")).to_contain_text("by the retention policy")
    expect(card.locator("video")).to_have_count(0)
    tab.assert_no_horizontal_overflow()
    page = tab.visit(f"/projects/{project.pk}/generations/{old.pk}/")
    expect(page.locator(".media-card [data-files-removed]")).to_contain_text(
        "older than 30 days"
    )
    expect(page.locator(".media-card video")).to_have_count(0)
    tab.assert_no_horizontal_overflow()
    tab.watch.check()
    assert Generation.objects.get(pk=old.pk).files_removed_at is not None
