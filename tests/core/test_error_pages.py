"""With DEBUG off every error is our own page, and none shows a setting."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.error_urls")]

SECRETS_OF_A_DEBUG_PAGE = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "Traceback", "settings")


def assert_no_leak(page: str) -> None:
    for word in SECRETS_OF_A_DEBUG_PAGE:
        assert word not in page
    assert str(settings.DATABASES["default"]["NAME"]) not in page


def test_a_missing_page_is_our_404(client: Client) -> None:
    assert settings.DEBUG is False
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "We can\u2019t find that page" in page
    assert 'href="/static/css/app.css"' in page
    assert_no_leak(page)


def test_a_crash_is_our_500_without_a_request_context_or_settings(db: None) -> None:
    client = Client(raise_request_exception=False)
    response = client.get("/test-errors/500/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    assert 'href="/static/css/app.css"' in page
    assert_no_leak(page)
    assert "the failure a member might cause" not in page


def test_403_and_400_are_our_pages(client: Client) -> None:
    forbidden = client.get("/test-errors/403/")
    assert forbidden.status_code == 403
    assert "You don\u2019t have permission to do that" in forbidden.content.decode()
    bad = client.get("/test-errors/400/")
    assert bad.status_code == 400
    assert "That request didn\u2019t make sense to us" in bad.content.decode()


def test_a_403_is_logged_once_and_without_a_traceback(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        assert client.get("/test-errors/403/").status_code == 403
    forbidden = [r for r in caplog.records if r.name == "django.request"]
    assert len(forbidden) == 1
    assert forbidden[0].levelno == logging.WARNING
    assert forbidden[0].exc_info is None
    assert "Forbidden" in forbidden[0].getMessage()


def test_a_500_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.INFO):
        client.get("/test-errors/500/")
    errors = [r for r in caplog.records if r.name == "django.request"]
    assert len(errors) == 1
    assert errors[0].exc_info is not None


@pytest.mark.parametrize("debug", [False, True])
def test_a_request_warning_reaches_exactly_one_handler(settings, debug: bool) -> None:  # type: ignore[no-untyped-def]
    """Django's own "django" console handler (active under DEBUG) printed each 403 a second
    time beside the root's handler."""
    settings.DEBUG = debug
    logger = logging.getLogger("django.request")
    record = logger.makeRecord(
        "django.request", logging.WARNING, __file__, 1, "Forbidden: %s", ("/x/",), None
    )
    emitting = []
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if type(handler).__module__.startswith("_pytest"):
                continue  # pytest's own capture
            if record.levelno >= handler.level and handler.filter(record):
                emitting.append(handler)
        current = current.parent if current.propagate else None
    assert len(emitting) == 1, emitting
