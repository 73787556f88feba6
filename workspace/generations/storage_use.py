"""Storage used: bytes of stored files per project and per member, and measuring old rows.

Sizes are recorded when a file is stored (``Generation.stored_bytes`` for the video, poster and
spritesheet; ``GenerationInput.byte_size`` for an input image), so every figure here is a
grouped sum in the database: two queries per table whatever the number of files, and the store
is never asked. Videos are counted against the member who asked for them; input images against
the video they were sent with. Deleted projects count until their purge (their files are still
there); files the retention policy removed count as nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.db.models import Q, Sum

from workspace.generations.models import Generation, GenerationInput
from workspace.projects.models import Project

logger = logging.getLogger(__name__)

_FILE_FIELDS = ("video", "thumbnail", "spritesheet")


@dataclass
class StorageRow:
    label: str
    bytes: int = 0
    key: int | None = None


def _sums(
    group_by: str, label: str | None = None, **where: object
) -> tuple[dict[int, int], dict[int, str]]:
    """Stored bytes grouped by a ``Generation`` column, and each group's ``label`` (a column
    the group determines, read in the same query): two grouped queries (videos' files, then
    their input images), the groups added up. Every input image belongs to a video, so every
    group has its label."""
    totals: dict[int, int] = {}
    labels: dict[int, str] = {}
    columns = [group_by, label] if label else [group_by]
    videos = Generation.objects.filter(**where).values_list(*columns).annotate(Sum("stored_bytes"))
    for key, *rest in videos.order_by():
        if key is not None:
            totals[key] = totals.get(key, 0) + int(rest[-1] or 0)
            if label:
                labels[key] = rest[0]
    inputs = (
        GenerationInput.objects.filter(**{f"generation__{k}": v for k, v in where.items()})
        .values_list(f"generation__{group_by}")
        .annotate(Sum("byte_size"))
    )
    for key, size in inputs.order_by():
        if key is not None:
            totals[key] = totals.get(key, 0) + int(size or 0)
    return totals, labels


def _top(rows: list[StorageRow], limit: int) -> list[StorageRow]:
    rows.sort(key=lambda r: (-r.bytes, r.label))
    if len(rows) <= limit:
        return rows
    rest = StorageRow(f"{len(rows) - limit} others", sum(r.bytes for r in rows[limit:]))
    return [*rows[:limit], rest]


def storage_by_project(*, top: int = 15) -> list[StorageRow]:
    """Bytes stored per project, largest first (the rest summed in one row)."""
    totals, names = _sums("project_id", "project__name")
    rows = [
        StorageRow(names.get(pk, f"(project #{pk})"), size, pk)
        for pk, size in totals.items()
        if size
    ]
    return _top(rows, top)


def storage_by_member(*, top: int = 15) -> list[StorageRow]:
    """Bytes stored per member who asked for the videos, largest first."""
    totals, names = _sums("created_by_id", "created_by__username")
    rows = [
        StorageRow(names.get(pk, f"(user #{pk})"), size, pk) for pk, size in totals.items() if size
    ]
    return _top(rows, top)


def storage_of_member(*, user: User) -> list[StorageRow]:
    """One member's stored bytes by project, largest first: projects they are still a member
    of by name; the rest (left, or deleted) together, since their names are no longer theirs
    to see."""
    totals, _ = _sums("project_id", created_by_id=user.pk)
    names = dict(
        Project.objects.filter(
            pk__in=totals, deleted_at__isnull=True, memberships__user=user
        ).values_list("pk", "name")
    )
    rows = [StorageRow(names[pk], size, pk) for pk, size in totals.items() if size and pk in names]
    rows.sort(key=lambda r: (-r.bytes, r.label))
    elsewhere = sum(size for pk, size in totals.items() if pk not in names)
    if elsewhere:
        rows.append(StorageRow("Projects you are no longer in", elsewhere, None))
    return rows


def storage_of_project(*, project: Project) -> int:
    """Bytes stored for one project's videos and their input images."""
    return sum(_sums("project_id", project_id=project.pk)[0].values())


def storage_measure(*, recount: bool = False, batch: int = 500) -> tuple[int, int]:
    """Record ``stored_bytes`` from the store for rows stored before sizes were recorded (or,
    with ``recount``, for every row with files); returns (rows changed, bytes they hold).

    Safe to re-run and to run beside the workers: each row is written by a conditional update
    that still expects the same file names, so a row whose files changed meanwhile is left to
    the next run.
    """
    rows_changed = 0
    total = 0
    with_files = ~Q(video="", thumbnail="", spritesheet="")
    pending = Generation.objects.filter(with_files, files_removed_at__isnull=True)
    if not recount:
        pending = pending.filter(stored_bytes=0)
    last_pk = None
    while True:
        page = pending.order_by("pk")
        if last_pk is not None:
            page = page.filter(pk__gt=last_pk)
        chunk = list(page.only("pk", *_FILE_FIELDS, "stored_bytes")[:batch])
        if not chunk:
            break
        last_pk = chunk[-1].pk
        for generation in chunk:
            changed, size = generation_measure(generation=generation)
            rows_changed += changed
            total += size if changed else 0
    return rows_changed, total


def generation_measure(*, generation: Generation) -> tuple[bool, int]:
    """Record the bytes ``generation``'s files take in the store now (files it names that the
    store lacks count nothing); whether the row changed, and the size.

    A conditional update that still expects the same file names: a row whose files changed
    meanwhile is left as it is (its new files were counted when they were stored).
    """
    size = 0
    names = {}
    for name_field in _FILE_FIELDS:
        name = getattr(generation, name_field).name
        names[name_field] = name or ""
        if not name:
            continue
        try:
            size += default_storage.size(name)
        except Exception:  # any backend's "not there"
            logger.warning("storage: %s is not in storage", name)
    if size == generation.stored_bytes:
        return False, size
    changed = Generation.objects.filter(pk=generation.pk, **names).update(stored_bytes=size)
    return bool(changed), size
