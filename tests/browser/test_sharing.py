"""Share links and selection ZIPs in real Chromium (issue 13, part 4).

A link is opened signed out in a fresh browser profile: it plays the video, sets no cookie and
leads nowhere else; after revocation and after expiry it shows a clear refusal. A selection of
two videos downloads as one ZIP whose entries are checked.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from tests.browser.conftest import DESKTOP, PHONE, Tab, expect
from workspace.projects.models import Project
from workspace.sharing.models import ShareLink
from workspace.sharing.services import share_link_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OpenTab = Callable[..., Tab]
PROMPT = "A paper boat drifting down a rainy street at dusk"


def _plays(tab: Tab) -> None:
    video = tab.page.locator("video").first
    expect(video).to_be_visible()
    handle = video.element_handle()
    video.evaluate("v => { v.play().catch(e => console.error('play() failed: ' + e)); }")
    tab.page.wait_for_function("v => v.currentTime > 0", arg=handle)
    assert video.evaluate("v => v.error && v.error.code") is None


def _refused(tab: Tab, url: str, state: str) -> None:
    tab.watch.allow(410, r"/s/")
    response = tab.page.goto(url)
    assert response is not None and response.status == 410
    expect(tab.page.locator(f'[data-share-state="{state}"]')).to_be_visible()
    expect(tab.page.get_by_role("heading", level=1)).to_contain_text(
        "revoked" if state == "revoked" else "expired"
    )
    expect(tab.page.locator("video")).to_have_count(0)


def test_a_share_link_plays_signed_out_and_is_refused_after_revocation_and_expiry(
    open_tab: OpenTab,
    project: Project,
    owner: User,
    teammate: User,
    make_videos,  # type: ignore[no-untyped-def]
) -> None:
    (video,) = make_videos(project, teammate, PROMPT)
    member = open_tab(DESKTOP)
    member.sign_in(teammate.username)
    page = member.visit(f"/projects/{project.pk}/")
    bar = page.locator("[data-selection-bar]")
    expect(bar).to_be_hidden()
    page.locator(f"#gen-{video.pk}").get_by_label("Select").check()
    expect(bar).to_be_visible()
    bar.get_by_role("button", name="Share 1").click()
    page.get_by_label("Link works for").select_option("7")
    page.get_by_label("Show each video's prompt on the shared page").check()
    page.get_by_role("button", name="Create link").click()
    link_field = page.get_by_label("The new share link")
    expect(link_field).to_be_visible()
    url = link_field.input_value()
    member.assert_no_horizontal_overflow()
    member.watch.check()

    for viewport in (DESKTOP, PHONE):
        stranger = open_tab(viewport)  # a fresh profile: no account, no cookie
        page = stranger.visit(url.replace(stranger.base_url, ""))
        expect(page.get_by_text(PROMPT)).to_be_visible()
        _plays(stranger)
        # Nothing leads into the app, and nothing was stored in the browser.
        hrefs = page.locator("a[href]").evaluate_all("els => els.map(a => a.getAttribute('href'))")
        assert all("/s/" in h and "download=1" in h for h in hrefs), hrefs
        assert page.context.cookies() == []
        stranger.assert_no_horizontal_overflow()
        stranger.watch.check()
    assert ShareLink.objects.get().open_count == 2

    # Revoked from the settings page: the stranger's next visit is refused.
    page = member.visit(f"/projects/{project.pk}/settings/")
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator(".messages")).to_contain_text("revoked")
    _refused(stranger, url, "revoked")
    stranger.assert_no_horizontal_overflow()

    # Another link, past its expiry.
    issued = share_link_create(
        project=project,
        generation_ids=[str(video.pk)],
        actor=owner,
        lifetime_days=1,
        show_prompt=False,
    )
    ShareLink.objects.filter(pk=issued.link.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    late = open_tab(PHONE)
    _refused(late, f"{late.base_url}/s/{issued.token}/", "expired")
    late.assert_no_horizontal_overflow()


def test_select_two_videos_by_keyboard_and_download_them_as_one_zip(
    open_tab: OpenTab,
    project: Project,
    viewer: User,
    teammate: User,
    make_videos,  # type: ignore[no-untyped-def]
) -> None:
    first, second, _third = make_videos(project, teammate, PROMPT, "Harbour lights", "Fog")
    for viewport in (PHONE, DESKTOP):
        tab = open_tab(viewport)
        tab.sign_in(viewer.username)
        page = tab.visit(f"/projects/{project.pk}/")
        for generation in (first, second):
            box = page.locator(f"#gen-{generation.pk}").get_by_label("Select")
            box.focus()
            page.keyboard.press("Space")
            expect(box).to_be_checked()
        bar = page.locator("[data-selection-bar]")
        expect(bar.locator("[data-selection-count]")).to_have_text("2 videos selected")
        # A viewer is told why there is no Share button.
        expect(bar).to_contain_text("Viewers cannot share")
        tab.assert_no_horizontal_overflow()
        with page.expect_download() as downloading:
            bar.get_by_role("button", name="Download 2 as zip").click()
        download = downloading.value
        assert download.suggested_filename.startswith("launch-film-")
        assert download.suggested_filename.endswith("-2-videos.zip")
        archive = zipfile.ZipFile(io.BytesIO(download.path().read_bytes()))
        assert archive.testzip() is None
        names = sorted(archive.namelist())
        assert len(names) == 2
        assert any(
            f"-a-paper-boat-drifting-down-a-rainy-{str(first.pk)[:8]}.mp4" in n for n in names
        )
        assert any(f"harbour-lights-{str(second.pk)[:8]}.mp4" in n for n in names)
        assert all(n.startswith("launch-film-") and n.endswith(".mp4") for n in names)
        assert archive.read(sorted(archive.namelist())[0])[4:8] == b"ftyp"  # real MP4s
        tab.watch.check()
