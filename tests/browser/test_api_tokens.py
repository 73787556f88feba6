"""A member creates an API token in a real browser, uses it, and revokes it; at both widths."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from django.contrib.auth.models import User

from tests.browser.conftest import DESKTOP, PHONE, Tab, expect
from workspace.api.models import ApiToken
from workspace.projects.models import Project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_a_member_creates_uses_and_revokes_a_token(
    open_tab: Callable[..., Tab], teammate: User, project: Project, live_server, viewport  # type: ignore[no-untyped-def]
) -> None:
    tab = open_tab(viewport)
    tab.sign_in(teammate.username)
    page = tab.visit("/api-tokens/")
    tab.assert_no_horizontal_overflow()
    page.get_by_label("Name").fill("render script on a phone-sized screen with a long name")
    page.get_by_label("Project").select_option(label=project.name)
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token").inner_text().strip()
    assert secret.startswith("rh_")
    tab.assert_no_horizontal_overflow()
    tab.watch.check()

    api = httpx.Client(base_url=f"{live_server.url}/v1", headers={"Authorization": f"Bearer {secret}"})
    assert api.get("/videos").status_code == 200

    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke render script").click()
    expect(page.get_by_text("Scripts using it now get a 401")).to_be_visible()
    tab.assert_no_horizontal_overflow()
    tab.watch.check()
    assert ApiToken.objects.get().revoked_at is not None
    assert api.get("/videos").status_code == 401
    # Reloading shows the token as revoked, never the secret again.
    page = tab.visit("/api-tokens/")
    assert secret not in page.content()
