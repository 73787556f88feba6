"""An owner renames, archives and unarchives a project in a real browser (issue 13, part 5)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from tests.browser.conftest import DESKTOP, PHONE, Tab, expect
from workspace.projects.models import Project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_an_owner_renames_archives_and_unarchives_a_project(
    open_tab: Callable[..., Tab],
    project: Project,
    owner: User,
    viewport,  # type: ignore[no-untyped-def]
) -> None:
    tab = open_tab(viewport)
    tab.sign_in(owner.username)
    page = tab.visit(f"/projects/{project.pk}/")
    page.get_by_role("link", name="Settings", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Project settings")
    tab.assert_no_horizontal_overflow()

    page.get_by_label("New name").fill("Spring film")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("status")).to_contain_text("The project is now called “Spring film”.")

    page.get_by_role("button", name="Archive").click()
    expect(page.get_by_role("status")).to_contain_text("“Spring film” is archived and read-only.")
    tab.assert_no_horizontal_overflow()

    page = tab.visit("/")
    project_link = page.get_by_role("link", name="Spring film")
    expect(project_link).to_have_count(0)
    page.get_by_role("link", name="Show archived (1)").click()
    expect(project_link).to_be_visible()
    project_link.click()
    expect(page.locator("[data-archived]")).to_contain_text("read-only")
    expect(page.get_by_label("Prompt")).to_have_count(0)

    page.get_by_role("link", name="Unarchive it").click()
    page.get_by_role("button", name="Unarchive").click()
    expect(page.get_by_role("status")).to_contain_text("“Spring film” is back in use.")
    tab.watch.check()
    refreshed = Project.objects.get(pk=project.pk)
    assert (refreshed.name, refreshed.archived_at) == ("Spring film", None)
