"""Ids in URLs beyond what the database can hold are "no such page", never a server error."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from workspace.core.converters import MAX_ID
from workspace.projects.models import Membership

from ..conftest import PASSWORD

HUGE = "9" * 23  # above 2**63: SQLite raised OverflowError, PostgreSQL's driver may refuse it


@pytest.fixture
def owner_client(client, owner):  # type: ignore[no-untyped-def]
    client.raise_request_exception = False
    assert client.login(username=owner.username, password=PASSWORD)
    return client


@pytest.mark.parametrize("number", [HUGE, str(MAX_ID + 1), "1" + "0" * 5000])
def test_a_project_id_out_of_range_is_404(owner_client, project, number) -> None:  # type: ignore[no-untyped-def]
    member = Membership.objects.filter(project=project).first()
    assert member is not None
    for method, url in [
        ("get", f"/projects/{number}/"),
        ("get", f"/projects/{number}/members/"),
        ("get", f"/projects/{number}/generations/gallery/"),
        ("post", f"/projects/{number}/generations/"),
        ("post", f"/projects/{project.pk}/members/{number}/"),
        ("post", f"/projects/{number}/members/{member.pk}/"),
    ]:
        answer = getattr(owner_client, method)(
            url, {"action": "remove"} if method == "post" else {}
        )
        assert answer.status_code == 404, (method, url, answer.status_code)
    assert Membership.objects.filter(pk=member.pk).exists()


def test_the_largest_id_still_resolves(owner_client, project) -> None:  # type: ignore[no-untyped-def]
    assert owner_client.get(f"/projects/{MAX_ID}/").status_code == 404  # no such project
    assert reverse("projects:detail", args=[project.pk]) == f"/projects/{project.pk}/"


def _patterns(resolver: URLResolver, prefix: str = "") -> list[str]:
    found = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found.extend(_patterns(entry, route))
        elif isinstance(entry, URLPattern):
            found.append(route)
    return found


def test_no_url_of_ours_takes_an_unbounded_int() -> None:
    # <int:…> lets any number of digits reach the database; ours use the bounded <id:…>.
    ours = [route for route in _patterns(get_resolver()) if not route.startswith("admin/")]
    assert ours
    assert [route for route in ours if "<int:" in route] == []
