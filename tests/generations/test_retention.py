"""Retention: what a policy removes (dry run and real run), what it keeps, and storage used."""

from __future__ import annotations

import uuid
from datetime import timedelta
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from workspace.core.models import AuditEvent
from workspace.generations import following, retention
from workspace.generations.models import (
    Character,
    Generation,
    GenerationInput,
    InputRole,
    Operation,
    RetentionPolicy,
    Status,
)
from workspace.generations.retention import retention_apply, retention_policy_set
from workspace.generations.storage_use import (
    storage_by_member,
    storage_by_project,
    storage_measure,
    storage_of_member,
    storage_of_project,
)
from workspace.generations.submission import generation_submit
from workspace.generations.versions import generation_pick
from workspace.projects.models import Membership
from workspace.projects.services import (
    membership_add,
    membership_remove,
    project_archive,
    project_create,
    project_rename,
)
from workspace.providers.models import Channel
from workspace.reviews.models import Favourite, ReviewDecision, ReviewState
from workspace.sharing.services import share_link_create

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(1000)  # 1012 bytes
POSTER = b"\xff\xd8\xff" + bytes(97)  # 100 bytes

# Files are deleted after the removal commits, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def video(
    project, user, *, days_ago: float, status: str = Status.COMPLETED, **fields
) -> Generation:  # type: ignore[no-untyped-def]
    """A video finished ``days_ago`` days ago, its video and poster in storage."""
    finished = timezone.now() - timedelta(days=days_ago)
    generation = Generation.objects.create(
        project=project,
        created_by=user,
        channel=Channel.objects.get(slug="openai"),
        model="sora-2",
        prompt=fields.pop("prompt", "Waves"),
        size="1280x720",
        seconds=4,
        status=status,
        created_at=finished - timedelta(minutes=2),
        completed_at=finished if status == Status.COMPLETED else None,
        **fields,
    )
    if status == Status.COMPLETED:
        generation.video = default_storage.save(
            generation.storage_name("video.mp4"), ContentFile(VIDEO)
        )
        generation.thumbnail = default_storage.save(
            generation.storage_name("thumbnail.jpg"), ContentFile(POSTER)
        )
        generation.stored_bytes = len(VIDEO) + len(POSTER)
        generation.save()
    return generation


def files_of(generation: Generation) -> list[str]:
    return [
        f"generations/{generation.project_id}/{generation.pk}/{n}"
        for n in ("video.mp4", "thumbnail.jpg")
    ]


def still_stored(generation: Generation) -> bool:
    return all(default_storage.exists(name) for name in files_of(generation))


def org_default(**fields) -> RetentionPolicy:  # type: ignore[no-untyped-def]
    return RetentionPolicy.objects.create(project=None, **fields)


@pytest.fixture
def world(project, owner, teammate, viewer):  # type: ignore[no-untyped-def]
    """A 30-day default and a project with one video of every kind it must tell apart."""
    org_default(remove_after_days=30)
    old = video(project, teammate, days_ago=40, prompt="old")
    recent = video(project, teammate, days_ago=5, prompt="recent")
    approved = video(project, teammate, days_ago=40, prompt="approved")
    ReviewDecision.objects.create(generation=approved, state=ReviewState.APPROVED, decided_by=owner)
    starred = video(project, teammate, days_ago=40, prompt="starred")
    Favourite.objects.create(user=viewer, generation=starred)
    source_of_edit = video(project, teammate, days_ago=40, prompt="being edited")
    video(project, teammate, days_ago=0, status=Status.IN_PROGRESS, parent=source_of_edit,
          operation=Operation.EDIT, stack_id=source_of_edit.stack_id)  # fmt: skip
    source_of_character = video(project, teammate, days_ago=40, prompt="character source")
    Character.objects.create(
        project=project, channel=old.channel, created_by=teammate, name="Mia",
        source_generation=source_of_character,
    )  # fmt: skip
    running = video(project, teammate, days_ago=40, status=Status.IN_PROGRESS, prompt="running")
    old_rejected = video(project, teammate, days_ago=31, prompt="sent back")
    ReviewDecision.objects.create(
        generation=old_rejected, state=ReviewState.CHANGES_REQUESTED, decided_by=owner
    )
    return {
        "removed": {old.pk, old_rejected.pk},
        "kept": [recent, approved, starred, source_of_edit, source_of_character],
        "old": old,
        "running": running,
    }


def test_a_dry_run_reports_exactly_what_would_go_and_changes_nothing(project, world) -> None:  # type: ignore[no-untyped-def]
    before = list(Generation.objects.order_by("pk").values())
    report = retention_apply(dry_run=True)
    assert report.dry_run
    assert {uuid.UUID(v.generation_id) for p in report.projects for v in p.videos} == world[
        "removed"
    ]
    assert report.count == 2
    assert report.bytes == 2 * (len(VIDEO) + len(POSTER))
    assert {v.reason for v in report.projects[0].videos} == {"older than 30 days"}
    assert list(Generation.objects.order_by("pk").values()) == before
    assert all(still_stored(g) for g in Generation.objects.filter(pk__in=world["removed"]))
    assert not AuditEvent.objects.filter(actor_name=retention.AUDIT_ACTOR).exists()


def test_a_real_run_removes_that_set_keeps_the_rows_and_audits_once(project, world) -> None:  # type: ignore[no-untyped-def]
    planned = retention_apply(dry_run=True)
    report = retention_apply(dry_run=False)
    assert {v.generation_id for p in report.projects for v in p.videos} == {
        v.generation_id for p in planned.projects for v in p.videos
    }
    for generation in Generation.objects.filter(pk__in=world["removed"]):
        assert generation.status == Status.COMPLETED  # the record stays
        assert generation.files_removed_at is not None
        assert generation.files_removed_reason == "older than 30 days"
        assert not generation.video and not generation.thumbnail and generation.stored_bytes == 0
        assert not any(default_storage.exists(name) for name in files_of(generation))
    for generation in world["kept"]:
        generation.refresh_from_db()
        assert generation.files_removed_at is None and still_stored(generation)
    event = AuditEvent.objects.get(actor_name=retention.AUDIT_ACTOR)
    assert (event.target_type, event.target_id) == ("project", str(project.pk))
    assert event.changes["files_removed"] == [0, 2]
    assert event.changes["bytes_freed"] == [0, 2 * (len(VIDEO) + len(POSTER))]
    assert set(event.changes["generation_ids"][1]) == {str(pk) for pk in world["removed"]}
    # A second run (or one racing this one) finds nothing left and writes nothing.
    again = retention_apply(dry_run=False)
    assert again.count == 0
    assert AuditEvent.objects.filter(actor_name=retention.AUDIT_ACTOR).count() == 1


def test_a_video_starred_after_it_was_listed_is_left_alone(project, world, viewer) -> None:  # type: ignore[no-untyped-def]
    # The UPDATE re-checks every condition: a star between listing and removing wins.
    old = world["old"]
    policy = retention.retention_policy_for(project=project)
    now = timezone.now()
    assert retention.retention_candidates(project=project, policy=policy, now=now).filter(pk=old.pk)
    Favourite.objects.create(user=viewer, generation=old)
    assert retention._remove(old, project=project, policy=policy, now=now) is None
    old.refresh_from_db()
    assert old.files_removed_at is None and still_stored(old)


def test_a_poster_attached_after_it_was_listed_keeps_the_row(project, world) -> None:  # type: ignore[no-untyped-def]
    # The UPDATE expects the file names it read: blanking a poster attached since would leave
    # that file in the store with nothing naming it.
    old = world["old"]
    policy = retention.retention_policy_for(project=project)
    now = timezone.now()
    later = default_storage.save(old.storage_name("spritesheet.jpg"), ContentFile(POSTER))
    Generation.objects.filter(pk=old.pk).update(spritesheet=later)
    assert retention._remove(old, project=project, policy=policy, now=now) is None
    old.refresh_from_db()
    assert old.files_removed_at is None and old.spritesheet.name == later and still_stored(old)
    # The next run takes the row as it is now, every file with it.
    assert retention.retention_apply(dry_run=False).count >= 1
    assert not default_storage.exists(later)


def test_approved_and_starred_go_too_when_the_policy_says_so(project, world) -> None:  # type: ignore[no-untyped-def]
    RetentionPolicy.objects.filter(project=None).update(keep_approved_and_favourites=False)
    report = retention_apply(dry_run=False)
    prompts = set(
        Generation.objects.filter(files_removed_at__isnull=False).values_list("prompt", flat=True)
    )
    assert prompts == {"old", "sent back", "approved", "starred"}
    assert report.count == 4
    # Work in flight is never touched, whatever the policy.
    assert Generation.objects.get(prompt="being edited").files_removed_at is None
    assert Generation.objects.get(prompt="character source").files_removed_at is None


def takes(
    project, user, *, count: int, picked: int | None, days_ago: float = 1
) -> list[Generation]:  # type: ignore[no-untyped-def]
    take_set, stack = uuid.uuid4(), uuid.uuid4()
    made = [
        video(
            project,
            user,
            days_ago=days_ago,
            take_set=take_set,
            take_count=count,
            stack_id=stack,
            is_pick=(i == picked),
            prompt=f"take {i}",
        )
        for i in range(count)
    ]
    return made


def test_keep_only_picked_removes_the_takes_not_picked_once_one_is(project, teammate) -> None:  # type: ignore[no-untyped-def]
    org_default(keep_only_picked=True)
    picked_set = takes(project, teammate, count=3, picked=1)
    undecided = takes(project, teammate, count=2, picked=None)
    single = video(project, teammate, days_ago=400, prompt="alone")
    report = retention_apply(dry_run=False)
    gone = set(
        Generation.objects.filter(files_removed_at__isnull=False).values_list("pk", flat=True)
    )
    assert gone == {picked_set[0].pk, picked_set[2].pk}
    assert {v.reason for v in report.projects[0].videos} == {"a take that was not picked"}
    for kept in [picked_set[1], *undecided, single]:
        assert still_stored(kept)
    # A removed take can no longer become the pick: the next run would remove the playable one.
    with pytest.raises(ValidationError, match="removed by the retention policy"):
        generation_pick(generation=picked_set[0], user=teammate)
    assert Generation.objects.get(pk=picked_set[1].pk).is_pick


def test_a_projects_own_policy_beats_the_default(owner, teammate, project) -> None:  # type: ignore[no-untyped-def]
    org_default(remove_after_days=30)
    other = project_create(name="Keep forever", owner=owner)
    membership_add(project=other, username=teammate.username, role="editor", actor=owner)
    retention_policy_set(project=other, actor=owner, use_default=False, remove_after_days=None)
    strict = project_create(name="Strict", owner=owner)
    retention_policy_set(project=strict, actor=owner, use_default=False, remove_after_days=3)
    follows = video(project, teammate, days_ago=40)
    forever = video(other, teammate, days_ago=400)
    strict_old = video(strict, owner, days_ago=4)
    retention_apply(dry_run=False)
    assert Generation.objects.get(pk=follows.pk).files_removed_at is not None
    assert Generation.objects.get(pk=forever.pk).files_removed_at is None and still_stored(forever)
    assert Generation.objects.get(pk=strict_old.pk).files_removed_at is not None
    # Back to the default: the project's own row goes, the default applies at the next run.
    retention_policy_set(project=other, actor=owner, use_default=True)
    assert not RetentionPolicy.objects.filter(project=other).exists()
    assert retention_apply(dry_run=True).count == 1


def test_archived_projects_follow_the_policy_and_deleted_ones_wait_for_their_purge(
    owner, teammate, project
) -> None:  # type: ignore[no-untyped-def]
    org_default(remove_after_days=30)
    archived = project_create(name="Archived", owner=owner)
    in_archive = video(archived, owner, days_ago=40)
    project_archive(project=archived, actor=owner)
    deleted = project_create(name="Deleted", owner=owner)
    in_bin = video(deleted, owner, days_ago=40)
    deleted.deleted_at = timezone.now()
    deleted.save()
    retention_apply(dry_run=False)
    assert Generation.objects.get(pk=in_archive.pk).files_removed_at is not None
    assert Generation.objects.get(pk=in_bin.pk).files_removed_at is None and still_stored(in_bin)


def test_no_policy_removes_nothing(project, teammate) -> None:  # type: ignore[no-untyped-def]
    old = video(project, teammate, days_ago=4000)
    assert retention_apply(dry_run=False).count == 0
    assert still_stored(old)


def test_the_command_lists_the_dry_run_and_the_scheduler_runs_once_a_day(project, world) -> None:  # type: ignore[no-untyped-def]
    out = StringIO()
    call_command("retention_apply", "--dry-run", stdout=out)
    text = out.getvalue()
    assert str(world["old"].pk) in text and "older than 30 days" in text
    assert (
        f"Dry run: would remove the files of 2 video(s) in 1 project(s), {2 * 1112} bytes" in text
    )
    assert Generation.objects.filter(files_removed_at__isnull=False).count() == 0
    first = retention.retention_run_daily()
    assert first is not None and first.count == 2
    assert retention.retention_run_daily() is None  # the day's run is taken


def test_the_owner_sets_the_policy_on_the_settings_page(
    project, owner, teammate, signed_in
) -> None:  # type: ignore[no-untyped-def]
    url = reverse("generations:retention", args=[project.pk])
    client = signed_in(owner)
    answer = client.post(url, {"scope": "own", "remove_after_days": "14", "keep_only_picked": "on"})
    assert answer.status_code == 302
    policy = RetentionPolicy.objects.get(project=project)
    assert (policy.remove_after_days, policy.keep_only_picked) == (14, True)
    assert policy.keep_approved_and_favourites is False  # an unticked box
    event = AuditEvent.objects.filter(target_type="project", changes__has_key="retention").get()
    assert event.changes["retention"][0] == "organisation default"
    page = client.get(reverse("projects:settings", args=[project.pk]))
    assert "This project\u2019s own policy" in page.content.decode()
    refused = client.post(url, {"scope": "own", "remove_after_days": "0"})
    assert refused.status_code == 302
    assert RetentionPolicy.objects.get(project=project).remove_after_days == 14
    assert signed_in(teammate).post(url, {"scope": "default"}).status_code == 403
    project_archive(project=project, actor=owner)
    signed_in(owner).post(url, {"scope": "default"})
    assert RetentionPolicy.objects.filter(project=project).exists()  # archived: read-only


def test_pages_say_files_were_removed_instead_of_a_broken_player(
    project, world, teammate, signed_in
) -> None:  # type: ignore[no-untyped-def]
    retention_apply(dry_run=False)
    old = world["old"]
    client = signed_in(teammate)
    detail = client.get(reverse("generations:detail", args=[project.pk, old.pk])).content.decode()
    assert "Files removed by the retention policy" in detail and "older than 30 days" in detail
    assert "<video" not in detail
    gallery = client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert "by the retention policy" in gallery
    for variant in ("video", "thumbnail", "spritesheet"):
        gone = client.get(reverse("generations:file", args=[project.pk, old.pk, variant]))
        assert gone.status_code == 410
        assert "files were removed" in gone.content.decode()
    zip_answer = client.get(reverse("sharing:zip", args=[project.pk]), {"g": [str(old.pk)]})
    assert zip_answer.status_code == 410
    assert "removed by the retention policy" in zip_answer.content.decode()


def test_share_links_to_removed_videos_fail_clearly(project, teammate, client) -> None:  # type: ignore[no-untyped-def]
    org_default(remove_after_days=30)
    old = video(project, teammate, days_ago=40)
    recent = video(project, teammate, days_ago=1)
    issued = share_link_create(
        project=project, generation_ids=[str(old.pk), str(recent.pk)], actor=teammate,
        lifetime_days=7, show_prompt=False,
    )  # fmt: skip
    retention_apply(dry_run=False)
    page = client.get(reverse("sharing:public", args=[issued.token]))
    assert page.status_code == 200
    assert "1 of the shared videos was removed" in page.content.decode()
    gone = client.get(reverse("sharing:public_file", args=[issued.token, old.pk, "video"]))
    assert gone.status_code == 410 and "files were removed" in gone.content.decode()
    assert (
        client.get(
            reverse("sharing:public_file", args=[issued.token, recent.pk, "video"])
        ).status_code
        == 200
    )
    with pytest.raises(Exception, match="removed by the retention policy"):
        share_link_create(
            project=project, generation_ids=[str(old.pk)], actor=teammate, lifetime_days=7,
            show_prompt=False,
        )  # fmt: skip


def test_storage_used_is_summed_per_project_and_member_in_a_fixed_number_of_queries(
    owner, teammate, project
) -> None:  # type: ignore[no-untyped-def]
    each = len(VIDEO) + len(POSTER)
    first = video(project, teammate, days_ago=1)
    GenerationInput.objects.create(
        generation=first, role=InputRole.REFERENCE, image="x.png", content_type="image/png",
        width=1, height=1, byte_size=50,
    )  # fmt: skip
    video(project, owner, days_ago=1)

    def measured():  # type: ignore[no-untyped-def]
        with CaptureQueriesContext(connection) as queries:
            by_project = {r.label: r.bytes for r in storage_by_project()}
            by_member = {r.label: r.bytes for r in storage_by_member()}
        return by_project, by_member, len(queries)

    by_project, by_member, few = measured()
    assert by_project == {"Launch film": 2 * each + 50}
    assert by_member == {"tariq": each + 50, "olivia": each}
    assert storage_of_project(project=project) == 2 * each + 50
    assert [(r.label, r.bytes) for r in storage_of_member(user=teammate)] == [
        ("Launch film", each + 50)
    ]
    for n in range(5):
        more = project_create(name=f"More {n}", owner=owner)
        video(more, owner, days_ago=1)
    *_, many = measured()
    assert many == few
    # Removed files count as nothing.
    org_default(remove_after_days=2)
    Generation.objects.filter(pk=first.pk).update(completed_at=timezone.now() - timedelta(days=3))
    retention_apply(dry_run=False, project_ids=[project.pk])
    assert storage_of_project(project=project) == each + 50  # the input image stays


def test_the_usage_pages_show_storage(project, teammate, client, admin_user) -> None:  # type: ignore[no-untyped-def]
    video(project, teammate, days_ago=1)
    client.force_login(teammate)
    mine = client.get(reverse("billing:usage")).content.decode()
    assert "data-member-storage" in mine and "1.1\xa0KB" in mine
    client.force_login(admin_user)
    panel = client.get(reverse("admin:billing_usagepanel_changelist")).content.decode()
    assert "Storage used now: 1.1\xa0KB" in panel and "Launch film" in panel
    assert "Retention, organisation default: files are kept." in panel


def test_storage_measure_fills_sizes_of_rows_stored_before_sizes_were_recorded(
    project, teammate
) -> None:  # type: ignore[no-untyped-def]
    old = video(project, teammate, days_ago=100)
    Generation.objects.filter(pk=old.pk).update(stored_bytes=0)
    out = StringIO()
    call_command("storage_measure", stdout=out)
    assert "Measured 1 video(s): 1112 bytes" in out.getvalue()
    assert Generation.objects.get(pk=old.pk).stored_bytes == len(VIDEO) + len(POSTER)
    assert storage_measure() == (0, 0)  # nothing left to measure: safe to re-run


def test_a_poster_stored_after_the_files_were_removed_is_not_kept(
    project, teammate, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    # An unpicked take can go the moment it completes, while its download still adds the poster.
    generation = generation_submit(
        project=project, user=teammate, model="sora-2", prompt="Waves", size="1280x720", seconds=4
    )
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.DOWNLOADING, provider_job_id="video_race"
    )
    generation.refresh_from_db()

    def store(row, adapter, variant, retrieved):  # type: ignore[no-untyped-def]
        if variant == "thumbnail":  # the retention run lands between the video and the poster
            Generation.objects.filter(pk=row.pk).update(files_removed_at=timezone.now(), video="")
        name = default_storage.save(row.storage_name(f"{variant}.bin"), ContentFile(POSTER))
        return name, len(POSTER)

    monkeypatch.setattr(following, "_store_variant", store)
    adapter = SimpleNamespace(variants=("video", "thumbnail"))
    following._download_files(generation, adapter, retrieved=None)  # type: ignore[arg-type]
    row = Generation.objects.get(pk=generation.pk)
    assert row.status == Status.COMPLETED and row.files_removed_at is not None
    assert not row.thumbnail and row.stored_bytes == len(
        POSTER
    )  # the video's, zeroed by retention in real runs
    assert not default_storage.exists(generation.storage_name("thumbnail.bin"))


def test_a_member_who_left_sees_their_bytes_but_not_the_projects_name(
    owner, teammate, project
) -> None:  # type: ignore[no-untyped-def]
    video(project, teammate, days_ago=1)
    membership_remove(
        membership=Membership.objects.get(project=project, user=teammate), actor=owner
    )
    project_rename(project=project, name="Secret acquisition", actor=owner)
    rows = storage_of_member(user=teammate)
    assert [(r.label, r.bytes, r.key) for r in rows] == [
        ("Projects you are no longer in", len(VIDEO) + len(POSTER), None)
    ]
