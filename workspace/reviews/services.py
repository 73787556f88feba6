"""Review workflows: commenting (with @mentions), deciding, starring, and who may decide.

Each checks the actor's membership itself, so a caller other than the views (a command, a
future API) cannot skip the rules; a non-member is refused like a member without the right.
"""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from workspace.core.models import AuditEvent
from workspace.core.notify import users_notify
from workspace.generations.models import Generation, Status
from workspace.projects.models import Membership, Project, Role
from workspace.projects.services import ARCHIVED_REFUSAL
from workspace.reviews.models import (
    COMMENT_MAX_LENGTH,
    Comment,
    Deciders,
    Favourite,
    ReviewDecision,
    ReviewPolicy,
    ReviewState,
)

# Django usernames are letters, digits and @ . + - _; a mention is "@" not inside a word (so an
# e-mail address mentions nobody), and a full stop ending the sentence is not part of the name.
MENTION = re.compile(r"(?<![\w@.+-])@([\w.@+-]+)")
MENTIONS_MAX = 20  # more than a team: the rest are ignored rather than notified


def _membership(*, project: Project, user: User) -> Membership:
    membership = Membership.objects.filter(project=project, user_id=user.pk).first()
    if membership is None:
        raise PermissionDenied("Only members of this project can do that.")
    return membership


def _audit(
    *,
    actor: User,
    target_type: str,
    target_id: object,
    target_repr: str,
    changes: dict[str, list[object]],
) -> None:
    AuditEvent.record(
        actor=actor,
        action=AuditEvent.Action.CHANGED,
        target_type=target_type,
        target_id=target_id,
        target_repr=target_repr,
        changes=changes,
    )


def _require_in_use(project: Project) -> None:
    if Project.objects.filter(pk=project.pk, archived_at__isnull=False).exists():
        raise ValidationError(ARCHIVED_REFUSAL)


def mentioned_usernames(text: str) -> list[str]:
    names = [match.rstrip(".") for match in MENTION.findall(text)]
    return list(dict.fromkeys(name for name in names if name))[:MENTIONS_MAX]


def review_comment_add(
    *, generation: Generation, author: User, text: str, at_ms: int | None = None
) -> Comment:
    """Comment on a video, optionally at a point in it, and notify the members it mentions."""
    project = generation.project
    _membership(project=project, user=author)  # every member may comment, viewers included
    _require_in_use(project)
    text = text.strip()
    if not text:
        raise ValidationError({"text": "Write something: the comment is empty."})
    if len(text) > COMMENT_MAX_LENGTH:
        raise ValidationError(
            {
                "text": f"A comment can be at most {COMMENT_MAX_LENGTH:,} characters "
                f"({len(text):,} now)."
            }
        )
    # The player can report a few frames past the nominal end; half a second of slack.
    if at_ms is not None and (at_ms < 0 or at_ms > generation.seconds * 1000 + 500):
        raise ValidationError(
            {"at": f"The video is {generation.seconds} seconds long: pick a time within it."}
        )
    comment = Comment(generation=generation, author=author, text=text, at_ms=at_ms)
    comment.full_clean(exclude=["generation", "author"])
    comment.save()
    wanted = {name.casefold() for name in mentioned_usernames(text)}
    if wanted:
        members = Membership.objects.filter(project=project).exclude(user_id=author.pk)
        mentioned = [
            user_id
            for user_id, username in members.values_list("user_id", "user__username")
            if username.casefold() in wanted
        ]
        if mentioned:
            url = reverse("generations:detail", args=[project.pk, generation.pk])
            users_notify(
                user_ids=mentioned,
                title=f"{author.get_username()} mentioned you on a video in {project.name}",
                message=text,
                url=f"{url}#comment-{comment.pk}",
            )
    return comment


def review_comment_delete(*, comment: Comment, actor: User) -> None:
    """Authors delete their own comments; project owners delete anyone's."""
    project = comment.generation.project
    membership = _membership(project=project, user=actor)
    if comment.author_id != actor.pk and not membership.can_manage:
        raise PermissionDenied("Only its author or a project owner can delete a comment.")
    with transaction.atomic():
        deleted, _ = Comment.objects.filter(pk=comment.pk).delete()
        if deleted:
            AuditEvent.record(
                actor=actor,
                action=AuditEvent.Action.DELETED,
                target_type="comment",
                target_id=comment.pk,
                target_repr=comment.text,
                changes={
                    "author_id": [comment.author_id, None],
                    "generation_id": [str(comment.generation_id), None],
                },
            )


def review_deciders(*, project: Project) -> str:
    policy = ReviewPolicy.objects.filter(project=project).first()
    return policy.deciders if policy else Deciders.OWNERS_AND_EDITORS


def review_may_decide(*, membership: Membership, deciders: str | None = None) -> bool:
    deciders = deciders or review_deciders(project=membership.project)
    if deciders == Deciders.OWNERS:
        return membership.role == Role.OWNER
    return membership.role in (Role.OWNER, Role.EDITOR)


def review_policy_set(*, project: Project, deciders: str, actor: User) -> str:
    """Choose who may approve or request changes; owners only, audited."""
    if deciders not in Deciders.values:
        raise ValidationError({"deciders": "Choose owners only, or owners and editors."})
    if not _membership(project=project, user=actor).can_manage:
        raise PermissionDenied("Only a project owner can choose who decides on reviews.")
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()  # one change at a time
        _require_in_use(project)
        before = review_deciders(project=project)
        if before == deciders:
            return deciders
        ReviewPolicy.objects.update_or_create(project=project, defaults={"deciders": deciders})
        _audit(
            actor=actor,
            target_type=str(Project._meta.verbose_name),
            target_id=project.pk,
            target_repr=project.name,
            changes={"review_deciders": [before, deciders]},
        )
    return deciders


def review_decide(*, generation: Generation, actor: User, state: str) -> ReviewDecision | None:
    """Record a decision on a finished video (``none`` withdraws one); the previous decisions
    stay as history. Deciding what is already decided records nothing. Returns the current one."""
    if state not in ReviewState.values:
        raise ValidationError({"state": "Choose approve, request changes or no decision."})
    project = generation.project
    membership = _membership(project=project, user=actor)
    deciders = review_deciders(project=project)
    if not review_may_decide(membership=membership, deciders=deciders):
        who = "project owners" if deciders == Deciders.OWNERS else "project owners and editors"
        raise PermissionDenied(f"In this project only {who} can approve or request changes.")
    _require_in_use(project)
    with transaction.atomic():
        # The video's row lock orders two deciders: each sees the other's decision as current.
        locked = Generation.objects.select_for_update().filter(pk=generation.pk).first()
        if locked is None or locked.project_id != project.pk:
            raise ValidationError("This video is no longer in this project.")
        if locked.status != Status.COMPLETED:
            raise ValidationError("Only a finished video can be approved or sent back.")
        current = ReviewDecision.objects.filter(generation=locked, is_current=True).first()
        before = current.state if current else ReviewState.NONE
        if before == state:
            return current
        ReviewDecision.objects.filter(generation=locked, is_current=True).update(is_current=False)
        decision = ReviewDecision.objects.create(
            generation=locked, state=state, decided_by=actor, is_current=True
        )
        # Open project pages redraw the cards whose row changed: this one shows the decision.
        Generation.objects.filter(pk=locked.pk).update(
            updated_at=decision.decided_at, review_state=state
        )
        _audit(
            actor=actor,
            target_type=str(Generation._meta.verbose_name),
            target_id=locked.pk,
            target_repr=locked.prompt,
            changes={"review_state": [before, state]},
        )
    return decision


def favourite_toggle(*, generation: Generation, user: User) -> bool:
    """Star or unstar a video for ``user``; returns whether it is starred now."""
    _membership(project=generation.project, user=user)
    deleted, _ = Favourite.objects.filter(user_id=user.pk, generation=generation).delete()
    if deleted:
        return False
    try:
        with transaction.atomic():
            Favourite.objects.create(user=user, generation=generation)
    except IntegrityError:  # starred by the same member in another tab a moment ago
        pass
    return True
