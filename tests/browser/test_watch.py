"""The watch that fails every browser test on a page's problems must itself catch them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import Tab

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_watch_catches_csp_violations_errors_exceptions_and_failed_requests(
    open_tab: Callable[..., Tab],
) -> None:
    tab = open_tab()
    page = tab.page

    # A policy that forbids every script, as a stand-in for a page that breaks the app's CSP.
    def forbid_scripts(route: Any) -> None:
        response = route.fetch()
        headers = {**response.headers, "content-security-policy": "script-src 'none'"}
        route.fulfill(response=response, headers=headers)

    page.route("**/accounts/sign-in/", forbid_scripts)
    page.goto(tab.base_url + "/accounts/sign-in/")
    with page.expect_event("pageerror"):
        page.evaluate("() => { setTimeout(() => { throw new Error('boom'); }); }")
    with page.expect_response("**/static/missing.css"):
        page.evaluate("() => { console.error('broken'); fetch('/static/missing.css'); }")
    with page.expect_event("requestfailed"):
        page.evaluate("() => fetch('http://127.0.0.1:9/').catch(() => null)")

    problems = "\n".join(tab.watch.problems)
    tab.watch.problems.clear()
    assert "Content Security Policy" in problems and "app.js" in problems, problems
    assert "uncaught: boom" in problems
    assert "console error: broken" in problems
    assert "HTTP 404: GET" in problems and "missing.css" in problems
    assert "request failed: GET http://127.0.0.1:9/" in problems
