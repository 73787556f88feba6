"""Delete a project with a grace period, and copy a video to another project (issue 13, part 5)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from workspace.billing.models import LedgerEntry
from workspace.billing.services import prices_seed
from workspace.core.management.commands import reelhouse_scheduler as scheduler
from workspace.core.models import AuditEvent
from workspace.generations.models import Generation, Status
from workspace.generations.submission import generation_cancel, generation_submit
from workspace.projects.models import Project, Role
from workspace.projects.services import (
    generation_copy,
    membership_add,
    project_create,
    project_delete,
    project_restore,
    projects_purge_due,
)
from workspace.sharing.services import share_link_create


def _delete(client, project, name):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("projects:settings", args=[project.pk]), {"action": "delete", "confirm_name": name}
    )


def test_owner_deletes_with_the_typed_name_and_it_is_gone_for_everyone(  # type: ignore[no-untyped-def]
    signed_in, project, owner, teammate, viewer, make_video
) -> None:
    video = make_video(project, teammate)
    client = signed_in(owner)
    refused = _delete(client, project, "launch film")  # not exactly the name
    assert refused.status_code == 200
    assert "Type the project&#x27;s name exactly" in refused.content.decode()
    assert not Project.objects.get(pk=project.pk).is_deleted

    assert _delete(client, project, "Launch film").status_code == 302
    assert Project.objects.get(pk=project.pk).is_deleted
    event = AuditEvent.objects.filter(
        target_type="project", action=AuditEvent.Action.CHANGED
    ).last()
    assert event is not None and "deleted_at" in event.changes and event.actor_name == "olivia"
    for persona in (teammate, viewer):
        member = Client()
        member.force_login(persona)
        assert member.get(reverse("projects:detail", args=[project.pk])).status_code == 404
        file_url = reverse("generations:file", args=[project.pk, video.pk, "video"])
        assert member.get(file_url).status_code == 404
        assert "Launch film" not in member.get(reverse("projects:list")).content.decode()
    # The owner finds it under "Recently deleted", and restores it.
    listing = client.get(reverse("projects:list")).content.decode()
    assert f'data-deleted-project="{project.pk}"' in listing
    assert client.post(reverse("projects:restore", args=[project.pk])).status_code == 302
    assert not Project.objects.get(pk=project.pk).is_deleted
    assert client.get(reverse("projects:detail", args=[project.pk])).status_code == 200


def test_only_an_owner_deletes_or_restores(project, owner, teammate, viewer) -> None:  # type: ignore[no-untyped-def]
    for persona in (teammate, viewer):
        with pytest.raises(PermissionDenied):
            project_delete(project=project, actor=persona, confirm_name="Launch film")
    project_delete(project=project, actor=owner, confirm_name="Launch film")
    with pytest.raises(PermissionDenied):
        project_restore(project=project, actor=teammate)
    # An editor's restore button does not exist; the URL refuses, an outsider gets 404.
    editor = Client()
    editor.force_login(teammate)
    assert editor.post(reverse("projects:restore", args=[project.pk])).status_code == 403


def test_delete_is_refused_while_videos_are_in_flight(project, owner, teammate, channel) -> None:  # type: ignore[no-untyped-def]
    prices_seed(channel=channel)
    queued = generation_submit(
        project=project,
        user=teammate,
        channel=channel,
        model="sora-2",
        prompt="A lighthouse in fog",
        size="1280x720",
        seconds=4,
    )
    with pytest.raises(ValidationError, match="1 video of this project is still being generated"):
        project_delete(project=project, actor=owner, confirm_name="Launch film")
    assert not Project.objects.get(pk=project.pk).is_deleted
    generation_cancel(generation=queued, user=teammate)
    project_delete(project=project, actor=owner, confirm_name="Launch film")
    # And a deleted project takes no new videos (the API, say, still knows its id).
    with pytest.raises(ValidationError, match="was deleted"):
        generation_submit(
            project=project,
            user=teammate,
            channel=channel,
            model="sora-2",
            prompt="Another",
            size="1280x720",
            seconds=4,
        )


def test_the_sweep_purges_rows_and_files_after_the_grace_period_only(  # type: ignore[no-untyped-def]
    settings, project, owner, teammate, make_video, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    settings.REELHOUSE_PROJECT_DELETE_GRACE_DAYS = 7
    video = make_video(project, teammate)
    share_link_create(
        project=project,
        generation_ids=[str(video.pk)],
        actor=owner,
        lifetime_days=7,
        show_prompt=False,
    )
    keep = project_create(name="Keep me", owner=owner)
    kept = make_video(keep, owner)
    project_delete(project=project, actor=owner, confirm_name="Launch film")
    stored = video.video.name
    assert default_storage.exists(stored)

    assert projects_purge_due(now=timezone.now() + timedelta(days=6)) == 0
    assert Project.objects.filter(pk=project.pk).exists()

    Project.objects.filter(pk=project.pk).update(deleted_at=timezone.now() - timedelta(days=8))
    # The scheduler's own sweep, as it runs every interval (it closes its connections after
    # each sweep, which would end the test's transaction: kept open here).
    monkeypatch.setattr(scheduler.connections, "close_all", lambda: None)
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduler._sweep(stale_after=timedelta(minutes=2), redis_lost=False)
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not Generation.objects.filter(pk=video.pk).exists()
    assert not default_storage.exists(stored)
    assert default_storage.exists(kept.video.name)
    assert AuditEvent.objects.filter(
        target_type="project", action=AuditEvent.Action.DELETED, target_id=str(project.pk)
    ).exists()


def test_copy_makes_a_new_marked_row_with_its_own_file_and_no_charge(  # type: ignore[no-untyped-def]
    signed_in, project, owner, teammate, viewer, make_video
) -> None:
    original = make_video(project, teammate, prompt="Paper boat")
    target = project_create(name="B-roll", owner=viewer)  # the viewer edits this one
    charged_before = LedgerEntry.objects.count()
    client = signed_in(viewer)
    answer = client.post(
        reverse("projects:generation_copy", args=[project.pk, original.pk]),
        {"to_project": str(target.pk)},
    )
    assert answer.status_code == 302
    copy = Generation.objects.get(project=target)
    assert copy.pk != original.pk and copy.copied_from_id == original.pk
    assert copy.status == Status.COMPLETED and copy.prompt == "Paper boat"
    assert copy.provider_job_id is None and copy.created_by == viewer
    assert copy.video.name != original.video.name
    assert copy.video.open("rb").read() == original.video.open("rb").read()
    assert LedgerEntry.objects.count() == charged_before  # no provider call, no charge
    assert Generation.objects.filter(pk=original.pk, project=project).exists()
    assert AuditEvent.objects.filter(target_id=str(copy.pk), action="created").exists()
    detail = client.get(reverse("generations:detail", args=[target.pk, copy.pk]))
    assert "data-copy-of" in detail.content.decode()


def test_copy_only_into_a_project_the_member_can_edit(  # type: ignore[no-untyped-def]
    project, owner, teammate, viewer, outsider, make_video
) -> None:
    original = make_video(project, teammate)
    watched = project_create(name="Watched", owner=owner)
    membership_add(project=watched, username=teammate.username, role=Role.VIEWER, actor=owner)
    with pytest.raises(PermissionDenied):
        generation_copy(generation=original, to_project=watched, actor=teammate)
    theirs = project_create(name="Theirs", owner=outsider)
    with pytest.raises(PermissionDenied):  # not a member of the source
        generation_copy(generation=original, to_project=theirs, actor=outsider)
    original.status = Status.FAILED
    original.save(update_fields=["status"])
    with pytest.raises(ValidationError, match="Only a ready video"):
        generation_copy(generation=original, to_project=project, actor=owner)
    assert not Generation.objects.filter(copied_from=original).exists()


def test_the_api_hides_a_deleted_project_too(client, project, owner, teammate, make_video) -> None:  # type: ignore[no-untyped-def]
    from workspace.api.services import token_create

    video = make_video(project, teammate)
    secret = token_create(
        owner=teammate, name="script", project=None, can_write=False, expires_at=None
    ).secret
    headers = {"Authorization": f"Bearer {secret}"}
    listed = client.get("/v1/videos", headers=headers).json()
    assert len(listed["data"]) == 1 and str(video.pk) in listed["data"][0]["id"]
    project_delete(project=project, actor=owner, confirm_name="Launch film")
    assert client.get("/v1/videos", headers=headers).json()["data"] == []


def test_a_deleted_projects_name_is_refused_with_the_reason(project, owner) -> None:  # type: ignore[no-untyped-def]
    project_delete(project=project, actor=owner, confirm_name="Launch film")
    with pytest.raises(ValidationError, match="recently deleted project"):
        project_create(name="launch FILM", owner=owner)
