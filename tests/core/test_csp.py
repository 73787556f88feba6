"""Every page carries the Content-Security-Policy, and no template needs it loosened."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
)


def assert_policy(header: str) -> None:
    directives = {d.strip() for d in header.split(";")}
    for directive in POLICY:
        assert directive in directives, (directive, header)


@pytest.mark.django_db
def test_a_member_page_and_an_admin_page_carry_the_policy(client: Client, owner, project) -> None:  # type: ignore[no-untyped-def]
    assert_policy(client.get(reverse("accounts:login"))["Content-Security-Policy"])
    client.force_login(owner)
    assert_policy(client.get(reverse("projects:detail", args=[project.pk]))["Content-Security-Policy"])
    root = User.objects.create_superuser("root", password="pw-root-123456")
    client.force_login(root)
    admin_page = client.get(reverse("admin:index"))
    assert admin_page.status_code == 200
    assert_policy(admin_page["Content-Security-Policy"])
    assert_policy(client.get("/no-such-page/")["Content-Security-Policy"])


INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]*\sstyle\s*=", re.IGNORECASE)
STYLE_BLOCK = re.compile(r"<style\b", re.IGNORECASE)


def templates() -> list[Path]:
    found = sorted((ROOT / "templates").rglob("*.html"))
    found += sorted((ROOT / "workspace").rglob("templates/**/*.html"))
    assert found
    return found


@pytest.mark.parametrize("template", templates(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_has_inline_script_or_style(template: Path) -> None:
    text = template.read_text()
    for pattern, what in (
        (INLINE_SCRIPT, "an inline <script>"),
        (EVENT_HANDLER, "an inline event handler"),
        (STYLE_ATTRIBUTE, "a style attribute"),
        (STYLE_BLOCK, "a <style> block"),
    ):
        match = pattern.search(text)
        assert match is None, f"{what} in {template.name}: {match.group(0) if match else ''}"


def test_the_scanner_catches_what_it_is_for() -> None:
    assert INLINE_SCRIPT.search("<script>alert(1)</script>")
    assert not INLINE_SCRIPT.search('<script src="/static/js/app.js" defer></script>')
    assert EVENT_HANDLER.search('<button onclick="go()">')
    assert not EVENT_HANDLER.search('<meta name="x" content="y">')
    assert STYLE_ATTRIBUTE.search('<div class="bar" style="width: 5%">')
    assert STYLE_BLOCK.search("<style>.a{}</style>")
