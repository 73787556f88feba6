"""Deleting a project with a grace period, and restoring it, in real Chromium (issue 13, part 5)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from tests.browser.conftest import DESKTOP, PHONE, Tab, expect
from workspace.projects.models import Project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OpenTab = Callable[..., Tab]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "desktop"])
def test_an_owner_deletes_by_typing_the_name_and_restores_it(
    open_tab: OpenTab, project: Project, owner: User, viewport: dict[str, int]
) -> None:
    tab = open_tab(viewport)
    tab.sign_in(owner.username)
    page = tab.visit(f"/projects/{project.pk}/settings/")
    tab.assert_no_horizontal_overflow()
    confirm = page.get_by_label("Type the project's name to confirm")
    confirm.fill("launch")
    page.get_by_role("button", name="Delete project").click()
    expect(page.get_by_text("Type the project's name exactly as shown")).to_be_visible()
    expect(page.get_by_label("Type the project's name to confirm")).to_have_value("launch")
    assert not Project.objects.get(pk=project.pk).is_deleted

    page.get_by_label("Type the project's name to confirm").fill("Launch film")
    page.get_by_role("button", name="Delete project").click()
    deleted = page.locator(f'[data-deleted-project="{project.pk}"]')
    expect(deleted).to_contain_text("Launch film")
    expect(page.locator(".project-list")).to_have_count(0)
    tab.assert_no_horizontal_overflow()
    deleted.get_by_role("button", name="Restore").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Launch film")
    assert not Project.objects.get(pk=project.pk).is_deleted
    tab.watch.check()
