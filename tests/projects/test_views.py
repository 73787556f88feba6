from django.urls import reverse

from workspace.projects.models import Membership, Project, Role

from ..conftest import PASSWORD


def test_anonymous_visitors_are_sent_to_sign_in(client, project) -> None:  # type: ignore[no-untyped-def]
    for url in (reverse("projects:list"), reverse("projects:detail", args=[project.pk])):
        answer = client.get(url)
        assert answer.status_code == 302
        assert answer["Location"].startswith(reverse("accounts:login"))


def test_sign_in_and_out(client, teammate) -> None:  # type: ignore[no-untyped-def]
    answer = client.post(
        reverse("accounts:login"), {"username": teammate.username, "password": "wrong"}
    )
    assert answer.status_code == 200
    assert "enter a correct username and password" in answer.content.decode()
    answer = client.post(
        reverse("accounts:login"), {"username": teammate.username, "password": PASSWORD}
    )
    assert answer["Location"] == reverse("projects:list")
    client.post(reverse("accounts:logout"))
    assert client.get(reverse("projects:list")).status_code == 302


def test_project_list_and_creation(signed_in, project, outsider) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(outsider)
    page = client.get(reverse("projects:list")).content.decode()
    assert project.name not in page
    assert "No projects yet" in page
    answer = client.post(reverse("projects:list"), {"name": "", "description": ""})
    assert answer.status_code == 200
    assert "This field is required" in answer.content.decode()
    answer = client.post(reverse("projects:list"), {"name": "B-roll", "description": "city"})
    created = Project.objects.get(name="B-roll")
    assert answer["Location"] == reverse("projects:detail", args=[created.pk])


def test_outsiders_get_404_everywhere(signed_in, project, outsider) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(outsider)
    member = Membership.objects.filter(project=project).first()
    assert member is not None
    for method, url in [
        ("get", reverse("projects:detail", args=[project.pk])),
        ("get", reverse("projects:members", args=[project.pk])),
        ("post", reverse("projects:members", args=[project.pk])),
        ("post", reverse("projects:member_change", args=[project.pk, member.pk])),
        ("get", reverse("generations:gallery", args=[project.pk])),
        ("post", reverse("generations:create", args=[project.pk])),
    ]:
        assert getattr(client, method)(url).status_code == 404, url


def test_owner_adds_and_changes_members(signed_in, project, owner, outsider) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(owner)
    url = reverse("projects:members", args=[project.pk])
    answer = client.post(url, {"username": "ghost", "role": Role.VIEWER})
    assert "no member called" in answer.content.decode()
    client.post(url, {"username": outsider.username, "role": Role.VIEWER})
    added = Membership.objects.get(project=project, user=outsider)
    assert added.role == Role.VIEWER
    change = reverse("projects:member_change", args=[project.pk, added.pk])
    client.post(change, {"action": "role", "role": Role.EDITOR})
    assert Membership.objects.get(pk=added.pk).role == Role.EDITOR
    client.post(change, {"action": "remove"})
    assert not Membership.objects.filter(pk=added.pk).exists()


def test_editors_cannot_manage_members(signed_in, project, teammate, viewer) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(teammate)
    url = reverse("projects:members", args=[project.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"username": "oscar", "role": Role.VIEWER}).status_code == 403
    target = Membership.objects.get(project=project, user=viewer)
    change = reverse("projects:member_change", args=[project.pk, target.pk])
    assert client.post(change, {"action": "remove"}).status_code == 404
    assert Membership.objects.filter(pk=target.pk).exists()
