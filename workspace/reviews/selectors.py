"""Read side of reviews: what cards, the video page and the activity feed show.

Every function here answers in a fixed number of queries, however many cards or items.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import F, Q

from workspace.core.models import AuditEvent
from workspace.generations.models import Generation
from workspace.projects.models import Project
from workspace.reviews.models import Comment, Favourite, ReviewDecision, ReviewState

HISTORY_SHOWN = 20
FEED_PAGE_SIZE = 30
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def reviews_attach(
    generations: list[Generation], *, user: User | AnonymousUser
) -> list[Generation]:
    """Give each card its current review decision (``review``, or None) and whether ``user``
    starred it (``is_favourite``): two queries for the whole page, one when no card is decided
    (a live update's in-flight card never is)."""
    decisions_attach(generations)
    return favourites_attach(generations, user=user)


def decisions_attach(generations: list[Generation]) -> list[Generation]:
    """Each card's current review decision (``review``, or None), the same for every viewer."""
    # The row keeps its current decision's state (review_decide writes both at once).
    decided = [g.pk for g in generations if g.review_state != ReviewState.NONE]
    current = (
        {
            d.generation_id: d
            for d in ReviewDecision.objects.filter(generation_id__in=decided, is_current=True)
            .select_related("decided_by")
            .exclude(state="none")
        }
        if decided
        else {}
    )
    for generation in generations:
        generation.review = current.get(generation.pk)  # type: ignore[attr-defined]
    return generations


def favourites_attach(
    generations: list[Generation], *, user: User | AnonymousUser
) -> list[Generation]:
    """Whether ``user`` starred each card (``is_favourite``): one query, none for no cards."""
    ids = [g.pk for g in generations]
    starred = (
        set(
            Favourite.objects.filter(user_id=user.pk or 0, generation_id__in=ids).values_list(
                "generation_id", flat=True
            )
        )
        if ids
        else set()
    )
    for generation in generations:
        generation.is_favourite = generation.pk in starred  # type: ignore[attr-defined]
    return generations


def comments_for(generation: Generation) -> list[Comment]:
    # Timed ones in the order of the video, then the rest.
    return list(
        Comment.objects.filter(generation=generation)
        .select_related("author")
        .order_by(F("at_ms").asc(nulls_last=True), "created_at", "id")
    )


def decisions_for(generation: Generation) -> list[ReviewDecision]:
    """The latest decisions on a video, newest (the current one) first."""
    return list(
        ReviewDecision.objects.filter(generation=generation)
        .select_related("decided_by")
        .order_by("-decided_at", "-id")[:HISTORY_SHOWN]
    )


# ---- The activity feed ------------------------------------------------------------------------
#
# Four sources merged newest first: comments, review decisions, new videos, and the audit log's
# project events (renames, archiving, review settings, videos moved in or out, members added or
# removed). Each source is read with the same keyset bound and limit, so a page is five queries
# (the fifth names the projects of moves) whatever the size of the project or the log.

KINDS = ("audit", "comment", "decision", "video")  # the tie-break order within one instant


@dataclass(frozen=True)
class FeedCursor:
    at: datetime
    kind: str
    key: str

    def encode(self) -> str:
        micros = (self.at - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}_{self.kind}_{self.key}"

    @classmethod
    def decode(cls, value: str) -> FeedCursor | None:
        micros, _, rest = value.partition("_")
        kind, _, key = rest.partition("_")
        if kind not in KINDS or not key or len(key) > 40:
            return None
        try:
            at = _EPOCH + timedelta(microseconds=int(micros))
            key = str(uuid.UUID(key)) if kind == "video" else str(int(key))
        except (ValueError, OverflowError):
            return None
        return cls(at, kind, key)


@dataclass
class FeedItem:
    at: datetime
    kind: str
    key: str
    actor: str
    generation: Generation | None = None
    comment: Comment | None = None
    decision: ReviewDecision | None = None
    event: AuditEvent | None = None
    detail: dict[str, Any] | None = None

    @property
    def cursor(self) -> FeedCursor:
        return FeedCursor(self.at, self.kind, self.key)

    def sort_key(self) -> tuple[datetime, int, Any]:
        key: Any = uuid.UUID(self.key) if self.kind == "video" else int(self.key)
        return (self.at, KINDS.index(self.kind), key)


@dataclass(frozen=True)
class FeedPage:
    items: list[FeedItem]
    older: FeedCursor | None


def _before(field: str, kind: str, cursor: FeedCursor | None, *, id_value: Any) -> Q:
    """Rows strictly older than ``cursor`` in the order (time, kind, id), for one kind."""
    if cursor is None:
        return Q()
    rank, cursor_rank = KINDS.index(kind), KINDS.index(cursor.kind)
    if rank < cursor_rank:
        return Q(**{f"{field}__lte": cursor.at})
    if rank > cursor_rank:
        return Q(**{f"{field}__lt": cursor.at})
    return Q(**{f"{field}__lt": cursor.at}) | Q(**{field: cursor.at, "pk__lt": id_value})


def _project_events(project: Project) -> Q:
    pk = project.pk
    moved_or_joined = Q(changes__project_id__0=pk) | Q(changes__project_id__1=pk)
    return Q(target_type="project", target_id=str(pk)) | (
        Q(target_type__in=("generation", "membership")) & moved_or_joined
    )


def activity_page(
    *, project: Project, before: FeedCursor | None = None, size: int = FEED_PAGE_SIZE
) -> FeedPage:
    def key_of(kind: str) -> Any:
        if before is None or before.kind != kind:
            return None
        return uuid.UUID(before.key) if kind == "video" else int(before.key)

    n = size + 1
    comments = (
        Comment.objects.filter(generation__project=project)
        .filter(_before("created_at", "comment", before, id_value=key_of("comment")))
        .select_related("author", "generation")
        .order_by("-created_at", "-id")[:n]
    )
    decisions = (
        ReviewDecision.objects.filter(generation__project=project)
        .filter(_before("decided_at", "decision", before, id_value=key_of("decision")))
        .select_related("decided_by", "generation")
        .order_by("-decided_at", "-id")[:n]
    )
    videos = (
        Generation.objects.filter(project=project)
        .filter(_before("created_at", "video", before, id_value=key_of("video")))
        .select_related("created_by")
        .order_by("-created_at", "-id")[:n]
    )
    events = (
        AuditEvent.objects.filter(_project_events(project))
        .filter(_before("created_at", "audit", before, id_value=key_of("audit")))
        .order_by("-created_at", "-id")[:n]
    )
    items = [
        *(
            FeedItem(
                c.created_at, "comment", str(c.pk), c.author.get_username(), c.generation, comment=c
            )
            for c in comments
        ),
        *(
            FeedItem(
                d.decided_at,
                "decision",
                str(d.pk),
                d.decided_by.get_username(),
                d.generation,
                decision=d,
            )
            for d in decisions
        ),
        *(
            FeedItem(g.created_at, "video", str(g.pk), g.created_by.get_username(), g)
            for g in videos
        ),
        *(
            FeedItem(e.created_at, "audit", str(e.pk), e.actor_name or "system", event=e)
            for e in events
        ),
    ]
    items.sort(key=FeedItem.sort_key, reverse=True)
    has_older = len(items) > size
    items = items[:size]
    _describe_events(items)
    return FeedPage(items, older=items[-1].cursor if has_older else None)


def _describe_events(items: list[FeedItem]) -> None:
    """Turn audit entries into what the feed says, naming moved videos' projects (one query)."""
    project_ids: set[int] = set()
    for item in items:
        if item.event is not None:
            pair = item.event.changes.get("project_id")
            if isinstance(pair, list):
                project_ids.update(p for p in pair if isinstance(p, int))
    names = dict(Project.objects.filter(pk__in=project_ids).values_list("pk", "name"))
    for item in items:
        event = item.event
        if event is None:
            continue
        changes = event.changes
        detail: dict[str, Any] = {"what": "changed", "target": event.target_repr}
        if event.target_type == "generation" and "project_id" in changes:
            source, target = (changes["project_id"] + [None, None])[:2]
            detail = {
                "what": "moved",
                "target": event.target_repr,
                "from": names.get(source, "a deleted project"),
                "to": names.get(target, "a deleted project"),
            }
        elif event.target_type == "membership":
            detail = {
                "what": "member added" if event.action == "created" else "member removed",
                "target": event.target_repr,
            }
        elif event.target_type == "project":
            if event.action == "created":
                detail = {"what": "created", "target": event.target_repr}
            elif "name" in changes:
                detail = {"what": "renamed", "from": changes["name"][0], "to": changes["name"][1]}
            elif "archived_at" in changes:
                detail = {"what": "archived" if changes["archived_at"][1] else "unarchived"}
            elif "review_deciders" in changes:
                detail = {"what": "deciders", "to": changes["review_deciders"][1]}
            elif "files_removed" in changes:
                detail = {
                    "what": "files removed",
                    "count": changes["files_removed"][1],
                    "bytes": changes["bytes_freed"][1],
                }
            elif "retention" in changes:
                detail = {"what": "retention", "to": changes["retention"][1]}
        item.detail = detail
