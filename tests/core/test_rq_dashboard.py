"""The RQ dashboard can empty queues: superusers only, every one of its URLs."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, get_resolver, reverse

pytestmark = pytest.mark.django_db

ARGS = {"queue_index": 0, "job_id": "nope", "result_id": "nope", "key": "nope",
        "scheduler_index": 0, "connection_index": 0, "scheduler_name": "nope",
        "cron_job_name": "nope", "token": "nope"}


def dashboard_urls() -> list[str]:
    namespace = get_resolver().namespace_dict["django_rq"][1]
    urls = set()
    for pattern in namespace.url_patterns:
        assert isinstance(pattern, URLPattern)
        wanted = {k: ARGS[k] for k in pattern.pattern.regex.groupindex}
        urls.add(reverse(f"django_rq:{pattern.name}", kwargs=wanted))
    return sorted(urls)


def test_the_dashboard_has_urls() -> None:
    urls = dashboard_urls()
    assert "/admin/rq/" in urls
    assert "/admin/rq/queues/0/empty/" in urls
    assert any(u.startswith("/admin/rq/stats.json") for u in urls)


@pytest.mark.parametrize("url", dashboard_urls())
def test_anonymous_visitors_are_sent_to_the_admin_sign_in(client: Client, url: str) -> None:
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("url", dashboard_urls())
def test_staff_without_superuser_rights_get_403(client: Client, url: str) -> None:
    staff = User.objects.create_user("sam", password="pw-sam-123456", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403


def test_staff_cannot_empty_a_queue(client: Client, redis_conn) -> None:  # type: ignore[no-untyped-def]
    from workspace.core.rq import get_queue

    get_queue("default").enqueue("builtins.print", "kept")
    staff = User.objects.create_user("sam", password="pw-sam-123456", is_staff=True)
    client.force_login(staff)
    index = 0
    response = client.post(reverse("django_rq:clear", args=[index]), {"post": "yes"})
    assert response.status_code == 403
    assert len(get_queue("default")) == 1


def test_superusers_see_the_dashboard(client: Client) -> None:
    root = User.objects.create_superuser("root", password="pw-root-123456")
    client.force_login(root)
    response = client.get(reverse("django_rq:home"))
    assert response.status_code == 200
    # django-rq's own templates have inline script and style: allowed on its pages only.
    assert "'unsafe-inline'" in response["Content-Security-Policy"]
    assert client.get(reverse("django_rq:home_json")).status_code == 200
    assert "'unsafe-inline'" not in client.get(reverse("admin:index"))["Content-Security-Policy"]


def test_django_rqs_own_admin_link_is_not_registered(client: Client) -> None:
    """It would serve the same views to every staff account."""
    staff = User.objects.create_user("sam", password="pw-sam-123456", is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/django_rq/dashboard/").status_code == 404
