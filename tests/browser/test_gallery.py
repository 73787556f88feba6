"""The project gallery as a team lives in it, in real Chromium (issue 13).

Layout defects are checked at desktop and phone widths; every page visited must load without a
console error (a CSP violation is one), an uncaught exception or a failed request.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from tests.browser.conftest import DESKTOP, PHONE, Tab, expect
from tests.conftest import PASSWORD
from workspace.billing.models import Budget, Scope
from workspace.billing.periods import Period
from workspace.generations.models import Generation
from workspace.generations.submission import generation_submit
from workspace.projects.models import Project, Role
from workspace.projects.services import membership_add, project_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OpenTab = Callable[..., Tab]
PROMPT = "A paper boat drifting down a rainy street at dusk"
# The longest name a project may have, with nothing to break it at.
LONG_NAME = "Storyboard" + "x" * 110


def test_a_long_unbroken_project_name_widens_no_page_at_390px_or_desktop(
    open_tab: OpenTab,
    project: Project,
    owner: User,
    make_videos,  # type: ignore[no-untyped-def]
) -> None:
    owner.is_staff = owner.is_superuser = True  # the admin usage panel is one of the pages
    owner.save()
    Budget.objects.create(scope=Scope.MEMBER, user=owner, period=Period.MONTH, limit_cents=10_000)
    long_project = project_create(name=LONG_NAME, owner=owner)
    make_videos(long_project, owner, PROMPT, "W" * 300)
    make_videos(project, owner, PROMPT)
    pages = (
        "/",
        f"/projects/{long_project.pk}/",
        f"/projects/{long_project.pk}/members/",
        "/usage/",
        "/admin/billing/usagepanel/",
        "/admin/projects/project/",
    )
    for viewport in (PHONE, DESKTOP):
        tab = open_tab(viewport)
        tab.sign_in(owner.username)
        for path in pages:
            page = tab.visit(path)
            if path in ("/usage/", "/admin/billing/usagepanel/"):
                expect(page.locator("main, #content").first).to_contain_text(LONG_NAME[:40])
            tab.assert_no_horizontal_overflow()
        tab.watch.check()


def test_a_refused_submission_leaves_the_browser_on_the_project_page(
    open_tab: OpenTab, project: Project, teammate: User
) -> None:
    Budget.objects.create(scope=Scope.MEMBER, user=teammate, period=Period.MONTH, limit_cents=30)
    tab = open_tab(PHONE)
    tab.sign_in(teammate.username)
    page = tab.visit(f"/projects/{project.pk}/")
    page.get_by_label("Prompt").fill(PROMPT)
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_role("alert")).to_contain_text("budget would be exceeded")
    assert "/generations/" not in page.url, page.url
    # A reload is a plain GET of the project page: no resubmission, and the error is gone.
    page.reload()
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.get_by_label("Prompt")).to_have_value("")
    assert not Generation.objects.exists()
    tab.assert_no_horizontal_overflow()
    tab.watch.check()


def test_success_banners_do_not_pile_up(
    open_tab: OpenTab, project: Project, teammate: User
) -> None:
    tab = open_tab(DESKTOP)
    tab.sign_in(teammate.username)
    page = tab.visit(f"/projects/{project.pk}/")
    for number in range(1, 5):
        page.get_by_label("Prompt").fill(f"{PROMPT}, take {number}")
        page.get_by_role("button", name="Generate").click()
        expect(page.locator(f".gen-card:has-text('take {number}')")).to_have_count(1)
        expect(page.locator(".messages .message")).to_have_count(1)
    assert Generation.objects.count() == 4
    tab.watch.check()


def test_a_sole_owner_refused_leaving_stays_on_the_members_page(
    open_tab: OpenTab, project: Project, owner: User
) -> None:
    tab = open_tab(PHONE)
    tab.sign_in(owner.username)
    page = tab.visit(f"/projects/{project.pk}/members/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Leave").click()
    expect(page.get_by_role("status")).to_contain_text("must keep at least one owner")
    assert page.url.endswith(f"/projects/{project.pk}/members/"), page.url
    tab.watch.check()


def test_a_teammate_in_a_second_project_of_the_same_name_is_refused(
    open_tab: OpenTab, project: Project, outsider: User
) -> None:
    membership_add(project=project, username=outsider.username, role=Role.VIEWER, actor=None)
    tab = open_tab(PHONE)
    tab.sign_in(outsider.username, PASSWORD)
    page = tab.visit("/")
    page.get_by_label("Project name").fill(project.name.upper())
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_text("There is already a project called")).to_be_visible()
    assert Project.objects.count() == 1
    tab.assert_no_horizontal_overflow()
    tab.watch.check()


def test_a_teammates_submission_appears_live_on_another_members_open_page(
    open_tab: OpenTab,
    project: Project,
    teammate: User,
    viewer: User,
    simulator,
    run_workers,  # type: ignore[no-untyped-def]
) -> None:
    watcher = open_tab(PHONE)
    watcher.sign_in(viewer.username)
    seen = watcher.visit(f"/projects/{project.pk}/")
    expect(seen.get_by_text("No videos yet.")).to_be_visible()
    # A reload would lose this: the card must come without one.
    seen.evaluate("() => { window.__notReloaded = true; }")
    requests: list[str] = []
    seen.on("request", lambda r: requests.append(r.url))

    author = open_tab(DESKTOP)
    author.sign_in(teammate.username)
    page = author.visit(f"/projects/{project.pk}/")
    page.get_by_label("Prompt").fill(PROMPT)
    page.get_by_role("button", name="Generate").click()
    generation = Generation.objects.get()

    card = seen.locator(f"#gen-{generation.pk}")
    expect(card).to_contain_text(PROMPT)
    expect(card.locator("[data-status-label]")).to_have_text("Queued")

    run_workers(lambda: Generation.objects.get(pk=generation.pk).is_terminal)
    expect(card.locator("video")).to_be_visible()
    expect(card.locator("[data-status-label]")).to_have_text("Ready")
    assert seen.evaluate("() => window.__notReloaded === true")
    # One request per interval for the whole page, never one per card.
    pages = [u for u in requests if "/files/" not in u and "/static/" not in u]
    assert pages and all(f"/projects/{project.pk}/generations/live/?since=" in u for u in pages), (
        pages
    )
    watcher.assert_no_horizontal_overflow()

    # Relative times are rewritten from their datetime, so none goes stale.
    seen.evaluate(
        """() => { const t = document.querySelector('.gen-card time[data-relative]');
                   t.setAttribute('datetime', new Date(Date.now() - 3 * 3600e3).toISOString()); }"""
    )
    expect(card.locator("time[data-relative]")).to_have_text("3 hours ago")
    watcher.watch.check()
    author.watch.check()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_a_member_searches_filters_and_pages_through_every_match(
    open_tab: OpenTab, project: Project, teammate: User, owner: User, viewport: dict[str, int]
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from workspace.generations.selectors import PAGE_SIZE

    start = timezone.now() - timedelta(hours=3)
    Generation.objects.bulk_create(
        Generation(
            project=project,
            created_by=teammate if i % 2 else owner,
            channel=project_channel(),
            model="sora-2",
            prompt=f"Kites over the dunes, take {i}" if i % 3 else f"A lighthouse in fog, {i}",
            size="1280x720",
            seconds=4,
            status="canceled",
            created_at=start + timedelta(seconds=i),
        )
        for i in range(4 * PAGE_SIZE)
    )
    kites = Generation.objects.filter(prompt__startswith="Kites", created_by=teammate).count()
    assert PAGE_SIZE < kites < 2 * PAGE_SIZE
    tab = open_tab(viewport)
    tab.sign_in(teammate.username)
    page = tab.visit(f"/projects/{project.pk}/")
    search = page.get_by_role("search", name="Find videos")
    search.get_by_label("Search").fill("kite")
    search.get_by_label("Member").select_option(teammate.username)
    search.get_by_role("button", name="Find").click()
    # Empty filters stay out of the URL: it reads as the search it is.
    expect(page).to_have_url(
        f"{tab.base_url}/projects/{project.pk}/?q=kite&member={teammate.username}"
    )
    cards = page.locator(".gen-card")
    expect(cards).to_have_count(PAGE_SIZE)
    expect(page.locator(".gen-card", has_text="lighthouse")).to_have_count(0)
    tab.assert_no_horizontal_overflow()

    page.get_by_role("link", name="Older →").click()
    expect(cards).to_have_count(kites - PAGE_SIZE)
    assert "before=" in page.url and "q=kite" in page.url, page.url
    expect(page.get_by_label("Search")).to_have_value("kite")
    expect(page.get_by_role("link", name="Older →")).to_have_count(0)
    tab.assert_no_horizontal_overflow()

    # The URL is the search: opened fresh (shared), it shows the same page.
    shared = open_tab(viewport)
    shared.sign_in(teammate.username)
    again = shared.visit(page.url.removeprefix(tab.base_url))
    expect(again.locator(".gen-card")).to_have_count(kites - PAGE_SIZE)
    again.get_by_role("link", name="← Newer").click()
    expect(again.locator(".gen-card")).to_have_count(PAGE_SIZE)
    again.get_by_role("link", name="Clear").click()
    expect(again.locator(".gen-card")).to_have_count(PAGE_SIZE)
    expect(again.locator(".gen-card", has_text="lighthouse").first).to_be_visible()
    tab.watch.check()
    shared.watch.check()


def project_channel():  # type: ignore[no-untyped-def]
    from workspace.providers.models import Channel

    return Channel.objects.get(slug="openai")


def test_a_videos_own_page_shows_the_player_by_itself_however_old_the_video(
    open_tab: OpenTab,
    project: Project,
    teammate: User,
    simulator,
    run_workers,  # type: ignore[no-untyped-def]
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    watched = generation_submit(
        project=project,
        user=teammate,
        prompt=PROMPT,
        model="sora-2",
        size="1280x720",
        seconds=4,
    )
    # More than a gallery page of newer videos: the old fragment never listed this one.
    later = timezone.now() + timedelta(seconds=1)
    Generation.objects.bulk_create(
        Generation(
            project=project,
            created_by=teammate,
            channel=project_channel(),
            model="sora-2",
            prompt=f"Newer take {i}",
            size="1280x720",
            seconds=4,
            status="canceled",
            created_at=later + timedelta(seconds=i),
        )
        for i in range(70)
    )
    tab = open_tab(PHONE)
    tab.sign_in(teammate.username)
    page = tab.visit(f"/projects/{project.pk}/generations/{watched.pk}/")
    expect(page.get_by_text("This page updates by itself")).to_be_visible()
    run_workers(lambda: Generation.objects.get(pk=watched.pk).is_terminal)
    expect(page.locator("main video")).to_be_visible()
    tab.assert_no_horizontal_overflow()
    tab.watch.check()


def test_a_queued_cards_position_moves_live_without_its_card_being_redrawn(
    open_tab: OpenTab, project: Project, teammate: User, viewer: User
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from workspace.generations.models import Status

    first, second = (
        generation_submit(
            project=project, user=teammate, model="sora-2", prompt=p, size="1280x720", seconds=4
        )
        for p in ("A kite over dunes", "A lighthouse in fog")
    )
    # Unchanged for a while: live answers carry only these cards' moving state.
    Generation.objects.filter(pk__in=[first.pk, second.pk]).update(
        updated_at=timezone.now() - timedelta(minutes=5)
    )
    tab = open_tab(PHONE)
    tab.sign_in(viewer.username)
    page = tab.visit(f"/projects/{project.pk}/")
    card = page.locator(f"#gen-{second.pk}")
    expect(card.locator(".queue-standing")).to_contain_text("#2 in the queue")
    card.evaluate("(el) => { el.__sameCard = true; }")
    # The card ahead leaves the queue (its own row changes); this one's row does not.
    Generation.objects.filter(pk=first.pk).update(
        status=Status.CANCELED, updated_at=timezone.now()
    )
    expect(page.locator(f"#gen-{first.pk} [data-status-label]")).to_have_text(
        "Canceled", timeout=15_000
    )
    expect(card.locator(".queue-standing")).to_contain_text("#1 in the queue", timeout=15_000)
    assert card.evaluate("(el) => el.__sameCard === true")  # updated in place, not replaced
    assert card.get_attribute("data-state", timeout=1000).split(":")[2] == "1"
    tab.assert_no_horizontal_overflow()
    tab.watch.check()
