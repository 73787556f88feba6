"""Version stacks in real Chromium (issue 12): extending a video with its new length and price
shown before sending, and picking one take of a set of variations, at desktop and phone widths."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from tests.browser.conftest import DESKTOP, PHONE, Tab, expect
from tests.generations.versions_helpers import changeable  # noqa: F401
from workspace.generations.models import Generation, Operation, Status
from workspace.generations.submission import generation_submit
from workspace.projects.models import Project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OpenTab = Callable[..., Tab]


@pytest.mark.usefixtures("changeable")
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_extend_a_video_seeing_length_and_price_first(
    open_tab: OpenTab,
    project: Project,
    teammate: User,
    make_videos,  # type: ignore[no-untyped-def]
    viewport: dict[str, int],
) -> None:
    [source] = make_videos(project, teammate, "A paper boat drifting down a rainy street")
    assert source.status == Status.COMPLETED and source.provider_job_id
    tab = open_tab(viewport)
    tab.sign_in(teammate.username)
    page = tab.visit(f"/projects/{project.pk}/generations/{source.pk}/")
    form = page.locator("#change-extend")
    form.locator("summary").click()
    summary = form.locator("[data-change-summary]")
    expect(summary).to_contain_text("New length: 8 seconds")
    expect(summary).to_contain_text("$0.40")
    form.get_by_label("Seconds to add").select_option("8")
    # Before anything is sent: the clip's length after the extension and what it costs.
    expect(summary).to_contain_text("New length: 12 seconds (4 + 8)")
    expect(summary).to_contain_text("Price: $0.80")
    tab.assert_no_horizontal_overflow()
    form.get_by_label("What happens next").fill("The boat reaches the open sea")
    form.get_by_role("button", name="Send the extension").click()

    extension = Generation.objects.get(parent=source)
    assert (extension.operation, extension.seconds, extension.total_seconds) == (
        Operation.EXTEND,
        8,
        12,
    )
    expect(page).to_have_url(re.compile(rf"/generations/{extension.pk}/$"))
    panel = page.locator("[data-stack-panel]")
    expect(panel.get_by_text("Version 2 of 2")).to_be_visible()
    expect(panel).to_contain_text("An extension (+8 s, 12 s in all) of")
    tab.assert_no_horizontal_overflow()
    # Up the stack from the keyboard, then down again by the link.
    page.locator("h1").click()
    page.keyboard.press("Alt+ArrowUp")
    expect(page).to_have_url(re.compile(rf"/generations/{source.pk}/$"))
    expect(panel.get_by_text("Version 1 of 2")).to_be_visible()
    panel.get_by_role("link", name="Next version").click()
    expect(page).to_have_url(re.compile(rf"/generations/{extension.pk}/$"))
    tab.assert_no_horizontal_overflow()
    # The gallery shows the stack once: its newest version, with the count.
    page = tab.visit(f"/projects/{project.pk}/")
    cards = page.locator("#gallery .gen-card")
    expect(cards).to_have_count(1)
    expect(cards.first).to_have_id(f"gen-{extension.pk}")
    expect(cards.first.locator(".stack-count")).to_have_text(re.compile(r"2 versions"))
    tab.assert_no_horizontal_overflow()
    tab.watch.check()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_pick_a_take_from_a_set_of_variations(
    open_tab: OpenTab,
    project: Project,
    teammate: User,
    simulator,  # type: ignore[no-untyped-def]
    run_workers,  # type: ignore[no-untyped-def]
    viewport: dict[str, int],
) -> None:
    first = generation_submit(
        project=project,
        user=teammate,
        prompt="A kite over the dunes at noon",
        model="sora-2",
        size="1280x720",
        seconds=4,
        takes=3,
    )
    set_ = Generation.objects.filter(take_set=first.take_set)
    run_workers(lambda: all(g.is_terminal for g in set_.all()))
    takes = list(set_.order_by("created_at", "id"))
    assert [t.status for t in takes] == [Status.COMPLETED] * 3

    tab = open_tab(viewport)
    tab.sign_in(teammate.username)
    page = tab.visit(f"/projects/{project.pk}/")
    card = page.locator("#gallery .gen-card")
    expect(card).to_have_count(1)
    expect(card.locator(".stack-count")).to_have_text(re.compile(r"3 takes"))
    card.locator(".stack-count a").click()
    expect(page).to_have_url(re.compile(rf"/generations/{takes[0].pk}/$"))
    page = tab.visit(f"/projects/{project.pk}/generations/{takes[0].pk}/")  # as a link shares it
    listed = page.locator(".takes > li")
    expect(listed).to_have_count(3)
    expect(page.get_by_role("button", name=re.compile("Pick this take"))).to_have_count(3)
    tab.assert_no_horizontal_overflow()
    listed.nth(1).get_by_role("button", name=re.compile("Pick this take")).click()
    expect(page.get_by_text("Picked: the gallery shows this take for its set.")).to_be_visible()
    expect(page.locator(f'[data-take="{takes[1].pk}"] [data-pick]')).to_have_text("The pick")
    expect(page.get_by_role("button", name=re.compile("Pick this take"))).to_have_count(2)
    tab.assert_no_horizontal_overflow()
    assert [t.pk for t in set_.filter(is_pick=True)] == [takes[1].pk]

    page = tab.visit(f"/projects/{project.pk}/")
    card = page.locator("#gallery .gen-card")
    expect(card).to_have_count(1)
    expect(card.first).to_have_id(f"gen-{takes[1].pk}")
    expect(card.locator(".stack-count")).to_have_text(re.compile(r"3 takes · the pick"))
    tab.assert_no_horizontal_overflow()
    tab.watch.check()
