from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, prefetch_related_objects
from django.http import Http404
from django.utils import timezone

from workspace.generations.models import ACTIVE_STATUSES, Generation, Status
from workspace.generations.render_times import render_seconds_estimate
from workspace.generations.standings import queue_standings
from workspace.generations.versions import stacks_attach
from workspace.projects.models import Project
from workspace.reviews.models import Favourite, ReviewDecision, ReviewState


def _attach_progress_clock(generations: list[Generation]) -> None:
    """Give running generations what the card needs to move its bar between checks.

    ``progress_started`` (unix seconds) and ``progress_expected`` (seconds): the page
    interpolates from them and never shows 100 % before the video is stored.
    """
    expected: dict[tuple[int, str, int], float] = {}
    for generation in generations:
        generation.progress_shown = min(generation.progress, 99)  # type: ignore[attr-defined]
        generation.progress_started = None  # type: ignore[attr-defined]
        generation.progress_expected = None  # type: ignore[attr-defined]
        started = generation.submitted_at or generation.submit_started_at
        if generation.status not in (Status.SUBMITTING, Status.IN_PROGRESS) or started is None:
            continue
        key = (generation.channel_id, generation.model, generation.seconds)
        if key not in expected:
            expected[key] = render_seconds_estimate(
                channel=generation.channel, model=generation.model, seconds=generation.seconds
            )
        generation.progress_started = started.timestamp()  # type: ignore[attr-defined]
        generation.progress_expected = round(expected[key], 2)  # type: ignore[attr-defined]


def generations_decorate(generations: list[Generation]) -> list[Generation]:
    """Give cards what they show besides the row: the progress clock and queue standings.

    Queued ones carry ``standing`` (position, reason, ETA); one standings call per channel.
    """
    # The images each card shows it was made from: two queries for the whole page.
    prefetch_related_objects(generations, "inputs__source_generation")
    queued_by_channel: dict[int, list[Generation]] = {}
    for generation in generations:
        generation.standing = None  # type: ignore[attr-defined]
        if generation.status == Status.QUEUED:
            queued_by_channel.setdefault(generation.channel_id, []).append(generation)
    _attach_progress_clock(generations)
    stacks_attach(generations)
    for waiting in queued_by_channel.values():
        standings = queue_standings(
            channel=waiting[0].channel, generation_ids={str(g.pk) for g in waiting}
        )
        for generation in waiting:
            generation.standing = standings.get(str(generation.pk))  # type: ignore[attr-defined]
    return generations


def generations_for_project(*, project: Project, limit: int = 60) -> list[Generation]:
    """The project's latest generations, ready for cards."""
    return generations_decorate(
        list(
            Generation.objects.filter(project=project, is_stack_head=True)
            .select_related("created_by", "channel")
            .order_by("-created_at")[:limit]
        )
    )


# A row committed a little after the cursor was taken can carry an earlier ``updated_at`` (the
# time its transaction wrote, not when it became visible), and clocks of web and worker hosts
# differ a little: every answer repeats this much of the past. Pages skip unchanged cards.
LIVE_OVERLAP = timedelta(seconds=10)
LIVE_LIMIT = 100


def generations_changed_since(
    *,
    project: Project,
    since: datetime,
    filters: GalleryFilters | None = None,
    generation_id: uuid.UUID | None = None,
    limit: int = LIVE_LIMIT,
) -> list[Generation]:
    """What an open project page must redraw: rows changed since ``since`` and every one still
    in flight (its progress clock and queue position move without the row changing), newest
    first, at most ``limit``, narrowed like the page; the same few queries however many videos
    the project has."""
    filters = filters or GalleryFilters()
    queryset = gallery_queryset(project=project, filters=filters)
    if generation_id is not None:  # a video's own page follows only that video
        queryset = queryset.filter(pk=generation_id)
    else:
        queryset = one_card_per_stack(queryset, filters)
    return generations_decorate(
        list(
            queryset.filter(Q(updated_at__gte=since - LIVE_OVERLAP) | Q(status__in=ACTIVE_STATUSES))
            .select_related("created_by", "channel")
            .order_by("-created_at")[:limit]
        )
    )


def generation_get_or_404(*, project: Project, generation_id: str) -> Generation:
    generation = (
        Generation.objects.select_related("project", "created_by", "channel")
        .filter(project=project, pk=generation_id)
        .first()
    )
    if generation is None:
        raise Http404("No such generation.")
    return generation


# ---- Finding videos: filters, full-text search and keyset pages ------------------------------

PAGE_SIZE = 48  # divides into rows of 2, 3 and 4 cards
SEARCH_CONFIG = "english"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GalleryFilters:
    """What a member narrowed the gallery to; every field comes from the page's URL."""

    q: str = ""
    member: str = ""  # a username
    model: str = ""
    status: str = ""
    first_day: date | None = None
    last_day: date | None = None
    review: str = ""  # a ReviewState value; "none" is every video without a decision
    favourites_of: int | None = None  # a user id: only the videos that member starred

    @property
    def active(self) -> bool:
        return any(
            (
                self.q,
                self.member,
                self.model,
                self.status,
                self.first_day,
                self.last_day,
                self.review,
                self.favourites_of,
            )
        )


@dataclass(frozen=True)
class GalleryCursor:
    """A position in the newest-first order: a generation's (created_at, id)."""

    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        micros = (self.created_at - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}_{self.id.hex}"

    @classmethod
    def decode(cls, value: str) -> GalleryCursor | None:
        micros, _, hex_id = value.partition("_")
        try:
            return cls(_EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=hex_id))
        except (ValueError, OverflowError):
            return None

    @classmethod
    def of(cls, generation: Generation) -> GalleryCursor:
        return cls(generation.created_at, generation.pk)


@dataclass(frozen=True)
class GalleryPage:
    generations: list[Generation]
    older: GalleryCursor | None  # where the next page (older videos) starts, if there is one
    newer: GalleryCursor | None  # where the previous page (newer videos) ends, if there is one


def prompt_search(queryset: QuerySet[Generation], q: str, *, vendor: str) -> QuerySet[Generation]:
    """Prompts matching ``q``: PostgreSQL full-text search (stemmed, web-search syntax: quoted
    phrases, ``or``, ``-word``) on its GIN index; elsewhere every word as a substring."""
    q = q.strip()
    if not q:
        return queryset
    if vendor == "postgresql":
        # The same expression as the index of migration 0008, or the index is not used.
        vector = SearchVector("prompt", config=SEARCH_CONFIG)
        query = SearchQuery(q, search_type="websearch", config=SEARCH_CONFIG)
        return queryset.alias(search=vector).filter(search=query)
    for word in q.split()[:10]:
        queryset = queryset.filter(prompt__icontains=word.strip('"'))
    return queryset


def gallery_queryset(*, project: Project, filters: GalleryFilters) -> QuerySet[Generation]:
    queryset = Generation.objects.filter(project=project)
    if filters.member:
        queryset = queryset.filter(created_by__username=filters.member)
    if filters.model:
        queryset = queryset.filter(model=filters.model)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    zone = timezone.get_current_timezone()
    if filters.first_day:
        start = datetime.combine(filters.first_day, time.min, tzinfo=zone)
        queryset = queryset.filter(created_at__gte=start)
    if filters.last_day:
        end = datetime.combine(filters.last_day + timedelta(days=1), time.min, tzinfo=zone)
        queryset = queryset.filter(created_at__lt=end)
    if filters.review:
        # Semi-joins on the partial index of current decisions, not a join per card.
        decided = ReviewDecision.objects.filter(generation=OuterRef("pk"), is_current=True)
        if filters.review == ReviewState.NONE:
            queryset = queryset.exclude(Exists(decided.exclude(state=ReviewState.NONE)))
        else:
            queryset = queryset.filter(Exists(decided.filter(state=filters.review)))
    if filters.favourites_of is not None:
        starred = Favourite.objects.filter(generation=OuterRef("pk"), user_id=filters.favourites_of)
        queryset = queryset.filter(Exists(starred))
    return prompt_search(queryset, filters.q, vendor=connection.vendor)


def one_card_per_stack(
    queryset: QuerySet[Generation], filters: GalleryFilters
) -> QuerySet[Generation]:
    """The unfiltered gallery shows each stack once, as its head (the pick of a take set, or
    its newest version), from the partial index of heads; a search or filter shows every
    version that matches, since the one it matched may not be the head."""
    return queryset if filters.active else queryset.filter(is_stack_head=True)


def gallery_page(
    *,
    project: Project,
    filters: GalleryFilters,
    before: GalleryCursor | None = None,
    after: GalleryCursor | None = None,
    size: int = PAGE_SIZE,
) -> GalleryPage:
    """One page of the gallery, newest first, from a keyset cursor: the same few queries on the
    first page and the thousandth (no OFFSET), and a page never repeats or skips a video when
    new ones arrive meanwhile."""
    queryset = one_card_per_stack(
        gallery_queryset(project=project, filters=filters), filters
    ).select_related("created_by", "channel")
    if after is not None:  # the page just newer than ``after``
        rows = list(
            queryset.filter(
                Q(created_at__gt=after.created_at) | Q(created_at=after.created_at, id__gt=after.id)
            ).order_by("created_at", "id")[: size + 1]
        )
        has_newer = len(rows) > size
        rows = rows[:size][::-1]
        generations = generations_decorate(rows)
        return GalleryPage(
            generations,
            older=after,
            newer=GalleryCursor.of(rows[0]) if has_newer and rows else None,
        )
    if before is not None:
        queryset = queryset.filter(
            Q(created_at__lt=before.created_at) | Q(created_at=before.created_at, id__lt=before.id)
        )
    rows = list(queryset.order_by("-created_at", "-id")[: size + 1])
    has_older = len(rows) > size
    rows = rows[:size]
    return GalleryPage(
        generations_decorate(rows),
        older=GalleryCursor.of(rows[-1]) if has_older else None,
        newer=GalleryCursor.of(rows[0]) if before is not None and rows else None,
    )


FRAME_SOURCES_LIMIT = 30


def frame_sources(*, project: Project) -> list[Generation]:
    """The project's latest finished videos, which a new video may start from a frame of."""
    return list(
        Generation.objects.filter(project=project, status=Status.COMPLETED)
        .exclude(video="")
        .order_by("-created_at")[:FRAME_SOURCES_LIMIT]
    )
