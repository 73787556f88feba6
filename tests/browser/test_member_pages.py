"""What members and admins do in a real browser, at desktop and phone widths.

Every page visited must load without a console error (a Content-Security-Policy violation is
one), an uncaught exception or a failed request; see ``conftest.Watch``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from tests.browser.conftest import DESKTOP, PHONE, Tab, expect
from tests.conftest import PASSWORD
from workspace.billing.models import Budget, Scope
from workspace.billing.periods import Period
from workspace.core.models import Notification
from workspace.generations.models import Generation, Status
from workspace.generations.submission import generation_submit
from workspace.projects.models import Membership, Project, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])
PROMPT = "A paper boat drifting down a rainy street at dusk"

OpenTab = Callable[..., Tab]


@WIDTHS
def test_an_owner_signs_in_creates_a_project_and_adds_an_editor_and_a_viewer(
    open_tab: OpenTab,
    owner: User,
    teammate: User,
    viewer: User,
    channel,
    viewport,  # type: ignore[no-untyped-def]
) -> None:
    tab = open_tab(viewport)
    tab.sign_in(owner.username)
    page = tab.page
    expect(page.get_by_role("heading", level=1)).to_have_text("Projects")
    tab.assert_no_horizontal_overflow()

    page.get_by_label("Project name").fill("Launch film")
    page.get_by_label("Description (optional)").fill("Thirty seconds for the spring launch.")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Launch film")
    expect(page.get_by_role("status")).to_contain_text("Project “Launch film” created.")
    tab.assert_no_horizontal_overflow()

    page.get_by_role("link", name="Members", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Members")
    for user, role in ((teammate, Role.EDITOR), (viewer, Role.VIEWER)):
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Role", exact=True).select_option(role.value)
        page.get_by_role("button", name="Add member").click()
        expect(page.get_by_role("status")).to_contain_text(f"{user.username} joined as {role}.")
    expect(page.get_by_role("heading", name="3 members")).to_be_visible()
    expect(page.get_by_label(f"Role of {viewer.username}")).to_have_value(Role.VIEWER.value)
    tab.assert_no_horizontal_overflow()
    tab.watch.check()

    project = Project.objects.get(name="Launch film")
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"olivia": Role.OWNER, "tariq": Role.EDITOR, "vera": Role.VIEWER}


def test_a_member_generates_a_video_watches_the_card_become_a_player_plays_and_seeks(
    open_tab: OpenTab,
    project: Project,
    teammate: User,
    simulator,
    run_workers,  # type: ignore[no-untyped-def]
) -> None:
    tab = open_tab(DESKTOP)
    tab.sign_in(teammate.username)
    page = tab.visit(f"/projects/{project.pk}/")
    page.get_by_label("Prompt").fill(PROMPT)
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_role("status")).to_contain_text("Queued. Watch its progress below.")

    generation = Generation.objects.get()
    card = page.locator(f"#gen-{generation.pk}")
    expect(card.get_by_role("progressbar")).to_be_visible()
    expect(card.locator("video")).to_have_count(0)

    # The workers run here while Chromium, a separate process, keeps polling the gallery.
    run_workers(lambda: Generation.objects.get(pk=generation.pk).is_terminal)
    assert Generation.objects.get(pk=generation.pk).status == Status.COMPLETED

    video = card.locator("video")
    expect(video).to_be_visible(timeout=20_000)  # the gallery polls every 2 s, with backoff
    expect(card.locator("[data-status-label]")).to_have_text("Ready")
    expect(card.get_by_role("progressbar")).to_have_count(0)

    ranges: list[str] = []  # what the server answered the player's range requests
    page.on(
        "response",
        lambda r: (
            r.url.endswith("/files/video") and ranges.append(r.headers.get("content-range", ""))
        ),
    )
    handle = video.element_handle()
    video.evaluate("v => { v.play().catch(e => console.error('play() failed: ' + e)); }")
    page.wait_for_function("v => v.currentTime > 0", arg=handle)
    duration = video.evaluate("v => v.duration")
    assert 3 <= duration <= 5, duration  # a 4-second video

    target = round(duration * 0.75, 2)
    video.evaluate("(v, t) => { v.pause(); v.currentTime = t; }", target)
    page.wait_for_function("v => !v.seeking && v.readyState >= 2", arg=handle)
    state = video.evaluate("v => ({time: v.currentTime, error: v.error && v.error.code})")
    assert abs(state["time"] - target) < 0.2, state
    assert state["error"] is None, state
    # The player asked for byte ranges and got them: seeking in a long video depends on it.
    assert any(r.startswith("bytes 0-") for r in ranges), ranges
    tab.watch.check()


def test_a_generation_that_would_exceed_the_budget_is_refused_with_the_reason(
    open_tab: OpenTab, project: Project, teammate: User
) -> None:
    # sora-2 at 1280x720 for 4 s costs $0.40 at list price.
    Budget.objects.create(scope=Scope.MEMBER, user=teammate, period=Period.MONTH, limit_cents=30)
    for viewport in (DESKTOP, PHONE):
        tab = open_tab(viewport)
        tab.sign_in(teammate.username)
        page = tab.visit(f"/projects/{project.pk}/")
        page.get_by_label("Prompt").fill(PROMPT)
        page.get_by_role("button", name="Generate").click()

        refusal = page.get_by_role("alert")
        expect(refusal).to_contain_text("Your monthly budget would be exceeded")
        expect(refusal).to_contain_text("of $0.30 ($0.30 left), and this video costs $0.40.")
        expect(page.get_by_label("Prompt")).to_have_value(PROMPT)
        # Redirected back (post/redirect/get): a reload would not send the form again.
        assert page.url.split("#")[0].endswith(f"/projects/{project.pk}/"), page.url
        tab.assert_no_horizontal_overflow()
        tab.watch.check()
    assert not Generation.objects.exists()


def test_a_viewer_watches_the_gallery_but_finds_nothing_that_writes(
    open_tab: OpenTab,
    project: Project,
    teammate: User,
    viewer: User,
    make_videos,  # type: ignore[no-untyped-def]
) -> None:
    (done,) = make_videos(project, teammate, PROMPT)
    # One more still waiting: its Cancel button is for editors only.
    waiting = generation_submit(
        project=project,
        user=teammate,
        prompt="A kite over dunes",
        model="sora-2",
        size="1280x720",
        seconds=4,
    )
    for viewport in (DESKTOP, PHONE):
        tab = open_tab(viewport)
        tab.sign_in(viewer.username)
        page = tab.visit(f"/projects/{project.pk}/")
        expect(page.locator(f"#gen-{done.pk} video")).to_be_visible()
        expect(page.locator(f"#gen-{waiting.pk}")).to_contain_text("Queued")
        expect(page.get_by_text("You are a viewer here")).to_be_visible()
        expect(page.get_by_role("button", name="Generate")).to_have_count(0)
        expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
        # Nothing in the page changes a video: besides the videos search (a GET), its only
        # forms are the viewer's own stars (viewers may star and comment, issue 13).
        expect(page.locator("main form:not([method=get]):not([data-favourite-form])")).to_have_count(0)
        tab.assert_no_horizontal_overflow()

        page = tab.visit(f"/projects/{project.pk}/members/")
        expect(page.locator("main form")).to_have_count(0)
        expect(page.locator("main select, main textarea, main input")).to_have_count(0)
        tab.assert_no_horizontal_overflow()
        page = tab.visit(f"/projects/{project.pk}/generations/{done.pk}/")
        # The star and the comment form, nothing else: no Move, no Approve.
        expect(page.locator("main form:not([data-favourite-form]):not(#comment-form)")).to_have_count(0)
        expect(page.locator("main form")).to_have_count(2)
        expect(page.get_by_role("button", name="Approve")).to_have_count(0)
        tab.assert_no_horizontal_overflow()
        expect(page.locator("main video")).to_be_visible()
        tab.watch.check()


def test_the_admin_usage_panel_draws_its_charts(
    open_tab: OpenTab,
    project: Project,
    teammate: User,
    make_videos,  # type: ignore[no-untyped-def]
) -> None:
    make_videos(project, teammate, PROMPT, "A lighthouse in fog [fail]")
    User.objects.create_user(username="ada", password=PASSWORD, is_staff=True, is_superuser=True)
    tab = open_tab(DESKTOP)
    tab.sign_in("ada")
    page = tab.visit("/admin/billing/usagepanel/")
    expect(page.get_by_role("heading", name="Spend per day by model")).to_be_visible()
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(4)
    for index in range(4):
        chart = charts.nth(index)
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        # A bar chart of one member or project is one bar high.
        assert box and box["width"] > 200 and box["height"] > 20, box
    # Bars were drawn for what was spent: the member and the project each have one.
    for title in ("By member", "By project"):
        section = page.locator("section", has=page.get_by_role("heading", name=title))
        expect(section.locator("svg.chart rect").first).to_be_visible()
        expect(section.locator("table")).to_contain_text("$0.40")
    tab.watch.check()


def test_no_member_page_scrolls_sideways_on_a_phone_or_a_desktop(
    open_tab: OpenTab,
    project: Project,
    owner: User,
    make_videos,  # type: ignore[no-untyped-def]
) -> None:
    # A budget nearly used up, so usage and notifications have something to show.
    Budget.objects.create(scope=Scope.MEMBER, user=owner, period=Period.MONTH, limit_cents=100)
    done, failed = make_videos(
        project, owner, PROMPT * 3, "A lighthouse in fog [fail] " + "with a long prompt " * 8
    )
    assert done.status == Status.COMPLETED and failed.status == Status.FAILED
    assert Notification.objects.filter(user=owner).exists()
    pages = (
        "/",
        f"/projects/{project.pk}/",
        f"/projects/{project.pk}/generations/{done.pk}/",
        f"/projects/{project.pk}/generations/{failed.pk}/",
        f"/projects/{project.pk}/members/",
        f"/projects/{project.pk}/settings/",
        f"/projects/{project.pk}/activity/",
        "/?archived=1",
        "/usage/",
        "/notifications/",
        "/api-tokens/",
    )
    for viewport in (PHONE, DESKTOP):
        tab = open_tab(viewport)
        tab.visit("/accounts/sign-in/")  # the one page a signed-out visitor sees
        tab.assert_no_horizontal_overflow()
        tab.sign_in(owner.username)
        for path in pages:
            tab.visit(path)
            tab.assert_no_horizontal_overflow()
        tab.watch.check()
