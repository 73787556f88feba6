"""Personal API tokens: issued once, stored as a digest, scoped, revoked, expired, audited."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from workspace.api.models import ApiToken
from workspace.api.services import token_authenticate, token_create, token_revoke
from workspace.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_a_member_creates_a_token_and_sees_its_secret_once(signed_in, owner, project) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(owner)
    page = client.post(
        "/api-tokens/",
        {"name": "nightly renders", "project": project.pk, "access": "read", "expires": "30"},
    )
    assert page.status_code == 200
    secret = re.search(r"rh_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", page.content.decode())
    assert secret, "the new secret is on the page"
    token = ApiToken.objects.get()
    assert (token.owner, token.project, token.can_write) == (owner, project, False)
    assert token.expires_at is not None
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    # Only a digest is stored; the page never shows the secret again.
    assert token.secret_sha256 == hashlib.sha256(secret.group(0).encode()).hexdigest()
    assert secret.group(0) not in str(ApiToken.objects.values().get())
    again = client.get("/api-tokens/").content.decode()
    assert secret.group(0) not in again and token.display_prefix in again
    event = AuditEvent.objects.get(target_type="API token", action=AuditEvent.Action.CREATED)
    assert event.actor == owner and event.changes["access"] == [None, "read-only"]
    assert secret.group(0) not in str(event.changes)


def test_a_token_cannot_be_scoped_to_someone_elses_project(owner, outsider, project) -> None:  # type: ignore[no-untyped-def]
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        token_create(owner=outsider, name="x", project=project, can_write=True, expires_at=None)
    assert "project" in refused.value.message_dict
    assert not ApiToken.objects.exists()


def test_the_form_offers_only_the_members_projects(signed_in, outsider, project) -> None:  # type: ignore[no-untyped-def]
    answer = signed_in(outsider).post(
        "/api-tokens/", {"name": "x", "project": project.pk, "access": "write", "expires": "7"}
    )
    assert answer.status_code == 400 and not ApiToken.objects.exists()


def test_revoking_from_the_page_is_audited_and_only_the_owner_can(
    signed_in, owner, teammate, project, issue
) -> None:  # type: ignore[no-untyped-def]
    secret = issue(owner, project)
    token = ApiToken.objects.get()
    assert signed_in(teammate).post(f"/api-tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    answer = signed_in(owner).post(f"/api-tokens/{token.pk}/revoke/")
    assert answer.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == owner
    assert token_authenticate(secret=secret, address=None) is None
    event = AuditEvent.objects.get(target_type="API token", action=AuditEvent.Action.CHANGED)
    assert event.actor == owner and event.changes["revoked_by"] == [None, owner.username]
    # A second revoke changes and audits nothing.
    assert token_revoke(token=token, actor=owner) is False
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CHANGED).count() == 1


def test_an_admin_sees_and_revokes_any_token(admin_client, owner, project, issue) -> None:  # type: ignore[no-untyped-def]
    issue(owner, project, name="studio mac")
    token = ApiToken.objects.get()
    listing = admin_client.get("/admin/api/apitoken/").content.decode()
    assert "studio mac" in listing and token.secret_sha256 not in listing
    detail = admin_client.get(f"/admin/api/apitoken/{token.pk}/change/").content.decode()
    assert token.secret_sha256 not in detail
    answer = admin_client.post(
        "/admin/api/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}
    )
    assert answer.status_code == 302
    token.refresh_from_db()
    root = User.objects.get(username="root")
    assert token.revoked_by == root
    event = AuditEvent.objects.get(target_type="API token", action=AuditEvent.Action.CHANGED)
    assert event.actor == root


def test_a_member_cannot_revoke_another_members_token(owner, teammate, project, issue) -> None:  # type: ignore[no-untyped-def]
    from django.core.exceptions import PermissionDenied

    issue(owner, project)
    with pytest.raises(PermissionDenied):
        token_revoke(token=ApiToken.objects.get(), actor=teammate)


def test_last_use_records_time_and_address(owner, project, issue) -> None:  # type: ignore[no-untyped-def]
    secret = issue(owner, project)
    assert token_authenticate(secret=secret, address="192.0.2.10") is not None
    token = ApiToken.objects.get()
    assert token.last_used_ip == "192.0.2.10" and token.last_used_at is not None
    # Another address is recorded at once, even within the minute.
    token_authenticate(secret=secret, address="198.51.100.4")
    token.refresh_from_db()
    assert token.last_used_ip == "198.51.100.4"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # the right prefix, a wrong secret
        lambda s: "rh_000000000000_" + s.split("_", 2)[2],  # an unknown prefix
        lambda s: s + "x",
        lambda s: "",
        lambda s: "sk-" + s,
    ],
)
def test_a_wrong_secret_is_refused(mangle, owner, project, issue) -> None:  # type: ignore[no-untyped-def]
    secret = issue(owner, project)
    assert token_authenticate(secret=mangle(secret), address=None) is None


def test_expired_and_disabled_owners_tokens_are_refused(owner, project, issue) -> None:  # type: ignore[no-untyped-def]
    secret = issue(owner, project, expires_at=timezone.now() + timedelta(minutes=5))
    assert token_authenticate(secret=secret, address=None) is not None
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert token_authenticate(secret=secret, address=None) is None
    ApiToken.objects.update(expires_at=None)
    owner.is_active = False
    owner.save()
    assert token_authenticate(secret=secret, address=None) is None
