"""Real Chromium (Debian's ``chromium`` driven by Playwright) against a live server.

The server is pytest-django's ``live_server`` (a threaded WSGI server in this process, on the
test database, seeing every settings override of the test). Generations are processed by the
real forking RQ workers of ``run_workers`` in the test's own thread while Chromium, a separate
process, keeps polling the page as a member's browser does.

Nothing here downloads a browser: without ``/usr/bin/chromium`` (or ``REELHOUSE_CHROMIUM``) or
the ``playwright`` package the tests skip saying how to install them, and CI sets
``REELHOUSE_REQUIRE_BROWSER=1`` so that a skip becomes a failure there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import PASSWORD

try:
    from playwright.sync_api import expect
except ImportError:  # every test then skips in the `browser` fixture, saying what to install
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request, Response

CHROMIUM = Path(os.environ.get("REELHOUSE_CHROMIUM", "/usr/bin/chromium"))
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Background services, updates and sync would call out to the internet; root needs no sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    # The test plays a video without a click on it; the autoplay policy would refuse that.
    "--autoplay-policy=no-user-gesture-required",
]


def _missing() -> str | None:
    if expect is None:
        return (
            "the playwright package is missing; install the dev extras: "
            "python3 reelhouse.py test (or .venv/bin/pip install -e '.[dev]')"
        )
    if not CHROMIUM.exists():
        return (
            f"Chromium is not installed at {CHROMIUM}; install it with "
            "`apt-get install chromium` (Debian/Ubuntu), or point REELHOUSE_CHROMIUM at a "
            "Chromium binary"
        )
    return None


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    missing = _missing()
    if missing:
        if os.environ.get("REELHOUSE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"REELHOUSE_REQUIRE_BROWSER=1 but {missing}.", pytrace=False)
        pytest.skip(f"Browser tests skipped: {missing}.")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop open in this thread, and Django refuses ORM calls
    # while one runs; the tests' ORM calls are plain synchronous ones. Package scope, so the
    # loop (and this flag) end with the browser tests.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Watch:
    """Everything that went wrong in a page: console errors, uncaught exceptions, failed requests.

    A Content-Security-Policy violation is a console error, so it fails the test too.
    """

    problems: list[str] = field(default_factory=list)
    # (status, path regex) pairs a test expects, such as the 400 of a refused form.
    allowed: list[tuple[int, re.Pattern[str]]] = field(default_factory=list)

    def allow(self, status: int, path: str) -> None:
        self.allowed.append((status, re.compile(path)))

    def _is_allowed(self, status: int, url: str) -> bool:
        return any(s == status and p.search(url) for s, p in self.allowed)

    def on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        text = message.text
        status = re.search(r"status of (\d{3})", text)
        url = (message.location or {}).get("url", "")
        if status and self._is_allowed(int(status.group(1)), url):
            return
        self.problems.append(f"console error: {text} ({url})")

    def on_response(self, response: Response) -> None:
        if response.status >= 400 and not self._is_allowed(response.status, response.url):
            self.problems.append(
                f"HTTP {response.status}: {response.request.method} {response.url}"
            )

    def on_request_failed(self, request: Request) -> None:
        # ERR_ABORTED is the browser cancelling its own request: a player dropping its range
        # request after a seek, or a favicon still loading when the test navigates on. A server
        # that fails shows as a status, a reset or an empty response instead, and a CSP block as
        # a console error.
        if request.failure == "net::ERR_ABORTED":
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def check(self) -> None:
        problems, self.problems = self.problems, []
        assert not problems, "The page had problems:\n" + "\n".join(problems)


@dataclass
class Tab:
    page: Page
    watch: Watch
    base_url: str

    def visit(self, path: str) -> Page:
        response = self.page.goto(self.base_url + path)
        assert response is not None and response.ok, f"{path}: {response and response.status}"
        self.watch.check()
        if shots := os.environ.get("REELHOUSE_SCREENSHOTS"):  # a folder, to look at the pages
            name = re.sub(r"\W+", "-", path).strip("-") or "home"
            width = self.page.viewport_size["width"] if self.page.viewport_size else 0
            self.page.screenshot(path=f"{shots}/{name}-{width}.png", full_page=True)
        return self.page

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        page = self.visit("/accounts/sign-in/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator(".whoami-name")).to_have_text(f"Signed in as {username}")
        self.watch.check()

    def assert_no_horizontal_overflow(self) -> None:
        widths = self.page.evaluate(
            """() => {
              const limit = window.innerWidth;
              const wide = [...document.querySelectorAll('body *')]
                .filter(el => el.getBoundingClientRect().right > limit + 0.5)
                .slice(0, 5)
                .map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
                           + ' right=' + Math.round(el.getBoundingClientRect().right));
              return {scroll: document.documentElement.scrollWidth, inner: limit, wide};
            }"""
        )
        assert widths["scroll"] <= widths["inner"], (
            f"{self.page.url} overflows horizontally at {widths['inner']} px: "
            f"scrollWidth {widths['scroll']}; widest: {widths['wide']}"
        )


@pytest.fixture
def open_tab(browser: Browser, live_server: Any) -> Iterator[Callable[..., Tab]]:
    """Open a fresh browser profile (own cookies) at a viewport; its problems fail the test."""
    tabs: list[Tab] = []

    def open_(viewport: dict[str, int] = DESKTOP) -> Tab:
        context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        context.set_default_timeout(15_000)
        page = context.new_page()
        watch = Watch()
        page.on("console", watch.on_console)
        page.on("pageerror", lambda error: watch.problems.append(f"uncaught: {error}"))
        page.on("response", watch.on_response)
        page.on("requestfailed", watch.on_request_failed)
        tab = Tab(page=page, watch=watch, base_url=live_server.url)
        tabs.append(tab)
        return tab

    yield open_
    # Checked before closing: closing aborts the gallery's polling, which is no problem.
    problems = [problem for tab in tabs for problem in tab.watch.problems]
    for tab in tabs:
        tab.page.context.close()
    assert not problems, "The pages had problems:\n" + "\n".join(problems)


@pytest.fixture
def make_videos(simulator, run_workers) -> Callable[..., list[Any]]:  # type: ignore[no-untyped-def]
    """Submit generations as a member would and let the real workers finish them."""
    from workspace.generations.models import Generation
    from workspace.generations.submission import generation_submit

    def make(project: Any, user: Any, *prompts: str) -> list[Generation]:
        generations = [
            generation_submit(
                project=project,
                user=user,
                prompt=prompt,
                model="sora-2",
                size="1280x720",
                seconds=4,
            )
            for prompt in prompts
        ]
        ids = [g.pk for g in generations]
        run_workers(lambda: all(g.is_terminal for g in Generation.objects.filter(pk__in=ids)))
        return list(Generation.objects.filter(pk__in=ids).order_by("created_at"))

    return make


@pytest.fixture(autouse=True)
def _live_polls_share_reads(settings, _isolated_environment) -> None:  # type: ignore[no-untyped-def]
    """Pages in a real browser poll as in production: from the process's shared read of the
    rows (tests elsewhere read per poll, to change a row and poll at once)."""
    from workspace.generations.selectors import live_rows_forget

    settings.REELHOUSE_LIVE_ROWS_SECONDS = 1.0
    live_rows_forget()
