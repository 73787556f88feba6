import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from workspace.generations.models import Generation, Status
from workspace.projects.models import Membership, Project, Role


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_createsuperuser_works_without_prompts(db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long admin password")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@example.com")
    call_command("createsuperuser", interactive=False, verbosity=0)
    admin = User.objects.get(username="root")
    assert admin.is_superuser
    assert admin.check_password("a long admin password")


def test_project_commands(owner, teammate) -> None:  # type: ignore[no-untyped-def]
    project_id = int(run("project_create", "--name", "Ads", "--owner", owner.username))
    assert Project.objects.get(pk=project_id).name == "Ads"
    assert "is now viewer" in run(
        "project_add_member", "--project", "Ads", "--user", teammate.username, "--role", "viewer"
    )
    assert Membership.objects.get(project_id=project_id, user=teammate).role == Role.VIEWER
    with pytest.raises(CommandError, match="no user called"):
        run("project_create", "--name", "X", "--owner", "nobody")
    with pytest.raises(CommandError, match="no project"):
        run("project_add_member", "--project", "Nope", "--user", teammate.username)


@pytest.mark.django_db(transaction=True)
def test_generation_submit_goes_through_the_same_service(
    project, teammate, viewer, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    out = run(
        "generation_submit",
        "--user",
        teammate.username,
        "--project",
        str(project.pk),
        "--prompt",
        "Clouds over a valley",
        "--model",
        "sora-2-pro",
        "--size",
        "1024x1792",
        "--seconds",
        "8",
    )
    generation = Generation.objects.get()
    assert str(generation.pk) in out
    run_workers(lambda: Generation.objects.get(pk=generation.pk).is_terminal)
    assert Generation.objects.get(pk=generation.pk).status == Status.COMPLETED
    with pytest.raises(CommandError, match="size"):
        run(
            "generation_submit",
            "--user",
            teammate.username,
            "--project",
            project.name,
            "--prompt",
            "x",
            "--model",
            "sora-2",
            "--size",
            "1024x1792",
        )
    with pytest.raises(CommandError, match="Only owners and editors"):
        run(
            "generation_submit",
            "--user",
            viewer.username,
            "--project",
            project.name,
            "--prompt",
            "x",
        )
