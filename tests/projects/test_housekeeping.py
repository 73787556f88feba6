"""Rename, archive and unarchive a project (issue 13, part 5)."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections, transaction
from django.urls import reverse
from django.utils import timezone

from workspace.core.models import AuditEvent
from workspace.generations.models import Generation, Status
from workspace.generations.submission import generation_submit
from workspace.projects.models import Membership, Project, Role
from workspace.projects.services import (
    generation_move,
    membership_add,
    membership_remove,
    membership_set_role,
    project_archive,
    project_create,
    project_rename,
    project_unarchive,
)

GENERATION = {"prompt": "Waves at dawn", "model": "sora-2", "size": "1280x720", "seconds": "4"}


def _settings_url(project: Project) -> str:
    return reverse("projects:settings", args=[project.pk])


def test_owner_renames_and_the_audit_log_keeps_both_names(signed_in, project, owner) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(owner)
    answer = client.post(_settings_url(project), {"action": "rename", "name": "  Spring film "})
    assert answer.status_code == 302
    project.refresh_from_db()
    assert project.name == "Spring film"
    event = AuditEvent.objects.get(target_type="project", action=AuditEvent.Action.CHANGED)
    assert event.changes == {"name": ["Launch film", "Spring film"]}
    assert event.actor_name == owner.username


def test_rename_refuses_a_name_taken_in_any_case(signed_in, project, owner, outsider) -> None:  # type: ignore[no-untyped-def]
    project_create(name="B-roll", owner=outsider)
    client = signed_in(owner)
    answer = client.post(_settings_url(project), {"action": "rename", "name": "b-ROLL"})
    assert answer.status_code == 200
    assert "There is already a project called" in answer.content.decode()
    project.refresh_from_db()
    assert project.name == "Launch film"
    # Its own name in another case is not "taken": a project may fix its capitals.
    project_rename(project=project, name="LAUNCH FILM", actor=owner)
    assert Project.objects.get(pk=project.pk).name == "LAUNCH FILM"


def test_rename_refuses_an_empty_name(project, owner) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="needs a name"):
        project_rename(project=project, name="   ", actor=owner)


@pytest.mark.parametrize("persona", ["teammate", "viewer"])
def test_only_owners_rename_or_archive(signed_in, project, persona, request) -> None:  # type: ignore[no-untyped-def]
    member = request.getfixturevalue(persona)
    client = signed_in(member)
    page = client.get(_settings_url(project))
    assert page.status_code == 200
    assert "Only a project owner can rename or archive" in page.content.decode()
    for data in ({"action": "rename", "name": "Mine now"}, {"action": "archive"}):
        assert client.post(_settings_url(project), data).status_code == 403
    project.refresh_from_db()
    assert (project.name, project.archived_at) == ("Launch film", None)
    with pytest.raises(PermissionDenied):
        project_archive(project=project, actor=member)
    with pytest.raises(PermissionDenied):
        project_rename(project=project, name="Mine now", actor=member)


def test_outsiders_get_404_on_settings(signed_in, project, outsider) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(outsider)
    assert client.get(_settings_url(project)).status_code == 404
    assert client.post(_settings_url(project), {"action": "archive"}).status_code == 404
    assert Project.objects.get(pk=project.pk).archived_at is None


def test_archived_projects_leave_the_list_until_shown(signed_in, project, owner, teammate) -> None:  # type: ignore[no-untyped-def]
    other = project_create(name="Ongoing", owner=owner)
    membership_add(project=other, username=teammate.username, role=Role.EDITOR, actor=owner)
    assert signed_in(owner).post(_settings_url(project), {"action": "archive"}).status_code == 302
    client = signed_in(teammate)  # archiving hides it for every member, not only the owner
    archived_link = f'href="{reverse("projects:detail", args=[project.pk])}"'
    other_link = f'href="{reverse("projects:detail", args=[other.pk])}"'
    page = client.get(reverse("projects:list")).content.decode()
    assert archived_link not in page and other_link in page
    assert "Show archived (1)" in page
    page = client.get(reverse("projects:list") + "?archived=1").content.decode()
    assert archived_link in page and other_link in page and "archived</span>" in page
    # Still reachable by its address: archived is read-only, not gone.
    detail = client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert "This project is archived" in detail
    assert 'name="prompt"' not in detail


def test_an_archived_project_takes_no_generations(signed_in, project, teammate) -> None:  # type: ignore[no-untyped-def]
    project_archive(project=project, actor=None)
    with pytest.raises(ValidationError, match="archived"):
        generation_submit(project=project, user=teammate, **{**GENERATION, "seconds": 4})
    client = signed_in(teammate)
    answer = client.post(reverse("generations:create", args=[project.pk]), GENERATION, follow=True)
    assert answer.status_code == 200
    assert "This project is archived" in answer.content.decode()
    assert not Generation.objects.exists()


def test_an_archived_project_keeps_its_members(project, owner, viewer, outsider) -> None:  # type: ignore[no-untyped-def]
    project_archive(project=project, actor=owner)
    seen = Membership.objects.get(project=project, user=viewer)
    with pytest.raises(ValidationError, match="archived"):
        membership_add(project=project, username=outsider.username, role=Role.VIEWER, actor=owner)
    with pytest.raises(ValidationError, match="archived"):
        membership_set_role(membership=seen, role=Role.EDITOR, actor=owner)
    with pytest.raises(ValidationError, match="archived"):
        membership_remove(membership=seen, actor=owner)
    with pytest.raises(ValidationError, match="archived"):
        project_rename(project=project, name="Renamed in the attic", actor=owner)
    assert Membership.objects.filter(project=project).count() == 3
    assert Membership.objects.get(pk=seen.pk).role == Role.VIEWER


def test_unarchive_restores_use_and_both_steps_are_audited(signed_in, project, owner, teammate) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(owner)
    client.post(_settings_url(project), {"action": "archive"})
    client.post(_settings_url(project), {"action": "archive"})  # a second click changes nothing
    events = AuditEvent.objects.filter(target_type="project", action=AuditEvent.Action.CHANGED)
    assert events.count() == 1
    assert client.post(_settings_url(project), {"action": "unarchive"}).status_code == 302
    assert Project.objects.get(pk=project.pk).archived_at is None
    archived, unarchived = events.order_by("id")
    assert archived.changes["archived_at"][0] is None and archived.changes["archived_at"][1]
    assert unarchived.changes["archived_at"][1] is None
    generation_submit(project=project, user=teammate, **{**GENERATION, "seconds": 4})
    assert Generation.objects.count() == 1
    project_unarchive(project=project, actor=owner)  # already in use: a no-op
    assert events.count() == 2


# ---- Moving videos between projects ----------------------------------------------------------


@pytest.fixture
def finished(project, teammate):  # type: ignore[no-untyped-def]
    generation = generation_submit(project=project, user=teammate, **{**GENERATION, "seconds": 4})
    Generation.objects.filter(pk=generation.pk).update(status=Status.COMPLETED)
    generation.refresh_from_db()
    return generation


@pytest.fixture
def second_project(owner, teammate, viewer):  # type: ignore[no-untyped-def]
    other = project_create(name="B-roll", owner=owner)
    membership_add(project=other, username=teammate.username, role=Role.EDITOR, actor=owner)
    membership_add(project=other, username=viewer.username, role=Role.VIEWER, actor=owner)
    return other


def _move_url(generation: Generation) -> str:
    return reverse("projects:generation_move", args=[generation.project_id, generation.pk])


def test_an_editor_moves_a_finished_video_and_it_is_audited(  # type: ignore[no-untyped-def]
    signed_in, project, second_project, finished, teammate
) -> None:
    client = signed_in(teammate)
    page = client.get(reverse("generations:detail", args=[project.pk, finished.pk]))
    assert _move_url(finished) in page.content.decode()
    answer = client.post(_move_url(finished), {"to_project": second_project.pk})
    assert answer["Location"] == reverse(
        "generations:detail", args=[second_project.pk, finished.pk]
    )
    assert Generation.objects.get(pk=finished.pk).project_id == second_project.pk
    # Gone from the old project's addresses, present under the new one's.
    assert client.get(reverse("generations:detail", args=[project.pk, finished.pk])).status_code == 404
    assert client.get(answer["Location"]).status_code == 200
    event = AuditEvent.objects.get(target_type="generation", target_id=str(finished.pk))
    assert event.changes == {"project_id": [project.pk, second_project.pk]}
    assert event.actor_name == teammate.username


def test_moving_needs_edit_rights_on_both_sides(  # type: ignore[no-untyped-def]
    signed_in, project, finished, owner, viewer, outsider
) -> None:
    mine = project_create(name="Outsider's", owner=outsider)
    # The outsider cannot move into their own project a video they cannot see.
    assert signed_in(outsider).post(_move_url(finished), {"to_project": mine.pk}).status_code == 404
    with pytest.raises(PermissionDenied):
        generation_move(generation=finished, to_project=mine, actor=outsider)
    # The owner of the source is no member of the target: the target is not offered.
    answer = signed_in(owner).post(_move_url(finished), {"to_project": mine.pk})
    assert answer.status_code == 200 and "Select a valid choice" in answer.content.decode()
    with pytest.raises(PermissionDenied):
        generation_move(generation=finished, to_project=mine, actor=owner)
    viewer_project = project_create(name="Vera's", owner=viewer)
    answer = signed_in(viewer).post(_move_url(finished), {"to_project": viewer_project.pk})
    assert answer.status_code == 403
    assert Generation.objects.get(pk=finished.pk).project_id == project.pk
    assert not AuditEvent.objects.filter(target_type="generation").exists()


def test_unfinished_videos_and_archived_projects_stay_put(  # type: ignore[no-untyped-def]
    project, second_project, finished, teammate, owner
) -> None:
    running = generation_submit(project=project, user=teammate, **{**GENERATION, "seconds": 4})
    with pytest.raises(ValidationError, match="finished"):
        generation_move(generation=running, to_project=second_project, actor=teammate)
    project_archive(project=second_project, actor=owner)
    with pytest.raises(ValidationError, match="archived"):
        generation_move(generation=finished, to_project=second_project, actor=teammate)
    project_unarchive(project=second_project, actor=owner)
    project_archive(project=project, actor=owner)
    with pytest.raises(ValidationError, match="archived"):
        generation_move(generation=finished, to_project=second_project, actor=teammate)
    assert set(Generation.objects.values_list("project_id", flat=True)) == {project.pk}


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: two real transactions racing on the project's row",
)
@pytest.mark.django_db(transaction=True)
def test_a_submission_racing_an_archive_never_lands_in_the_archived_project(  # type: ignore[no-untyped-def]
    project, teammate
) -> None:
    # The archive holds the project's row when the submission has already passed its first
    # check; the submission must wait for it and then refuse, not queue into an archived project.
    archiving, release = threading.Event(), threading.Event()
    outcome: list[BaseException | Generation] = []

    def archive() -> None:
        try:
            with transaction.atomic():
                locked = Project.objects.select_for_update().get(pk=project.pk)
                locked.archived_at = timezone.now()
                locked.save(update_fields=["archived_at"])
                archiving.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    def submit() -> None:
        try:
            outcome.append(
                generation_submit(project=project, user=teammate, **{**GENERATION, "seconds": 4})
            )
        except BaseException as error:
            outcome.append(error)
        finally:
            connections.close_all()

    archiver = threading.Thread(target=archive)
    archiver.start()
    assert archiving.wait(timeout=30)
    submitter = threading.Thread(target=submit)
    submitter.start()
    with connection.cursor() as cursor:  # until the submission waits on a row lock
        for _ in range(600):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the submission never waited for the archive's row lock")
    release.set()
    archiver.join(timeout=30)
    submitter.join(timeout=30)
    assert len(outcome) == 1
    assert isinstance(outcome[0], ValidationError), outcome
    assert "archived" in " ".join(outcome[0].messages)
    assert not Generation.objects.exists()
