"""Retention: removing the stored files of finished videos a policy no longer keeps.

The policy is a project's own ``RetentionPolicy`` row, else the organisation's default (the row
without a project), else nothing is removed. It removes the files of videos finished more than
``remove_after_days`` ago and/or, with ``keep_only_picked``, of the takes not picked once a take
of their request is picked. It never touches:

- anything not ``completed`` (queued, running, downloading, held: work in flight), nor a video
  that work in flight still reads: the source of an edit, remix or extension not finished yet,
  or of a character being made;
- approved videos and videos a member starred, unless the policy says otherwise;
- projects deleted and waiting for their purge (the purge removes everything; until then an
  owner may restore the project as it was).

Archived projects are read-only for their members, but their files are the organisation's
storage: the policy applies to them as to any project.

Removing a video's files keeps its ``Generation`` row, its ledger entries and its input images
(small, and what it was made from). The row is marked in one conditional UPDATE that re-checks
every condition above, so two runs at once, or a member starring the video a moment before,
leave it alone; the files are deleted only after that UPDATE commits, and the poster a download
may still be adding is refused by its own conditional update (``following``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from workspace.core.models import AuditEvent
from workspace.core.rq import get_redis
from workspace.generations.models import (
    ACTIVE_STATUSES,
    Character,
    CharacterStatus,
    Generation,
    RetentionPolicy,
    Status,
)
from workspace.projects.models import Membership, Project
from workspace.projects.services import ARCHIVED_REFUSAL
from workspace.reviews.models import Favourite, ReviewDecision, ReviewState

logger = logging.getLogger(__name__)

FILE_FIELDS = ("video", "thumbnail", "spritesheet")
BATCH = 200
# The audit entry lists the videos it removed up to this many (the counts are always whole).
AUDIT_IDS_MAX = 1000
REASON_AGE = "older than {days} days"
REASON_UNPICKED = "a take that was not picked"
AUDIT_ACTOR = "retention policy"


def retention_policy_default() -> RetentionPolicy:
    """The organisation's default; keep-everything (unsaved) when an admin never set one."""
    return RetentionPolicy.objects.filter(project__isnull=True).first() or RetentionPolicy()


def retention_policy_for(*, project: Project) -> RetentionPolicy:
    """The policy that applies to ``project``: its own, else the organisation's default."""
    own = RetentionPolicy.objects.filter(project=project).first()
    return own if own is not None else retention_policy_default()


def retention_policy_set(
    *,
    project: Project,
    actor: User,
    use_default: bool,
    remove_after_days: int | None = None,
    keep_only_picked: bool = False,
    keep_approved_and_favourites: bool = True,
) -> RetentionPolicy:
    """A project owner's choice: the organisation's default, or the project's own policy.
    Audited; refused on an archived project (read-only) like every other setting."""
    membership = Membership.objects.filter(project=project, user_id=actor.pk).first()
    if membership is None:
        raise Project.DoesNotExist("No such project.")
    if not membership.can_manage:
        raise PermissionDenied("Only a project owner can change how long files are kept.")
    if remove_after_days is not None and remove_after_days < 1:
        raise ValidationError({"remove_after_days": "Keep files at least one day."})
    with transaction.atomic():
        locked = Project.objects.select_for_update().filter(pk=project.pk).first()
        if locked is None or locked.is_deleted:
            raise ValidationError("This project was deleted.")
        if locked.is_archived:
            raise ValidationError(ARCHIVED_REFUSAL)
        own = RetentionPolicy.objects.filter(project=project).first()
        before = "organisation default" if own is None else own.describe()
        if use_default:
            if own is not None:
                own.delete()
            policy = retention_policy_default()
            after = "organisation default"
        else:
            policy, _ = RetentionPolicy.objects.update_or_create(
                project=project,
                defaults={
                    "remove_after_days": remove_after_days,
                    "keep_only_picked": keep_only_picked,
                    "keep_approved_and_favourites": keep_approved_and_favourites,
                    "updated_by": actor,
                },
            )
            after = policy.describe()
        if before != after:
            AuditEvent.record(
                actor=actor,
                action=AuditEvent.Action.CHANGED,
                target_type=str(Project._meta.verbose_name),
                target_id=project.pk,
                target_repr=project.name,
                changes={"retention": [before, after]},
            )
    return policy


def _unpicked() -> Exists:
    # A take of a set in which another take is the pick.
    return Exists(
        Generation.objects.filter(
            take_set=OuterRef("take_set"), project_id=OuterRef("project_id"), is_pick=True
        )
    )


def retention_candidates(
    *, project: Project, policy: RetentionPolicy, now: datetime
) -> QuerySet[Generation]:
    """The videos of ``project`` whose files ``policy`` removes now, oldest first."""
    rule = Q()
    if policy.remove_after_days is not None:
        rule |= Q(completed_at__lt=now - timedelta(days=policy.remove_after_days))
    if policy.keep_only_picked:
        rule |= Q(take_set__isnull=False, is_pick=False) & Q(_unpicked())
    if not rule:
        return Generation.objects.none()
    found = (
        Generation.objects.filter(
            rule, project=project, status=Status.COMPLETED, files_removed_at__isnull=True
        )
        .exclude(video="", thumbnail="", spritesheet="")
        # Work in flight that still reads this video's files (or its provider copy, which a
        # member would otherwise lose the way back to).
        .exclude(
            Exists(Generation.objects.filter(parent=OuterRef("pk"), status__in=ACTIVE_STATUSES))
        )
        .exclude(
            Exists(
                Character.objects.filter(
                    source_generation=OuterRef("pk"), status=CharacterStatus.PENDING
                )
            )
        )
    )
    if policy.keep_approved_and_favourites:
        found = found.exclude(
            Exists(
                ReviewDecision.objects.filter(
                    generation=OuterRef("pk"), is_current=True, state=ReviewState.APPROVED
                )
            )
        ).exclude(Exists(Favourite.objects.filter(generation=OuterRef("pk"))))
    return found.order_by("completed_at", "pk")


def _reason(generation: Generation, policy: RetentionPolicy, now: datetime) -> str:
    days = policy.remove_after_days
    if (
        days is not None
        and generation.completed_at is not None
        and (generation.completed_at < now - timedelta(days=days))
    ):
        return REASON_AGE.format(days=days)
    return REASON_UNPICKED


def _names(generation: Generation) -> list[str]:
    return [str(name) for f in FILE_FIELDS if (name := getattr(generation, f).name)]


def _bytes_of(generation: Generation) -> int:
    """What removing ``generation``'s files frees: the recorded size, or (a row from before
    sizes were recorded) what the store says."""
    if generation.stored_bytes:
        return generation.stored_bytes
    total = 0
    for name in _names(generation):
        try:
            total += default_storage.size(name)
        except Exception:  # any backend's "not there": nothing to free
            logger.info("retention: %s is not in storage", name)
    return total


@dataclass
class RemovedVideo:
    generation_id: str
    completed_at: datetime | None
    reason: str
    bytes: int


@dataclass
class ProjectRetention:
    project_id: int
    project_name: str
    policy: str
    videos: list[RemovedVideo] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.videos)

    @property
    def bytes(self) -> int:
        return sum(v.bytes for v in self.videos)


@dataclass
class RetentionReport:
    dry_run: bool
    at: datetime
    projects: list[ProjectRetention] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(p.count for p in self.projects)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.projects)


def _projects(project_ids: list[int] | None) -> Iterator[Project]:
    # Deleted projects wait for their purge untouched: an owner may still restore them whole.
    projects = Project.objects.filter(deleted_at__isnull=True).order_by("pk")
    if project_ids is not None:
        projects = projects.filter(pk__in=project_ids)
    # Materialised: each project's removals commit as they go, and a server-side cursor held
    # across those commits is a thing connection poolers do not keep.
    yield from list(projects)


def _delete_stored(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # the row already says removed: an orphan file, logged
            logger.warning("retention: could not delete %s; left in storage", name, exc_info=True)


def _remove(
    generation: Generation, *, project: Project, policy: RetentionPolicy, now: datetime
) -> RemovedVideo | None:
    """Mark one video's files removed if it is still a candidate, and delete them on commit."""
    reason = _reason(generation, policy, now)
    freed = _bytes_of(generation)
    names = _names(generation)
    with transaction.atomic():
        won = (
            retention_candidates(project=project, policy=policy, now=now)
            # Still naming the files read above: a poster attached since then is not blanked
            # without being deleted (the next run takes the row as it is then).
            .filter(
                pk=generation.pk,
                video=generation.video.name or "",
                thumbnail=generation.thumbnail.name or "",
                spritesheet=generation.spritesheet.name or "",
            )
            .update(
                files_removed_at=now,
                files_removed_reason=reason[:200],
                video="",
                thumbnail="",
                spritesheet="",
                stored_bytes=0,
                # Open project pages redraw the card from the live endpoint.
                updated_at=timezone.now(),
            )
        )
        if not won:
            return None
        transaction.on_commit(lambda: _delete_stored(names))
    return RemovedVideo(str(generation.pk), generation.completed_at, reason, freed)


def retention_apply(
    *, dry_run: bool, now: datetime | None = None, project_ids: list[int] | None = None
) -> RetentionReport:
    """Apply every project's retention policy (or only ``project_ids``').

    A dry run changes nothing and reports what a real run would remove now. A real run removes
    those files, keeps the rows marked, and writes one audit entry per project it removed
    anything from, with the count and the bytes freed.
    """
    now = now or timezone.now()
    report = RetentionReport(dry_run=dry_run, at=now)
    default = retention_policy_default()
    own = {p.project_id: p for p in RetentionPolicy.objects.filter(project__isnull=False)}
    for project in _projects(project_ids):
        policy = own.get(project.pk, default)
        if not policy.removes_anything:
            continue
        entry = ProjectRetention(project.pk, project.name, policy.describe())
        found = retention_candidates(project=project, policy=policy, now=now)
        if dry_run:
            for generation in found.iterator(chunk_size=BATCH):
                entry.videos.append(
                    RemovedVideo(
                        str(generation.pk),
                        generation.completed_at,
                        _reason(generation, policy, now),
                        _bytes_of(generation),
                    )
                )
        else:
            skipped: set[uuid.UUID] = set()
            while batch := list(found.exclude(pk__in=skipped)[:BATCH]):
                for generation in batch:
                    removed = _remove(generation, project=project, policy=policy, now=now)
                    if removed is None:
                        skipped.add(generation.pk)  # changed meanwhile: left for the next run
                    else:
                        entry.videos.append(removed)
            if entry.videos:
                _audit(entry, now=now)
        if entry.videos:
            report.projects.append(entry)
    if not dry_run and report.count:
        logger.info(
            "retention removed the files of %d videos in %d projects (%d bytes)",
            report.count, len(report.projects), report.bytes,
        )  # fmt: skip
    return report


def _audit(entry: ProjectRetention, *, now: datetime) -> None:
    reasons: dict[str, int] = {}
    for video in entry.videos:
        reasons[video.reason] = reasons.get(video.reason, 0) + 1
    AuditEvent.record(
        actor=None,
        actor_name=AUDIT_ACTOR,
        action=AuditEvent.Action.CHANGED,
        # The project's own events are its activity feed's: members see what went and why.
        target_type=str(Project._meta.verbose_name),
        target_id=entry.project_id,
        target_repr=entry.project_name,
        created_at=now,
        changes={
            "files_removed": [0, entry.count],
            "bytes_freed": [0, entry.bytes],
            "retention": [None, entry.policy],
            "reasons": [None, reasons],
            "generation_ids": [None, [v.generation_id for v in entry.videos[:AUDIT_IDS_MAX]]],
        },
    )


RUN_KEY = "reelhouse:retention-ran"
# A little under a day, so the run does not creep later by a sweep interval every day.
RUN_EVERY_SECONDS = 23 * 3600


def retention_run_daily(*, now: datetime | None = None) -> RetentionReport | None:
    """The scheduler's daily run: at most one per day across every scheduler process (a Redis
    key taken with SET NX); a second run anyway would find nothing left to remove."""
    if not get_redis().set(RUN_KEY, "1", nx=True, ex=RUN_EVERY_SECONDS):
        return None
    return retention_apply(dry_run=False, now=now)
