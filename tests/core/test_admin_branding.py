"""The admin names itself Reelhouse and has the app's icon (issue 13, part 6)."""

from __future__ import annotations

from django.urls import reverse


def test_the_admin_says_reelhouse_and_has_a_favicon(admin_client) -> None:  # type: ignore[no-untyped-def]
    for url in (reverse("admin:index"), reverse("admin:projects_project_changelist")):
        page = admin_client.get(url).content.decode()
        assert "Django administration" not in page and "Django site admin" not in page
        assert "Reelhouse administration" in page
        assert "| Reelhouse admin</title>" in page
        assert 'rel="icon" href="/static/favicon.svg"' in page


def test_the_admin_sign_in_page_has_them_too(client, db) -> None:  # type: ignore[no-untyped-def]
    page = client.get(reverse("admin:login")).content.decode()
    assert "Reelhouse administration" in page and 'rel="icon"' in page
