"""Share links created, revoked, resolved and counted; creation and revocation audited."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from workspace.core.models import AuditEvent
from workspace.generations.models import Generation, Status
from workspace.projects.models import Membership, Project, Role
from workspace.sharing.models import LIFETIME_DAYS, MAX_VIDEOS_PER_LINK, ShareLink

logger = logging.getLogger(__name__)
_TOKEN = re.compile(r"^([a-f0-9]{12})_([A-Za-z0-9_-]{43})$")
EDITORS_ONLY = "Only owners and editors can share videos; viewers can watch and download them."


@dataclass(frozen=True)
class IssuedShareLink:
    link: ShareLink
    token: str  # ``<prefix>_<secret>``: in the URL shown once, never stored


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _audit(*, actor: User, action: str, link: ShareLink, changes: dict[str, list[object]]) -> None:
    AuditEvent.record(
        actor=actor,
        action=action,
        target_type="share link",
        target_id=link.pk,
        target_repr=f"{link.prefix}… of {link.project.name}",
        changes=changes,
    )


def _require_editor(*, project: Project, actor: User) -> None:
    if not Membership.objects.filter(
        project=project, user_id=actor.pk, role__in=(Role.OWNER, Role.EDITOR)
    ).exists():
        raise PermissionDenied(EDITORS_ONLY)


def share_link_create(
    *,
    project: Project,
    generation_ids: Sequence[str],
    actor: User,
    lifetime_days: int,
    show_prompt: bool,
) -> IssuedShareLink:
    """A link to finished videos of ``project``; the token in the answer is the only copy."""
    _require_editor(project=project, actor=actor)
    if lifetime_days not in LIFETIME_DAYS:
        raise ValidationError({"lifetime_days": "Choose 1, 7 or 30 days."})
    wanted = list(dict.fromkeys(str(i) for i in generation_ids))
    if not wanted:
        raise ValidationError("Choose at least one video to share.")
    if len(wanted) > MAX_VIDEOS_PER_LINK:
        raise ValidationError(
            f"A link shares at most {MAX_VIDEOS_PER_LINK} videos; {len(wanted)} were chosen."
        )
    videos = list(
        Generation.objects.filter(project=project, pk__in=wanted, status=Status.COMPLETED).exclude(
            video=""
        )
    )
    if len(videos) != len(wanted) and Generation.objects.filter(
        project=project, pk__in=wanted, files_removed_at__isnull=False
    ).exists():
        raise ValidationError(
            "Some of the chosen videos' files were removed by the retention policy: "
            "they cannot be shared any more."
        )
    if len(videos) != len(wanted):
        raise ValidationError(
            "Only finished videos of this project can be shared; "
            f"{len(wanted) - len(videos)} of those chosen are not (any more)."
        )
    prefix = secrets.token_hex(6)
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        if Project.objects.filter(pk=project.pk, deleted_at__isnull=False).exists():
            raise ValidationError("This project was deleted.")
        link = ShareLink.objects.create(
            project=project,
            show_prompt=show_prompt,
            prefix=prefix,
            secret_sha256=_digest(token),
            created_by=actor,
            expires_at=timezone.now() + timedelta(days=lifetime_days),
        )
        link.generations.set(videos)
        _audit(
            actor=actor,
            action=AuditEvent.Action.CREATED,
            link=link,
            changes={
                "videos": [None, [str(v.pk) for v in videos]],
                "expires_at": [None, link.expires_at.isoformat()],
                "show_prompt": [None, show_prompt],
            },
        )
    return IssuedShareLink(link=link, token=token)


def share_link_revoke(*, link: ShareLink, actor: User) -> bool:
    """Close ``link`` at once; False when it was already revoked."""
    _require_editor(project=link.project, actor=actor)
    now = timezone.now()
    with transaction.atomic():
        # Conditional: two clicks revoke and audit once.
        changed = ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=actor
        )
        if not changed:
            return False
        link.revoked_at, link.revoked_by = now, actor
        _audit(
            actor=actor,
            action=AuditEvent.Action.CHANGED,
            link=link,
            changes={"revoked_at": [None, now.isoformat()]},
        )
    return True


def share_link_resolve(*, token: str) -> ShareLink | None:
    """The link ``token`` names, whatever its state; None when no link has this token."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    link = (
        ShareLink.objects.select_related("project")
        .filter(prefix=match.group(1), project__deleted_at__isnull=True)
        .first()
    )
    # Compared in constant time, so the answer's timing says nothing about the stored digest.
    if link is None or not hmac.compare_digest(link.secret_sha256, _digest(token)):
        return None
    return link


def share_link_record_open(*, link: ShareLink) -> None:
    now = timezone.now()
    ShareLink.objects.filter(pk=link.pk).update(open_count=F("open_count") + 1, last_opened_at=now)
    link.open_count += 1
    link.last_opened_at = now
    # The prefix only: the whole token is the credential and never goes to a log.
    logger.info("share link %s… of project %s opened", link.prefix, link.project_id)
