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


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_a_member_sets_a_webhook_and_reads_its_delivery_log(
    open_tab: Callable[..., Tab], teammate: User, project: Project, live_server, viewport  # type: ignore[no-untyped-def]
) -> None:
    import uuid

    from django.utils import timezone

    from workspace.api.models import WebhookAttempt, WebhookEvent
    from workspace.api.services import token_create

    token = token_create(
        owner=teammate, name="nightly renders", project=project, can_write=True, expires_at=None
    ).token
    tab = open_tab(viewport)
    tab.sign_in(teammate.username)
    page = tab.visit("/api-tokens/")
    tab.watch.allow(400, r"/api-tokens/\d+/webhook/$")  # the refused URL below, on purpose
    page.locator("summary", has_text="of nightly renders").click()
    page.get_by_label("Webhook URL").fill("https://10.0.0.7/hook")
    page.get_by_role("button", name="Save webhook of nightly renders").click()
    expect(page.get_by_text("leads to a private address")).to_be_visible()
    # The refused URL is still in the field, to correct rather than retype.
    expect(page.get_by_label("Webhook URL")).to_have_value("https://10.0.0.7/hook")
    page.get_by_label("Webhook URL").fill("https://93.184.215.14/a/rather/long/path/for/a/receiver")
    page.get_by_role("button", name="Save webhook of nightly renders").click()
    secret = page.locator("#new-webhook-secret").inner_text().strip()
    assert secret.startswith("whsec_")
    tab.assert_no_horizontal_overflow()
    tab.watch.check()

    event = WebhookEvent.objects.create(
        token=token, event_id="evt_0123456789abcdef", event_type="video.completed",
        video_id=uuid.uuid4(), state=WebhookEvent.State.DELIVERED,
    )
    for number, status, error in ((1, 503, "The receiver answered 503."), (2, 200, "")):
        WebhookAttempt.objects.create(
            event=event, number=number, started_at=timezone.now(), duration_ms=12,
            status_code=status, error=error,
        )
    page = tab.visit("/api-tokens/")
    page.locator("summary", has_text="Webhook and deliveries").click()
    expect(page.get_by_text("HTTP 503")).to_be_visible()
    expect(page.get_by_text("HTTP 200")).to_be_visible()
    assert secret not in page.content()
    tab.assert_no_horizontal_overflow()
    tab.watch.check()
