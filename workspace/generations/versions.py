"""Versions: the stack every video belongs to, its head in the gallery, and picking a take.

A stack is every video sharing ``stack_id``: a new video, the edits, remixes and extensions made
from it (and from those), and the takes of each of those requests. The gallery shows one card
per stack, its *head*: the newest request of the stack, or the pick among that request's takes
(the first take until one is picked). ``is_stack_head`` holds that answer on the row, changed
only here and only inside the transaction that changes the stack, under the stack's lock.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from workspace.billing.services import price_current
from workspace.core.models import AuditEvent
from workspace.generations.models import Generation, Operation, Status
from workspace.projects.models import Membership
from workspace.providers.catalog import ModelSpec


def _stack_lock(stack_id: uuid.UUID) -> None:
    """Serialise the writers of one stack until the transaction ends.

    An advisory lock, not a row lock: a row lock on a member would also wait for (and could
    deadlock with) the workers that move that member through its states. SQLite has one writer
    at a time anyway.
    """
    if connection.vendor != "postgresql":
        return
    key = zlib.crc32(stack_id.bytes) - 2**31  # PostgreSQL's advisory keys are signed bigints
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x5EE1, key])


def stack_head_claim(*, made: Sequence[Generation]) -> None:
    """Make a request just created (its takes, first take first) the head of its stack.

    Runs inside the submitting transaction: the first take becomes the head (every row starts
    as one), the other takes and the stack's previous head stop being one.
    """
    if not made:
        return
    first = made[0]
    others = [g.pk for g in made[1:]]
    if others:
        Generation.objects.filter(pk__in=others).update(is_stack_head=False)
        for generation in made[1:]:
            generation.is_stack_head = False
    if first.parent_id is None:
        return  # a new stack: nothing else is in it
    _stack_lock(first.stack_id)
    # The old head's card leaves the gallery: its row changed for the live endpoint. Heads are
    # per project (a video moved to another project leads its stack there).
    Generation.objects.filter(
        stack_id=first.stack_id, project_id=first.project_id, is_stack_head=True
    ).exclude(pk__in=[g.pk for g in made]).update(is_stack_head=False, updated_at=timezone.now())


def stack_heads_repair(*, stack_id: uuid.UUID) -> None:
    """Elect the stack's head in every project it has versions in, from scratch.

    For a video moved to another project: the stack it left needs a new head there if it was
    the head, and it leads its stack in the new project. The same rule as everywhere: the newest
    request, or the pick (else the first) of that request's takes.
    """
    with transaction.atomic():
        _stack_lock(stack_id)
        members = list(
            Generation.objects.filter(stack_id=stack_id)
            .order_by("created_at", "id")
            .only("pk", "project_id", "take_set", "is_pick", "created_at")
        )
        by_project: dict[int, list[Generation]] = {}
        for member in members:
            by_project.setdefault(member.project_id, []).append(member)
        heads = set()
        for rows in by_project.values():
            head = rows[-1]
            if head.take_set is not None:
                takes = [g for g in rows if g.take_set == head.take_set]
                head = next((g for g in takes if g.is_pick), takes[0])
            heads.add(head.pk)
        now = timezone.now()
        Generation.objects.filter(stack_id=stack_id, is_stack_head=True).exclude(
            pk__in=heads
        ).update(is_stack_head=False, updated_at=now)
        Generation.objects.filter(pk__in=heads, is_stack_head=False).update(
            is_stack_head=True, updated_at=now
        )


def generation_pick(*, generation: Generation, user: User) -> Generation:
    """Mark one finished take of a take set as the pick, and only that one.

    Editors and owners only. Picking the pick again changes nothing. When the set is the newest
    request of its stack, the pick becomes the stack's head (the gallery's card).
    """
    membership = Membership.objects.filter(
        project_id=generation.project_id, user_id=user.pk
    ).first()
    if membership is None:
        raise Generation.DoesNotExist("No such video.")
    if not membership.can_generate:
        raise PermissionDenied("Viewers can watch and download, but not pick a take.")
    if generation.take_set is None:
        raise ValidationError(
            "This video is not one of several takes, so there is nothing to pick."
        )
    now = timezone.now()
    with transaction.atomic():
        _stack_lock(generation.stack_id)
        takes = Generation.objects.filter(
            take_set=generation.take_set, project_id=generation.project_id
        )
        # Not a take whose files the retention policy removed: picking it would leave the set
        # with no playable pick, and the next run would remove the take picked before.
        picked = takes.filter(
            pk=generation.pk, status=Status.COMPLETED, is_pick=False, files_removed_at__isnull=True
        ).update(is_pick=True, updated_at=now)
        if not picked:
            current = (
                takes.filter(pk=generation.pk)
                .values_list("status", "is_pick", "files_removed_at")
                .first()
            )
            if current is None:
                raise Generation.DoesNotExist("No such video.")
            if current[1]:
                generation.is_pick = True
                return generation  # already the pick
            if current[2] is not None:
                raise ValidationError(
                    "This take's files were removed by the retention policy, so it can no "
                    "longer be the pick."
                )
            raise ValidationError("Only a finished take can be the pick; this one is not ready.")
        unpicked = list(
            takes.filter(is_pick=True).exclude(pk=generation.pk).values_list("pk", flat=True)
        )
        if unpicked:
            Generation.objects.filter(pk__in=unpicked).update(is_pick=False, updated_at=now)
        # The set holds the stack's head (it is the newest request): the head becomes the pick.
        moved = (
            takes.filter(is_stack_head=True)
            .exclude(pk=generation.pk)
            .update(is_stack_head=False, updated_at=now)
        )
        if moved:
            Generation.objects.filter(pk=generation.pk).update(is_stack_head=True)
            generation.is_stack_head = True
        AuditEvent.record(
            actor=user,
            action=AuditEvent.Action.CHANGED,
            target_type=str(Generation._meta.verbose_name),
            target_id=generation.pk,
            target_repr=generation.prompt,
            changes={
                "is_pick": [False, True],
                "take_set": str(generation.take_set),
                "unpicked": [str(pk) for pk in unpicked],
            },
        )
    generation.is_pick = True
    return generation


# ---- Reading a stack -------------------------------------------------------------------------


@dataclass
class Stack:
    """A video's place among its versions, from one query.

    ``members`` oldest first (the order of the up/down navigation); ``parent`` is what this
    video was made from when it is in the same project (``parent_elsewhere`` when the video it
    was made from has moved to a project this page does not show); ``ancestors`` the whole chain
    up, nearest first; ``derivatives`` what was made from it; ``takes`` the takes of its
    request (itself included), empty for a single video.
    """

    generation: Generation
    members: list[Generation]
    parent: Generation | None = None
    parent_elsewhere: bool = False
    ancestors: list[Generation] = field(default_factory=list)
    derivatives: list[Generation] = field(default_factory=list)
    takes: list[Generation] = field(default_factory=list)

    @property
    def position(self) -> int:
        """1-based place of the video in ``members``."""
        return next(i for i, g in enumerate(self.members, 1) if g.pk == self.generation.pk)

    @property
    def previous(self) -> Generation | None:
        index = self.position - 1
        return self.members[index - 1] if index > 0 else None

    @property
    def next(self) -> Generation | None:
        index = self.position - 1
        return self.members[index + 1] if index + 1 < len(self.members) else None

    @property
    def only_takes(self) -> bool:
        """The stack is this one request's takes (the takes strip then says it all)."""
        return bool(self.takes) and len(self.takes) == len(self.members)

    @property
    def pick(self) -> Generation | None:
        return next((g for g in self.takes if g.is_pick), None)


def stack_for(generation: Generation) -> Stack:
    """The stack of ``generation`` within its project: one query however deep it is."""
    members = list(
        Generation.objects.filter(stack_id=generation.stack_id, project_id=generation.project_id)
        .select_related("created_by")
        .order_by("created_at", "id")
    )
    if not any(g.pk == generation.pk for g in members):  # moved meanwhile: itself alone
        members = [generation]
    by_id = {g.pk: g for g in members}
    stack = Stack(generation=generation, members=members)
    if generation.parent_id is not None:
        stack.parent = by_id.get(generation.parent_id)
        stack.parent_elsewhere = stack.parent is None
    seen = {generation.pk}
    up = stack.parent
    while up is not None and up.pk not in seen:  # ``seen``: never loop on a damaged chain
        stack.ancestors.append(up)
        seen.add(up.pk)
        up = by_id.get(up.parent_id) if up.parent_id else None
    stack.derivatives = [g for g in members if g.parent_id == generation.pk]
    if generation.take_set is not None:
        stack.takes = [g for g in members if g.take_set == generation.take_set]
    return stack


def stacks_attach(generations: Sequence[Generation]) -> None:
    """Give each card its stack's size (``stack_size``) and whether the stack is only one
    request's takes (``stack_is_takes``): one query for the whole page."""
    if not generations:
        return
    project_ids = {g.project_id for g in generations}
    counts = {
        row["stack_id"]: row
        for row in Generation.objects.filter(
            stack_id__in={g.stack_id for g in generations}, project_id__in=project_ids
        )
        .values("stack_id")
        .annotate(
            members=Count("id"),
            take_sets=Count("take_set", distinct=True),
            singles=Count("id", filter=Q(take_set__isnull=True)),
        )
    }
    for generation in generations:
        row = counts.get(generation.stack_id)
        size = row["members"] if row else 1
        generation.stack_size = size  # type: ignore[attr-defined]
        generation.stack_is_takes = bool(  # type: ignore[attr-defined]
            row and row["singles"] == 0 and row["take_sets"] == 1
        )


# ---- What can be done to a finished video ----------------------------------------------------


@dataclass(frozen=True)
class ExtendChoice:
    added: int  # seconds the extension makes (and is billed for)
    total: int  # the finished clip's length
    cents: int | None  # at the price in effect now; None when the price table has no row


@dataclass
class ChangeOffers:
    """What the video page offers to change a finished video, with lengths and prices.

    ``expired``: the provider's copy is gone, so nothing can be changed at the provider (the
    page says what can still be done instead of showing forms).
    """

    spec: ModelSpec | None
    finished: bool
    expired: bool
    expired_at: object = None
    edit: bool = False
    remix: bool = False
    change_seconds: int = 0  # an edit's or remix's length: the source's
    change_cents: int | None = None
    extend: list[ExtendChoice] = field(default_factory=list)
    extend_refusal: str = ""  # why a model that extends cannot extend this video

    @property
    def any(self) -> bool:
        return self.edit or self.remix or bool(self.extend)

    @property
    def offered(self) -> bool:
        """The model can change videos at all (the page then explains when it cannot now)."""
        spec = self.spec
        return bool(spec and (spec.can_edit or spec.can_remix or spec.can_extend))


def change_offers(generation: Generation) -> ChangeOffers:
    """Edit, remix and extension as the source model's catalog allows, priced from the price
    table exactly as the reservation will be (the source's size; standard audio)."""
    spec = generation.channel.catalog.get(generation.model)
    finished = generation.status == Status.COMPLETED
    expired = finished and (
        not generation.provider_job_id
        or (
            generation.provider_expires_at is not None
            and generation.provider_expires_at <= timezone.now()
        )
    )
    offers = ChangeOffers(
        spec=spec,
        finished=finished,
        expired=expired,
        expired_at=generation.provider_expires_at,
    )
    if spec is None or not finished or expired:
        return offers
    try:
        price = price_current(channel=generation.channel, model=spec.id, size=generation.size)
    except ValidationError:
        price = None  # unpriced: the form says so; the submission refuses it with the reason

    def cents(seconds: int) -> int | None:
        return price.cents_for(seconds) if price is not None else None

    offers.edit, offers.remix = spec.can_edit, spec.can_remix
    offers.change_seconds = generation.total_seconds
    offers.change_cents = cents(generation.total_seconds)
    if spec.can_extend:
        total = generation.total_seconds
        offers.extend = [
            ExtendChoice(added=s, total=total + s, cents=cents(s))
            for s in spec.extendable(size=generation.size, total_seconds=total)
        ]
        if not offers.extend:
            offers.extend_refusal = (
                f"{spec.label} extends {', '.join(spec.extend_sizes)} videos only; this one is "
                f"{generation.size}."
                if spec.extend_sizes and generation.size not in spec.extend_sizes
                else f"This video is {total} seconds long, the most {spec.label} makes by "
                f"extending ({spec.max_total_seconds} seconds)."
            )
    return offers


CHANGE_VERBS = {
    Operation.EDIT: "Edit",
    Operation.REMIX: "Remix",
    Operation.EXTEND: "Extend",
}
