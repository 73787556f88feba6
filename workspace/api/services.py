"""Personal API tokens: created, revoked and checked; every creation and revocation audited."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils import timezone

from workspace.api.models import TOKEN_NAME_MAX_LENGTH, ApiToken
from workspace.billing.audit import audit_actor, audit_record
from workspace.core.models import AuditEvent
from workspace.projects.models import Membership, Project

TOKEN_PREFIX = "rh_"  # noqa: S105 (marks a Reelhouse token, like "sk-"; not a secret)
_TOKEN = re.compile(r"^rh_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$")
# Writing the last use on every call would turn each API request into a row update; once a
# minute (or when the address changes) is what the tokens page needs.
_TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # the whole ``rh_…`` string: shown once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(
    *,
    owner: User,
    name: str,
    project: Project | None,
    can_write: bool,
    expires_at: datetime | None,
) -> IssuedToken:
    """Issue a token for ``owner``; the secret in the answer is the only copy there will be."""
    name = name.strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Name the token (what script or machine uses it)."
    elif len(name) > TOKEN_NAME_MAX_LENGTH or "\x00" in name:
        errors["name"] = f"A name has at most {TOKEN_NAME_MAX_LENGTH} printable characters."
    if project is not None and not Membership.objects.filter(project=project, user=owner).exists():
        errors["project"] = "You can only scope a token to a project you belong to."
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = "The expiry must be in the future."
    if errors:
        raise ValidationError(errors)
    prefix = secrets.token_hex(6)
    body = secrets.token_urlsafe(32)  # 256 bits: 43 URL-safe characters
    secret = f"{TOKEN_PREFIX}{prefix}_{body}"
    token = ApiToken.objects.create(
        owner=owner,
        name=name,
        project=project,
        can_write=can_write,
        prefix=prefix,
        secret_sha256=_digest(secret),
        expires_at=expires_at,
    )
    audit_record(
        action=AuditEvent.Action.CREATED,
        target=token,
        changes={
            "owner": [None, owner.get_username()],
            "name": [None, token.name],
            "project": [None, project.name if project else "all of the owner's projects"],
            "access": [None, "read-write" if can_write else "read-only"],
            "expires_at": [None, expires_at.isoformat() if expires_at else None],
        },
    )
    return IssuedToken(token=token, secret=secret)


def token_revoke(*, token: ApiToken, actor: User) -> bool:
    """Revoke ``token`` (its owner or an admin); False when it was already revoked."""
    if token.owner_id != actor.pk and not actor.is_superuser:
        raise PermissionDenied("Only its owner or an admin can revoke a token.")
    now = timezone.now()
    # Conditional: two clicks (or an admin and the owner at once) revoke and audit once.
    changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=actor
    )
    if not changed:
        return False
    token.revoked_at, token.revoked_by = now, actor
    with audit_actor(actor):
        audit_record(
            action=AuditEvent.Action.CHANGED,
            target=token,
            changes={"revoked_at": [None, now.isoformat()], "revoked_by": [None, actor.username]},
        )
    return True


def token_authenticate(*, secret: str, address: str | None) -> ApiToken | None:
    """The usable token ``secret`` names, or None (unknown, wrong, revoked or expired)."""
    match = _TOKEN.match(secret)
    if match is None:
        return None
    token = (
        ApiToken.objects.select_related("owner", "project").filter(prefix=match.group(1)).first()
    )
    # Compared in constant time, so the answer's timing says nothing about the stored digest.
    if token is None or not hmac.compare_digest(token.secret_sha256, _digest(secret)):
        return None
    if not token.is_usable or not token.owner.is_active:
        return None
    _touch(token, address)
    return token


def token_failure_reason(*, secret: str) -> str:
    """Why ``secret`` did not authenticate, in words safe to tell whoever sent it."""
    match = _TOKEN.match(secret)
    token = ApiToken.objects.filter(prefix=match.group(1)).first() if match else None
    if token is None or not hmac.compare_digest(token.secret_sha256, _digest(secret)):
        return "Incorrect API key provided. Create one on your API tokens page in Reelhouse."
    if token.revoked_at is not None:
        return "This API key has been revoked."
    if token.is_expired():
        return "This API key has expired."
    return "This API key's account is disabled."


def _touch(token: ApiToken, address: str | None) -> None:
    now = timezone.now()
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - _TOUCH_INTERVAL)
    moved = ~Q(last_used_ip=address) if address else Q(pk__in=[])
    ApiToken.objects.filter(stale | moved, pk=token.pk).update(
        last_used_at=now, last_used_ip=address
    )


def tokens_for_owner(*, owner: User) -> list[ApiToken]:
    return list(ApiToken.objects.filter(owner=owner).select_related("project", "revoked_by"))
