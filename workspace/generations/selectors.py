from __future__ import annotations

import contextlib
import copy
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery, prefetch_related_objects
from django.http import Http404
from django.utils import timezone
from redis import RedisError

from workspace.core.rq import get_redis
from workspace.generations.models import ACTIVE_STATUSES, Generation, Status
from workspace.generations.render_times import render_seconds_estimate
from workspace.generations.standings import QueueStanding, queue_standings
from workspace.generations.versions import stacks_attach
from workspace.projects.models import Project
from workspace.providers.models import Channel
from workspace.reviews.models import Favourite
from workspace.reviews.selectors import decisions_attach


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


def _standing_words(standing: QueueStanding | None) -> tuple[str, str]:
    """The queue note's two parts, e.g. ("#3 in the queue", ", about 2 minutes from now. …"):
    the card's template and the live updates' JSON show the same words."""
    if standing is None:
        return "", ""
    eta = f", about {naturaltime(standing.eta)}" if standing.eta else ""
    return f"#{standing.position} in the queue", f"{eta}. {standing.reason}"


def _attach_standings(
    generations: list[Generation],
    standings_of: Callable[[Channel, set[str]], dict[str, QueueStanding]],
) -> None:
    """Queued cards get ``standing`` (position, reason, ETA) and its words; one standings call
    per channel."""
    queued_by_channel: dict[int, list[Generation]] = {}
    for generation in generations:
        generation.standing = None  # type: ignore[attr-defined]
        if generation.status == Status.QUEUED:
            queued_by_channel.setdefault(generation.channel_id, []).append(generation)
    for waiting in queued_by_channel.values():
        standings = standings_of(waiting[0].channel, {str(g.pk) for g in waiting})
        for generation in waiting:
            generation.standing = standings.get(str(generation.pk))  # type: ignore[attr-defined]
    for generation in generations:
        words = _standing_words(generation.standing)  # type: ignore[attr-defined]
        generation.standing_headline, generation.standing_detail = words  # type: ignore[attr-defined]


def _fresh_standings(channel: Channel, generation_ids: set[str]) -> dict[str, QueueStanding]:
    return queue_standings(channel=channel, generation_ids=generation_ids)


def generations_decorate(
    generations: list[Generation],
    *,
    standings_of: Callable[[Channel, set[str]], dict[str, QueueStanding]] = _fresh_standings,
) -> list[Generation]:
    """Give cards what they show besides the row: the progress clock and queue standings."""
    # The images each card shows it was made from: two queries for the whole page.
    prefetch_related_objects(generations, "inputs__source_generation")
    _attach_progress_clock(generations)
    stacks_attach(generations)
    _attach_standings(generations, standings_of)
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


# Open pages of a project ask at once for the same in-flight cards: their moving state (queue
# standings, progress clocks) is computed once and shared this long through Redis.
LIVE_SHARE_SECONDS = 2


@dataclass(frozen=True)
class LiveChanges:
    """What an open page must redraw (``changed``: new, changed since its cursor, or asked for
    again, sent as cards) and what only moves (``moving``: in flight and unchanged, sent as
    their moving state, ``live_state``)."""

    changed: list[Generation]
    moving: list[Generation]
    # The moment the rows were read, when earlier than the request (a shared read): the next
    # cursor, so a change made since is in the next answer.
    as_of: datetime | None = None


def generations_changed_since(
    *,
    project: Project,
    since: datetime,
    filters: GalleryFilters | None = None,
    generation_id: uuid.UUID | None = None,
    render: frozenset[uuid.UUID] = frozenset(),
    have: dict[uuid.UUID, int] | None = None,
    limit: int = LIVE_LIMIT,
) -> LiveChanges:
    """What an open project page must redraw: rows changed since ``since`` (or named in
    ``render``) as whole cards, and every other one still in flight (its progress clock and
    queue position move without the row changing) as its moving state only; newest first, at
    most ``limit``, narrowed like the page; the same few queries however many videos the
    project has. ``have`` is what the page already holds of the cards sent lately (id → the
    version it was sent at, ``live_version``): a row at that version is not sent again, so
    the overlap that repeats the recent past costs no rendering. Changed cards come with their
    review decision (``review``); the viewer's stars are the caller's to add."""
    filters = filters or GalleryFilters()
    have = have or {}
    bound = since - LIVE_OVERLAP
    shared = (
        _live_rows_shared(project=project, bound=bound, limit=limit)
        if not filters.active and generation_id is None
        else None
    )
    if shared is not None:
        rows = [g for g in shared.rows if g.updated_at >= bound or g.status in ACTIVE_STATUSES]
        rows = rows[:limit]
    else:
        queryset = gallery_queryset(project=project, filters=filters)
        if generation_id is not None:  # a video's own page follows only that video
            queryset = queryset.filter(pk=generation_id)
        else:
            queryset = one_card_per_stack(queryset, filters)
        rows = list(
            queryset.filter(Q(updated_at__gte=bound) | Q(status__in=ACTIVE_STATUSES))
            .select_related("created_by", "channel")
            .order_by("-created_at")[:limit]
        )

    def sent_whole(generation: Generation) -> bool:
        if generation.pk in render:
            return True
        fresh = generation.updated_at >= bound
        return fresh and have.get(generation.pk) != live_version(generation)

    changed = [g for g in rows if sent_whole(g)]
    moving = [g for g in rows if not sent_whole(g) and g.status in ACTIVE_STATUSES]
    if shared is not None:
        # Copies of the cards sent: the shared rows never change; each answer adds its stars.
        changed = [copy.copy(g) for g in changed]
        return LiveChanges(changed=changed, moving=moving, as_of=shared.taken)
    generations_decorate(changed, standings_of=_shared_standings)
    decisions_attach(changed)
    _attach_live_states(moving)
    return LiveChanges(changed=changed, moving=moving)


@dataclass(frozen=True)
class _LiveRows:
    """A project's rows changed since ``bound`` or in flight as read at ``taken``, decorated
    for cards (with decisions and moving states); ``complete`` when the limit cut none."""

    taken: datetime
    bound: datetime
    rows: list[Generation]
    complete: bool


# The open pages of a project poll together (50 pages: ~17 polls a second) and ask for nearly
# the same rows: each process reads them, decorated, once per REELHOUSE_LIVE_ROWS_SECONDS and
# answers every unfiltered poll whose cursor they reach from that read; a poll then costs its
# access check and its viewer's stars. Answers are at most that much older (their cursor is the
# read's time, so nothing is missed); a page back after a while (older cursor) reads its own.
LIVE_SHARE_REACH = timedelta(seconds=30)
_live_rows: dict[int, _LiveRows] = {}
_live_rows_lock = threading.Lock()


def live_rows_forget() -> None:
    """Drop every shared read (tests)."""
    with _live_rows_lock:
        _live_rows.clear()


def _live_rows_shared(*, project: Project, bound: datetime, limit: int) -> _LiveRows | None:
    seconds = settings.REELHOUSE_LIVE_ROWS_SECONDS
    if seconds <= 0:
        return None
    now = timezone.now()
    with _live_rows_lock:
        kept = _live_rows.get(project.pk)
    if kept is None or (now - kept.taken).total_seconds() >= seconds or bound < kept.bound:
        if bound < now - LIVE_OVERLAP - LIVE_SHARE_REACH:
            return None  # a cursor from long ago: its own query
        kept = _live_rows_read(project=project, limit=limit)
        with _live_rows_lock:
            newest = _live_rows.get(project.pk)
            if newest is None or newest.taken < kept.taken:
                _live_rows[project.pk] = kept
            # Projects nobody polls any more leave: the dict holds only those polled lately.
            stale = [pk for pk, read in _live_rows.items() if now - read.taken > LIVE_SHARE_REACH]
            for pk in stale:
                del _live_rows[pk]
    if not kept.complete or bound < kept.bound:
        return None
    return kept


def _live_rows_read(*, project: Project, limit: int) -> _LiveRows:
    taken = timezone.now()  # before the query: what changes after it is in the next read
    bound = taken - LIVE_OVERLAP - LIVE_SHARE_REACH
    everything = GalleryFilters()
    queryset = one_card_per_stack(gallery_queryset(project=project, filters=everything), everything)
    rows = list(
        queryset.filter(Q(updated_at__gte=bound) | Q(status__in=ACTIVE_STATUSES))
        .select_related("created_by", "channel")
        .order_by("-created_at")[: limit + 1]
    )
    complete = len(rows) <= limit
    rows = rows[:limit]
    generations_decorate(rows, standings_of=_shared_standings)
    decisions_attach(rows)
    _attach_live_states([g for g in rows if g.status in ACTIVE_STATUSES])
    return _LiveRows(taken=taken, bound=bound, rows=rows, complete=complete)


def live_version(generation: Generation) -> int:
    """Which version of a row a page holds: its ``updated_at`` in microseconds (every change a
    card shows moves it)."""
    return (generation.updated_at - _EPOCH) // timedelta(microseconds=1)


def _shared_standings(channel: Channel, generation_ids: set[str]) -> dict[str, QueueStanding]:
    """``queue_standings`` of the channel's whole queue, computed once for every page that
    asks within ``LIVE_SHARE_SECONDS`` (50 open pages, each holding different cards: one
    replay of the queue, not 50). A card queued since is not in it: computed again."""
    key = f"reelhouse:live-standings:{channel.pk}"
    try:
        cached = get_redis().get(key)
    except RedisError:
        cached = None
    rows = json.loads(cached) if cached is not None else {}
    if not generation_ids <= rows.keys():
        queued = Generation.objects.filter(channel=channel, status=Status.QUEUED)
        everyone = {str(pk) for pk in queued.values_list("pk", flat=True)} | generation_ids
        rows = {
            gid: {
                "position": s.position,
                "reason": s.reason,
                "eta": s.eta.isoformat() if s.eta else None,
                "halted": s.halted,
            }
            for gid, s in queue_standings(channel=channel, generation_ids=everyone).items()
        }
        # Cards no longer queued answer "no standing" from the cache too.
        rows.update({gid: None for gid in generation_ids - rows.keys()})
        with contextlib.suppress(RedisError):  # without Redis every page computes its own
            get_redis().set(key, json.dumps(rows), ex=LIVE_SHARE_SECONDS)
    return {
        gid: QueueStanding(
            position=row["position"],
            reason=row["reason"],
            eta=datetime.fromisoformat(row["eta"]) if row["eta"] else None,
            halted=row["halted"],
        )
        for gid in generation_ids
        if (row := rows.get(gid)) is not None
    }


def _attach_live_states(generations: list[Generation]) -> None:
    """Give each in-flight card whose row has not changed what still moves on it
    (``live_state``): its queue standing and words, and its progress clock."""
    _attach_progress_clock(generations)
    _attach_standings(generations, _shared_standings)
    for generation in generations:
        standing = generation.standing  # type: ignore[attr-defined]
        generation.live_state = {  # type: ignore[attr-defined]
            "id": str(generation.pk),
            "position": standing.position if standing else None,
            "standing": [generation.standing_headline, generation.standing_detail]  # type: ignore[attr-defined]
            if standing
            else None,
            "started": generation.progress_started,  # type: ignore[attr-defined]
            "expected": generation.progress_expected,  # type: ignore[attr-defined]
        }


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
        # The same expression as the index of migration 0014, or the index is not used.
        vector = SearchVector("prompt", config=SEARCH_CONFIG)
        query = SearchQuery(q, search_type="websearch", config=SEARCH_CONFIG)
        return queryset.alias(search=vector).filter(search=query)
    for word in q.split()[:10]:
        queryset = queryset.filter(prompt__icontains=word.strip('"'))
    return queryset


def gallery_queryset(*, project: Project, filters: GalleryFilters) -> QuerySet[Generation]:
    queryset = Generation.objects.filter(project=project)
    if filters.member:
        # By id, not through a join on the user: the member's index then gives the page order.
        member = User.objects.filter(username=filters.member).values("pk")[:1]
        queryset = queryset.filter(created_by_id=Subquery(member))
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
        # The current decision's state, kept on the row ("none" without one).
        queryset = queryset.filter(review_state=filters.review)
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
        generations = generations_decorate(rows, standings_of=_shared_standings)
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
        # Queue standings as the live updates show them (shared for LIVE_SHARE_SECONDS): a
        # reload or a team's open pages replay the channel's queue once, not once each.
        generations_decorate(rows, standings_of=_shared_standings),
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
