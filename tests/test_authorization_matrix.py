"""The authorization matrix: every URL pattern, persona and method, against one table.

The cases are generated from the URL configuration itself (``django.urls.get_resolver()``,
recursing into every ``include``: our apps, the Django admin and every ``ModelAdmin.get_urls()``,
django_rq under ``admin/rq/`` and as an admin dashboard, sign-in, webhooks). Each pattern is
requested by each persona with each method, with real objects in the URL, and the answer is
compared with ``EXPECTED`` below — the single source of truth for who may do what.

Personas (columns of the table, always in this order)::

    anonymous  not signed in
    outsider   signed in, owner of *another* project (so cross-project access is exercised)
    viewer     viewer of the project in the URL
    editor     editor of the project in the URL (and author of its generations)
    owner      owner of the project in the URL
    staff      ``is_staff`` without a single permission, member of no project
    superuser  ``is_superuser``, member of no project

Cells: an HTTP status (200, 400, 401, 403, 404, 405, …) or a redirect: ``LOGIN`` (302 to the
sign-in page with ``next`` naming the requested path), ``ADMIN_LOGIN`` (302 to the admin's login
with ``next``), ``Redirect("/path/")`` (302 to that exact path) or ``REDIRECT`` (302 anywhere but a
sign-in page: a form that succeeded). No persona may ever get a 500: that is checked before the
table, with the traceback in the failure message.

Adding a URL (the test fails until you do, naming the pattern):

1. Find its key: the URL name with its namespace (``"projects:detail"``, ``"admin:foo_bar_change"``),
   or for an unnamed pattern or a name shared by several patterns its full route as listed in the
   failure (``"admin/foo/bar/<path:object_id>/"``).
2. Add a row to ``EXPECTED`` — ``"key": {"GET": cells(...7 outcomes...), "POST": ...}`` — with the
   outcome each persona *should* get, not what the code happens to answer. Use ``same(405)`` when
   every persona gets the same. Keys may use ``*`` (fnmatch) to cover a family; an exact key wins
   over a wildcard one, and among wildcard rows the first that matches wins, so put narrow ones
   first. Every row must match at least one pattern (stale rows fail too).
3. If the URL takes a parameter not seen before, teach ``_param`` how to build a real value (and
   ``_build_world`` the object it points at); a POST that needs a body to do its work goes in
   ``POST_DATA``, a GET that needs a query string in ``QUERY``.

Each case runs in its own savepoint on data built once per module (see ``world``), with Redis
flushed and a fresh media directory, so a POST that succeeds (a member added, a queue emptied)
never changes what another case sees.
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import django_rq
import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone
from PIL import Image

from workspace.api.models import ApiToken, WebhookEvent
from workspace.api.services import token_create
from workspace.billing.models import Budget, LedgerEntry, Scope
from workspace.billing.services import prices_seed
from workspace.core.models import AuditEvent
from workspace.generations.models import (
    Generation,
    GenerationInput,
    InputRole,
    RetentionPolicy,
    Status,
)
from workspace.generations.submission import generation_submit
from workspace.projects.models import Membership, Project, Role
from workspace.projects.services import membership_add, project_create
from workspace.providers.models import Channel, FailoverRoute
from workspace.reviews.models import Comment, ReviewState
from workspace.reviews.services import review_comment_add, review_decide
from workspace.sharing.models import ShareLink
from workspace.sharing.services import share_link_create

# --- Outcomes ---------------------------------------------------------------------------------

PERSONAS = ("anonymous", "outsider", "viewer", "editor", "owner", "staff", "superuser")
METHODS = ("GET", "POST")


@dataclass(frozen=True)
class Redirect:
    """A 302 to ``to`` (``None``: anywhere but a sign-in page); ``next`` must name the request."""

    to: str | None
    with_next: bool = False

    def __str__(self) -> str:
        if self.to is None:
            return "302 (not to a sign-in page)"
        return f"302 to {self.to}" + ("?next=<this path>" if self.with_next else "")


Outcome = int | Redirect
LOGIN = Redirect("/accounts/sign-in/", with_next=True)
ADMIN_LOGIN = Redirect("/admin/login/", with_next=True)
REDIRECT = Redirect(None)
_SIGN_IN_PATHS = {"/accounts/sign-in/", "/admin/login/"}


def cells(*outcomes: Outcome) -> dict[str, Outcome]:
    """One outcome per persona, in the order of ``PERSONAS``."""
    assert len(outcomes) == len(PERSONAS), f"{len(outcomes)} cells for {len(PERSONAS)} personas"
    return dict(zip(PERSONAS, outcomes, strict=True))


def same(outcome: Outcome) -> dict[str, Outcome]:
    return cells(*[outcome] * len(PERSONAS))


A = ADMIN_LOGIN
L = LOGIN

# --- The table ----------------------------------------------------------------------------------
#
# What each persona should get: the wanted behaviour, not a record of today's answers. Project
# pages: a non-member cannot tell a project exists (404); a viewer reads, an editor generates and
# cancels, only an owner manages members. The admin: a signed-in non-staff user is sent to the
# admin's login; staff without permissions get the index and nothing else (403 on every model page);
# the usage panel and its export need ``billing.view_usage_panel``; the RQ dashboard, whether under
# admin/rq/ (the only place it is mounted), is for superusers only.

_ONLY_STAFF = {"GET": cells(A, A, A, A, A, 200, 200), "POST": cells(A, A, A, A, A, 200, 200)}
_ADMIN_MODEL_PAGE = {"GET": cells(A, A, A, A, A, 403, 200), "POST": cells(A, A, A, A, A, 403, 200)}
_ADMIN_REFUSED = {"GET": cells(A, A, A, A, A, 403, 403), "POST": cells(A, A, A, A, A, 403, 403)}
# A read-only admin page: the superuser may look, not change.
_ADMIN_READ_ONLY = {"GET": cells(A, A, A, A, A, 403, 200), "POST": cells(A, A, A, A, A, 403, 403)}
_AXES_RECORD = {
    "GET": cells(A, A, A, A, A, 403, 200),
    "POST": cells(A, A, A, A, A, 403, REDIRECT),
}
_MEMBER_READ = {
    "GET": cells(L, 404, 200, 200, 200, 404, 404),
    "POST": cells(L, 405, 405, 405, 405, 405, 405),
}
_SIGNED_IN_READ = {
    "GET": cells(L, 200, 200, 200, 200, 200, 200),
    "POST": cells(L, 405, 405, 405, 405, 405, 405),
}


def _rq(superuser_get: Outcome, superuser_post: Outcome) -> dict[str, dict[str, Outcome]]:
    """An RQ dashboard page: superusers only; staff without the flag get 403."""
    return {
        "GET": cells(A, A, A, A, A, 403, superuser_get),
        "POST": cells(A, A, A, A, A, 403, superuser_post),
    }


def _rq_pages(prefix: str, home: str) -> dict[str, dict[str, dict[str, Outcome]]]:
    """The same RQ views, mounted twice: at admin/rq/ and inside the admin."""
    jobs = Redirect(f"{home}queues/0/")
    job = Redirect(f"{home}queues/0/matrix-job/")
    return {
        f"{prefix}home": _rq(200, 200),
        f"{prefix}jobs": _rq(200, 200),
        f"{prefix}queue_details": _rq(200, 200),
        f"{prefix}finished_jobs": _rq(200, 200),
        f"{prefix}failed_jobs": _rq(200, 200),
        f"{prefix}delete_failed_jobs": _rq(200, Redirect(home)),
        f"{prefix}scheduled_jobs": _rq(200, 200),
        f"{prefix}started_jobs": _rq(200, 200),
        f"{prefix}deferred_jobs": _rq(200, 200),
        f"{prefix}clear": _rq(200, jobs),
        f"{prefix}requeue_all": _rq(200, jobs),
        f"{prefix}job_detail": _rq(200, 200),
        f"{prefix}result_detail": _rq(200, 200),
        f"{prefix}delete_job": _rq(200, jobs),
        f"{prefix}requeue_job": _rq(200, job),
        f"{prefix}enqueue_job": _rq(200, job),
        f"{prefix}stop_job": _rq(405, job),
        f"{prefix}confirm_action": _rq(jobs, jobs),
        f"{prefix}actions": _rq(jobs, jobs),
        f"{prefix}workers": _rq(200, 200),
        f"{prefix}worker_details": _rq(200, 200),
        f"{prefix}cron_scheduler_detail": _rq(200, 200),
        f"{prefix}cron_job_detail": _rq(200, 200),
    }


def _rq_stats_json() -> dict[str, dict[str, Outcome]]:
    # Wrapped like every dashboard page (its own API token is unset): superusers only.
    return _rq(200, 200)


EXPECTED: dict[str, dict[str, dict[str, Outcome]]] = {
    #                                anonymous outsider viewer editor    owner     staff superuser
    # --- Members' pages
    "projects:list": {
        "GET": cells(L, 200, 200, 200, 200, 200, 200),
        "POST": cells(L, REDIRECT, REDIRECT, REDIRECT, REDIRECT, REDIRECT, REDIRECT),
    },
    "projects:detail": {
        "GET": cells(L, 404, 200, 200, 200, 404, 404),
        "POST": cells(L, 404, 200, 200, 200, 404, 404),  # the page again; nothing changes
    },
    "projects:members": {
        "GET": cells(L, 404, 200, 200, 200, 404, 404),
        "POST": cells(L, 404, 403, 403, REDIRECT, 404, 404),
    },
    "projects:settings": {
        "GET": cells(L, 404, 200, 200, 200, 404, 404),
        "POST": cells(L, 404, 403, 403, REDIRECT, 404, 404),
    },
    "projects:generation_move": {
        "GET": cells(L, 404, 200, 200, 200, 404, 404),
        # The world has no second project the editor and owner share: the form answers again
        # with its error (the move itself is tested in tests/projects/test_housekeeping.py).
        "POST": cells(L, 404, 403, 200, 200, 404, 404),
    },
    "projects:member_change": {
        # 405 before any lookup, for every project id: it tells a non-member nothing.
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, 404, 404, REDIRECT, 404, 404),
    },
    "projects:generation_copy": {
        "GET": cells(L, 404, 200, 200, 200, 404, 404),
        # Any member may copy out (into a project they edit); the world has no such project,
        # so the form answers again with its error (copies: tests/projects/test_delete_copy.py).
        "POST": cells(L, 404, 200, 200, 200, 404, 404),
    },
    "projects:restore": {
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, 403, 403, REDIRECT, 404, 404),
    },
    # --- Share links and selection ZIPs
    "sharing:create": {
        "GET": cells(L, 404, 200, 200, 200, 404, 404),  # a viewer is told who may share
        "POST": cells(L, 404, 403, 200, 200, 404, 404),  # no video chosen: the form's error
    },
    "sharing:revoke": {
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, 403, REDIRECT, REDIRECT, 404, 404),
    },
    "sharing:zip": {
        "GET": cells(L, 404, 400, 400, 400, 404, 404),  # no video chosen: a page that says so
        "POST": cells(L, 405, 405, 405, 405, 405, 405),
    },
    # The link itself is the credential: the same answer for everyone, signed in or not.
    "sharing:public": {"GET": same(200), "POST": same(405)},
    "sharing:public_file": {"GET": same(200), "POST": same(405)},
    "generations:create": {
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, 403, REDIRECT, REDIRECT, 404, 404),
    },
    "generations:gallery": _MEMBER_READ,
    "generations:live": _MEMBER_READ,
    "generations:detail": _MEMBER_READ,
    "generations:file": _MEMBER_READ,
    "generations:input": _MEMBER_READ,
    # A draft is the signed-in session's own upload: a token no session stashed is nobody's.
    # (A member's own draft, served to that session only: tests/generations/test_generate_form.)
    "generations:draft": {
        "GET": cells(L, 404, 404, 404, 404, 404, 404),
        "POST": cells(L, 405, 405, 405, 405, 405, 405),
    },
    "generations:cancel": {
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, 403, REDIRECT, REDIRECT, 404, 404),
    },
    # Editing, remixing or extending a video, and picking a take: editors and owners; a refused
    # change (the world's video cannot be changed) or pick (it is no take) redirects with why.
    "generations:change": {
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, 403, REDIRECT, REDIRECT, 404, 404),
    },
    "generations:pick": {
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, 403, REDIRECT, REDIRECT, 404, 404),
    },
    "generations:character_create": {
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, 403, REDIRECT, REDIRECT, 404, 404),
    },
    # --- Reviews: every member comments and stars; deciding follows the project's setting
    # (owners and editors by default); a comment is deleted by its author (the editor's here)
    # or an owner.
    "reviews:comment_add": {
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, REDIRECT, REDIRECT, REDIRECT, 404, 404),
    },
    "reviews:comment_delete": {
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, 403, REDIRECT, REDIRECT, 404, 404),
    },
    "reviews:decide": {
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, 403, REDIRECT, REDIRECT, 404, 404),
    },
    "reviews:favourite": {
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, REDIRECT, REDIRECT, REDIRECT, 404, 404),
    },
    "reviews:policy": {
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, 403, 403, REDIRECT, 404, 404),
    },
    "reviews:activity": _MEMBER_READ,
    # How long the project's files are kept: its owners choose (tests/generations/test_retention).
    "generations:retention": {
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, 403, 403, REDIRECT, 404, 404),
    },
    "billing:usage": _SIGNED_IN_READ,
    "billing:notifications": _SIGNED_IN_READ,
    "billing:notifications_read": {
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, REDIRECT, REDIRECT, REDIRECT, REDIRECT, REDIRECT, REDIRECT),
    },
    # --- API tokens: each member's own page; revoking another member's token is a 404
    "api:tokens": {
        "GET": cells(L, 200, 200, 200, 200, 200, 200),
        "POST": cells(L, 400, 400, 400, 400, 400, 400),  # an empty form: errors, no token
    },
    "api:token_revoke": {  # the editor's token
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, 404, REDIRECT, 404, 404, 404),
    },
    "api:token_webhook": {  # the editor's token; an empty form turns its webhook off
        "GET": cells(L, 405, 405, 405, 405, 405, 405),
        "POST": cells(L, 404, 404, REDIRECT, 404, 404, 404),
    },
    # --- /v1: Bearer tokens only; a session authenticates nothing (401 for every persona)
    "api:openapi": {"GET": same(200), "POST": same(405)},  # public, like OpenAI's document
    "api:videos": {"GET": same(401), "POST": same(401)},
    "api:video": {"GET": same(401), "POST": same(405)},
    "api:video_content": {"GET": same(401), "POST": same(405)},
    "api:video_remix": {"GET": same(405), "POST": same(401)},
    "api:video_edits": {"GET": same(405), "POST": same(401)},
    "api:video_extensions": {"GET": same(405), "POST": same(401)},
    "api:video_characters": {"GET": same(405), "POST": same(401)},
    "api:video_character": {"GET": same(401), "POST": same(405)},
    "api:v1_not_found": {"GET": same(404), "POST": same(404)},
    # --- Signing in and out
    "accounts:login": {
        "GET": cells(200, *[Redirect("/")] * 6),
        "POST": cells(200, *[Redirect("/")] * 6),  # an empty form: errors, no session
    },
    "accounts:logout": {
        "GET": same(405),
        "POST": same(Redirect("/accounts/sign-in/")),
    },
    # --- Provider webhooks: authenticated by signature, never by session
    "providers:webhook": {"GET": same(405), "POST": same(400)},
    # --- The Django admin's own pages
    "admin:index": _ONLY_STAFF,
    "admin:login": {
        "GET": cells(200, 200, 200, 200, 200, Redirect("/admin/"), Redirect("/admin/")),
        "POST": same(200),  # an empty form: errors
    },
    "admin:logout": {
        "GET": cells(*[Redirect("/admin/")] * 5, 405, 405),
        "POST": cells(*[Redirect("/admin/")] * 5, *[Redirect("/accounts/sign-in/")] * 2),
    },
    "admin:password_change": _ONLY_STAFF,
    "admin:password_change_done": {
        "GET": cells(A, A, A, A, A, 200, 200),
        "POST": cells(A, A, A, A, A, 405, 405),
    },
    "admin:autocomplete": {
        "GET": cells(A, A, A, A, A, 403, 200),
        "POST": cells(A, A, A, A, A, 405, 405),
    },
    "admin:jsi18n": {
        "GET": cells(A, A, A, A, A, 200, 200),
        "POST": cells(A, A, A, A, A, 405, 405),
    },
    # Projects have no public URL to send anyone to.
    "admin:view_on_site": {
        "GET": cells(A, A, A, A, A, 404, 404),
        "POST": cells(A, A, A, A, A, 404, 404),
    },
    "admin:app_list": {
        "GET": cells(A, A, A, A, A, 404, 200),
        "POST": cells(A, A, A, A, A, 404, 200),
    },
    "admin/(?P<url>.*)$": {
        "GET": cells(A, A, A, A, A, 404, 404),
        "POST": cells(A, A, A, A, A, 404, 404),
    },
    # --- The usage panel: staff need billing.view_usage_panel; it is read-only for everyone
    "admin:billing_usagepanel_changelist": _ADMIN_MODEL_PAGE,
    "admin:billing_usagepanel_export": _ADMIN_MODEL_PAGE,
    "admin:billing_usagepanel_history": _ADMIN_MODEL_PAGE,
    "admin:billing_usagepanel_change": _ADMIN_READ_ONLY,
    "admin:billing_usagepanel_add": _ADMIN_REFUSED,
    "admin:billing_usagepanel_delete": _ADMIN_REFUSED,
    # --- Admin models that are history or made only by the app
    "admin:generations_generation_add": _ADMIN_REFUSED,  # members generate, not admins
    # Every field of a retention policy is optional, so an empty form is a valid policy: the
    # world's organisation default saved as "keep everything" (an empty add is refused by the
    # one-default constraint and answers its form again, like every other model's add).
    "admin:generations_retentionpolicy_change": {
        "GET": cells(A, A, A, A, A, 403, 200),
        "POST": cells(A, A, A, A, A, 403, REDIRECT),
    },
    "admin:generations_generation_change": {
        "GET": cells(A, A, A, A, A, 403, 200),
        "POST": cells(A, A, A, A, A, 403, Redirect("/admin/generations/generation/")),
    },
    "admin:billing_price_change": _ADMIN_READ_ONLY,  # a price in effect is history
    "admin:billing_price_delete": _ADMIN_REFUSED,
    "admin:billing_ledgerentry_change": _ADMIN_READ_ONLY,  # the ledger is append-only
    "admin:billing_ledgerentry_delete": _ADMIN_REFUSED,
    "admin:core_auditevent_change": _ADMIN_READ_ONLY,  # the audit log is written by the app
    "admin:core_auditevent_add": _ADMIN_REFUSED,
    "admin:core_auditevent_delete": _ADMIN_REFUSED,
    # Review history is written by members' decisions; comments are written in the app (an
    # admin may moderate them).
    "admin:reviews_reviewdecision_change": _ADMIN_READ_ONLY,
    "admin:reviews_reviewdecision_add": _ADMIN_REFUSED,
    "admin:reviews_reviewdecision_delete": _ADMIN_REFUSED,
    "admin:reviews_comment_add": _ADMIN_REFUSED,
    # Share links are made by members and revoked rather than deleted.
    "admin:sharing_sharelink_add": _ADMIN_REFUSED,
    "admin:sharing_sharelink_delete": _ADMIN_REFUSED,
    "admin:sharing_sharelink_change": {
        "GET": cells(A, A, A, A, A, 403, 200),
        "POST": cells(A, A, A, A, A, 403, Redirect("/admin/sharing/sharelink/")),
    },
    # Tokens are issued to their owner only, and revoked rather than deleted.
    "admin:api_apitoken_add": _ADMIN_REFUSED,
    "admin:api_apitoken_delete": _ADMIN_REFUSED,
    "admin:api_apitoken_change": {
        "GET": cells(A, A, A, A, A, 403, 200),
        "POST": cells(A, A, A, A, A, 403, Redirect("/admin/api/apitoken/")),
    },
    # A token's webhook deliveries are a log written by the workers.
    "admin:api_webhookevent_change": _ADMIN_READ_ONLY,
    "admin:api_webhookevent_add": _ADMIN_REFUSED,
    "admin:api_webhookevent_delete": _ADMIN_REFUSED,
    # --- The RQ dashboard, at admin/rq/ and as the admin's "Django RQ" entry
    **_rq_pages("django_rq:", "/admin/rq/"),
    "admin/rq/stats.json/?$": _rq_stats_json(),
    "admin/rq/stats.json/(?P<token>[\\w]+)?/?$": _rq_stats_json(),
    # django-rq's own Prometheus page, there since prometheus-client is installed (for
    # Reelhouse's /metrics); wrapped like the dashboard, which links to it.
    "django_rq:metrics": _rq_stats_json(),
    # --- Sign-in throttling (django-axes): its records are written by failed sign-ins only
    "admin:axes_accessattempt_add": _ADMIN_REFUSED,
    "admin:axes_accesslog_add": _ADMIN_REFUSED,
    "admin:axes_accessfailurelog_add": _ADMIN_REFUSED,
    # Read-only forms: saving one changes nothing and returns to the list.
    "admin:axes_accessattempt_change": _AXES_RECORD,
    "admin:axes_accesslog_change": _AXES_RECORD,
    "admin:axes_accessfailurelog_change": _AXES_RECORD,
    # --- Every other admin model: staff without permissions see none of it
    "admin:*_changelist": _ADMIN_MODEL_PAGE,
    "admin:*_add": _ADMIN_MODEL_PAGE,
    "admin:*_change": _ADMIN_MODEL_PAGE,
    "admin:*_delete": _ADMIN_MODEL_PAGE,
    "admin:*_history": _ADMIN_MODEL_PAGE,
    "admin:auth_user_password_change": _ADMIN_MODEL_PAGE,
    # "/<id>/" only redirects to "/<id>/change/", which does the checking.
    "admin/*/<path:object_id>/": {
        "GET": cells(A, A, A, A, A, REDIRECT, REDIRECT),
        "POST": cells(A, A, A, A, A, REDIRECT, REDIRECT),
    },
}


# --- The URL configuration ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    name: str | None  # with its namespace, "projects:detail"
    route: str  # the full route, spelled as ResolverMatch.route spells it
    label: str  # the table key and test id: the name, or the route if unnamed or shared


def _walk(
    patterns: list[Any], prefix: str, namespace: str | None
) -> Iterator[tuple[str | None, str]]:
    for entry in patterns:
        route = URLResolver._join_route(prefix, str(entry.pattern))  # type: ignore[attr-defined]
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _walk(entry.url_patterns, route, inner)
        else:
            assert isinstance(entry, URLPattern)
            name = None
            if entry.name:
                name = f"{namespace}:{entry.name}" if namespace else entry.name
            yield name, route


def url_patterns() -> list[Pattern]:
    found = list(_walk(get_resolver().url_patterns, "", None))
    names = [name for name, _ in found]
    return [
        Pattern(
            name=name,
            route=route,
            label=name if name and names.count(name) == 1 else route,
        )
        for name, route in found
    ]


PATTERNS = url_patterns()


def expected_row(label: str) -> dict[str, dict[str, Outcome]] | None:
    if label in EXPECTED:
        return EXPECTED[label]
    for key, row in EXPECTED.items():
        if "*" in key and fnmatch.fnmatchcase(label, key):
            return row
    return None


# --- The world: real objects for every URL parameter --------------------------------------------

VIDEO_BYTES_NAME = "video.mp4"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 9), (0, 0, 0)).save(out, format="PNG")
    return out.getvalue()


INPUT_PNG = _png()


@dataclass
class World:
    users: dict[str, User]
    project: Project
    other_project: Project
    member: Membership  # the viewer's membership of ``project``
    other_member: Membership  # the outsider's membership of ``other_project``
    completed: Generation  # in ``project``, with a stored video
    queued: Generation  # in ``project``, by the editor: cancelable
    other_generation: Generation  # in ``other_project``
    channel: Channel
    newcomer: User  # belongs to nothing; the owner adds them
    share_link: ShareLink  # of ``completed``, made by the owner
    share_token: str
    sessions: dict[str, str]  # persona → session key, signed in once for the whole module


def _user(username: str, **extra: Any) -> User:
    # No password: personas sign in with force_login, and hashing costs time.
    return User.objects.create_user(username=username, password=None, **extra)


def _completed(project: Project, author: User, channel: Channel) -> Generation:
    generation = Generation.objects.create(
        project=project,
        created_by=author,
        channel=channel,
        model="sora-2",
        prompt="Waves at dawn",
        size="1280x720",
        seconds=4,
        status=Status.COMPLETED,
        progress=100,
        completed_at=timezone.now(),
    )
    generation.video.name = f"generations/{project.pk}/{generation.pk}/{VIDEO_BYTES_NAME}"
    generation.save(update_fields=["video"])
    # The image it was made from (image to video); its file is stored per case with the video.
    GenerationInput.objects.create(
        generation=generation,
        role=InputRole.FIRST_FRAME,
        image=f"generations/{project.pk}/{generation.pk}/inputs/first_frame-0.png",
        content_type="image/png",
        width=1280,
        height=720,
        byte_size=len(INPUT_PNG),
    )
    return generation


def _build_world() -> World:
    users = {
        "outsider": _user("oscar"),
        "viewer": _user("vera"),
        "editor": _user("tariq"),
        "owner": _user("olivia"),
        "staff": _user("stella", is_staff=True),
        "superuser": _user("ada", is_staff=True, is_superuser=True),
    }
    newcomer = _user("nina")
    channel = Channel.objects.create(
        slug="openai",
        name="OpenAI Videos",
        requests_per_minute=60_000,
        max_in_flight=50,
        member_max_in_flight=50,
        webhook_secret_env="OPENAI_WEBHOOK_SECRET",
    )
    prices_seed(channel=channel)
    project = project_create(name="Launch film", owner=users["owner"])
    membership_add(project=project, username="tariq", role=Role.EDITOR, actor=users["owner"])
    member = membership_add(
        project=project, username="vera", role=Role.VIEWER, actor=users["owner"]
    )
    other_project = project_create(name="Other film", owner=users["outsider"])
    other_member = Membership.objects.get(project=other_project, user=users["outsider"])
    queued = generation_submit(
        project=project,
        user=users["editor"],
        channel=channel,
        model="sora-2",
        prompt="A lighthouse in fog",
        size="1280x720",
        seconds=4,
    )
    # One object per admin model, so every admin object URL points at a real row.
    Group.objects.create(name="Editors")
    FailoverRoute.objects.create(name="Sora anywhere")
    Budget.objects.create(scope=Scope.MEMBER, user=users["editor"], limit_cents=10_000)
    RetentionPolicy.objects.create(project=None, remove_after_days=365)
    AccessAttempt.objects.create(username="oscar", ip_address="192.0.2.7", failures_since_start=3)
    AccessLog.objects.create(username="oscar", ip_address="192.0.2.7")
    AccessFailureLog.objects.create(username="oscar", ip_address="192.0.2.7")
    issued = token_create(
        owner=users["editor"], name="matrix", project=project, can_write=True, expires_at=None
    )
    WebhookEvent.objects.create(
        token=issued.token, event_id="evt_matrix", event_type="video.failed", video_id=uuid.uuid4()
    )
    completed = _completed(project, users["editor"], channel)
    issued = share_link_create(
        project=project,
        generation_ids=[str(completed.pk)],
        actor=users["owner"],
        lifetime_days=7,
        show_prompt=False,
    )
    sessions = {}
    for persona, user in users.items():
        signer = Client()
        signer.force_login(user)
        sessions[persona] = signer.cookies[settings.SESSION_COOKIE_NAME].value
    world = World(
        users=users,
        sessions=sessions,
        project=project,
        other_project=other_project,
        member=member,
        other_member=other_member,
        completed=completed,
        queued=queued,
        other_generation=_completed(other_project, users["outsider"], channel),
        channel=channel,
        newcomer=newcomer,
        share_link=issued.link,
        share_token=issued.token,
    )
    review_comment_add(
        generation=world.completed, author=users["editor"], text="Too dark", at_ms=1000
    )
    review_decide(generation=world.completed, actor=users["owner"], state=ReviewState.APPROVED)
    assert LedgerEntry.objects.exists() and AuditEvent.objects.exists()
    return world


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any, redis_url: str) -> Iterator[World]:
    """Objects built once per module inside a transaction rolled back at its end.

    Every case runs in a savepoint inside it (pytest-django's ``db``), like Django's
    ``TestCase.setUpTestData``: building the world per case would multiply the run time.
    """
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield _build_world()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


class Live:
    """What each case builds afresh, on first use: stored files and Redis's RQ objects.

    Redis is flushed and the media directory is new for every case (tests/conftest.py), so these
    cannot be built once per module; they are built only for the URLs that need them.
    """

    def __init__(self, world: World, video_bytes: bytes) -> None:
        self.world = world
        self.video_bytes = video_bytes
        self._rq: dict[str, str] | None = None
        self._files = False

    def store_files(self) -> None:
        if not self._files:
            for generation in (self.world.completed, self.world.other_generation):
                default_storage.save(generation.video.name, ContentFile(self.video_bytes))
                for item in generation.inputs.all():
                    default_storage.save(item.image.name, ContentFile(INPUT_PNG))
            self._files = True

    def rq(self, name: str) -> str:
        if self._rq is None:
            self._rq = self._build_rq()
        return self._rq[name]

    def _build_rq(self) -> dict[str, str]:
        from rq import Worker
        from rq.cron import CronScheduler
        from rq.job import Job, JobStatus
        from rq.results import Result

        queue = django_rq.get_queue("default")
        # A failed job: the one state every job action (requeue, enqueue, delete) applies to.
        job = Job.create(
            os.path.basename,
            args=("/tmp/x",),
            id="matrix-job",
            connection=queue.connection,
            origin=queue.name,
        )
        job.set_status(JobStatus.FAILED, pipeline=None)
        job.save()
        queue.failed_job_registry.add(job, ttl=600)
        result = Result.create(job, Result.Type.FAILED, ttl=600, exc_string="Traceback: boom")
        worker = Worker([queue], connection=queue.connection, name="matrix-worker")
        worker.register_birth()
        cron = CronScheduler(connection=queue.connection, name="matrix-cron")
        cron.register(
            os.path.basename, queue_name=queue.name, args=("/tmp/x",), interval=3600, name="nightly"
        )
        cron.register_birth()
        return {
            "job_id": job.id,
            "result_id": result.id,
            "key": worker.key,
            "scheduler_name": cron.name,
            "cron_job_name": "nightly",
        }


@pytest.fixture
def live(world: World, db: None, redis_conn: Any, video_bytes: bytes, monkeypatch: Any) -> Live:
    monkeypatch.setenv(world.channel.webhook_secret_env, WEBHOOK_SECRET)
    return Live(world, video_bytes)


WEBHOOK_SECRET = "whsec_" + "bWF0cml4IHNpZ25pbmcgc2VjcmV0IG9mIDMyIGJ5dGVzIQ=="


@pytest.fixture(scope="session")
def video_bytes() -> bytes:
    from workspace.simulator.media import media_cache

    return media_cache().get("video", "1280x720", 4)


# Models whose admin pages need an id that is not a database row.
_ADMIN_OBJECT_IDS = {"django_rq.dashboard": "1"}


def _admin_object_id(route: str) -> str:
    match = re.match(r"admin/(\w+)/(\w+)/", route)
    assert match, f"no model in {route}"
    label = f"{match[1]}.{match[2]}"
    if label in _ADMIN_OBJECT_IDS:
        return _ADMIN_OBJECT_IDS[label]
    model = apps.get_model(match[1], match[2])
    pk = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
    assert pk is not None, f"build a {label} in _build_world() so {route} has a real object"
    return str(pk)


def _param(name: str, pattern: Pattern, world: World, live: Live) -> str:
    values: dict[str, Any] = {
        "project_id": world.project.pk,
        "member_id": world.member.pk,
        "generation_id": (
            world.queued.pk if pattern.label == "generations:cancel" else world.completed.pk
        ),
        "variant": "video",
        "channel_slug": world.channel.slug,
        "queue_index": 0,
        "scheduler_index": 0,
        "connection_index": 0,
        "token": "notTheToken",
        "content_type_id": ContentType.objects.get_for_model(Project).pk,
        "app_label": "projects",
        "url": "no-such-page/",
        "id": world.users["owner"].pk,
        "video_id": world.completed.pk,
        "input_id": world.completed.inputs.get().pk,
        "character_id": "char_123",
        "token_id": ApiToken.objects.get(name="matrix").pk,
        "comment_id": Comment.objects.get(text="Too dark").pk,
        "share_token": world.share_token,
        "link_id": world.share_link.pk,
    }
    if name in {"job_id", "result_id", "key", "scheduler_name", "cron_job_name"}:
        return live.rq(name)
    if name in {"generation_id", "input_id"}:
        live.store_files()
    if name == "object_id":
        if pattern.label == "admin:view_on_site":
            return str(world.project.pk)
        return _admin_object_id(pattern.route)
    assert name in values, f"teach _param() a real value for <{name}> in {pattern.route}"
    return str(values[name])


_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")


def build_path(pattern: Pattern, world: World, live: Live) -> str:
    kwargs = {name: _param(name, pattern, world, live) for name in _PARAM.findall(pattern.route)}
    if pattern.name and pattern.label == pattern.name:
        path = reverse(pattern.name, kwargs=kwargs)
    else:
        # Unnamed, or a name shared by several patterns: fill the route in by hand.
        group = r"\(\?P<(\w+)>(?:\[[^\]]*\]|[^)])*\)\??"
        text = re.sub(group, lambda m: kwargs[m[1]], pattern.route)
        text = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: kwargs[m[1]], text)
        text = text.replace("^", "").replace("$", "").replace("/?", "/")
        path = "/" + text
    assert resolve(path).route == pattern.route, f"{path} does not resolve to {pattern.route}"
    return path


# Bodies for POSTs whose point is to succeed when allowed (else an empty form is sent).
POST_DATA: dict[str, dict[str, str]] = {
    "projects:list": {"name": "Matrix film"},
    "projects:members": {"username": "nina", "role": Role.VIEWER},  # the world's newcomer
    "projects:member_change": {"role": Role.EDITOR},
    "projects:generation_move": {"to_project": "0"},
    "projects:generation_copy": {"to_project": "0"},
    "projects:settings": {"action": "rename", "name": "Matrix film renamed"},
    "generations:character_create": {"name": "Mira"},
    "reviews:comment_add": {"text": "Lovely", "at": "0:01"},
    "reviews:decide": {"state": "changes"},
    "reviews:policy": {"deciders": "owners"},
    "generations:retention": {"scope": "own", "remove_after_days": "30"},
    "generations:create": {
        "prompt": "Waves at dawn",
        "model": "sora-2",
        "size": "1280x720",
        "seconds": "4",
    },
    "generations:change": {"operation": "extend", "prompt": "The waves calm", "seconds": "4"},
}
# Query strings a GET needs to reach its real work.
QUERY: dict[str, dict[str, str]] = {
    "admin:autocomplete": {
        "app_label": "billing",
        "model_name": "budget",
        "field_name": "user",
        "term": "o",
    },
}


# --- Checking an answer -----------------------------------------------------------------------


def mismatch(response: HttpResponse, expected: Outcome) -> str | None:
    status = response.status_code
    if isinstance(expected, int):
        return None if status == expected else f"expected {expected}"
    if status != 302:
        return f"expected {expected}"
    location = urlsplit(response["Location"])
    if expected.to is None:
        return f"expected {expected}" if location.path in _SIGN_IN_PATHS else None
    if location.path != expected.to:
        return f"expected {expected}"
    asked = response.wsgi_request.get_full_path()  # type: ignore[attr-defined]
    if expected.with_next and parse_qs(location.query).get("next") != [asked]:
        return f"expected {expected}"
    return None


def describe(response: HttpResponse) -> str:
    text = f"{response.status_code}"
    if response.has_header("Location"):
        text += f" to {response['Location']}"
    return text


def request(client: Client, method: str, path: str, pattern: Pattern) -> HttpResponse:
    if method == "GET":
        return client.get(path, QUERY.get(pattern.label))
    if method == "HEAD":
        return client.head(path)
    return client.post(path, POST_DATA.get(pattern.label, {}))


@pytest.fixture(scope="module")
def shared_client() -> Client:
    """One client for the module: each new one would rebuild the middleware (and WhiteNoise's
    scan of every static file). CSRF checks are off (its default): the point is authorization.
    A view that raises is answered as the server would, a 500, with the traceback kept."""
    return Client(raise_request_exception=False)


def client_as(client: Client, world: World, persona: str) -> Client:
    client.cookies = SimpleCookie()
    if persona != "anonymous":
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[persona]
    return client


def no_500(response: HttpResponse, context: str) -> None:
    if response.status_code < 500:
        return
    details = ""
    if getattr(response, "exc_info", None):
        details = "".join(traceback.format_exception(*response.exc_info))
    elif not response.streaming:
        details = response.content.decode(errors="replace")[:4000]
    pytest.fail(f"{context}: {response.status_code}\n{details}", pytrace=False)


# --- The tests ----------------------------------------------------------------------------------


CASES = [
    pytest.param(pattern, persona, method, id=f"{pattern.label}-{persona}-{method}")
    for pattern in PATTERNS
    for persona in PERSONAS
    for method in METHODS
]


@pytest.mark.parametrize(("pattern", "persona", "method"), CASES)
def test_matrix(
    pattern: Pattern, persona: str, method: str, world: World, live: Live, shared_client: Client
) -> None:
    path = build_path(pattern, world, live)
    response = request(client_as(shared_client, world, persona), method, path, pattern)
    context = f"{pattern.label} {persona} {method} {path}"
    no_500(response, context)
    row = expected_row(pattern.label)
    assert row is not None, f"add a row for {pattern.label!r} to EXPECTED ({pattern.route})"
    assert method in row, f"add {method} to the row of {pattern.label!r} in EXPECTED"
    wanted = row[method][persona]
    problem = mismatch(response, wanted)
    assert problem is None, f"{context}: {problem}, got {describe(response)}"


def test_every_pattern_has_a_row() -> None:
    missing = [p.label for p in PATTERNS if expected_row(p.label) is None]
    assert not missing, "add a row to EXPECTED for: " + ", ".join(missing)


def test_every_row_matches_a_pattern() -> None:
    labels = {p.label for p in PATTERNS}
    stale = [
        key
        for key in EXPECTED
        if key not in labels and not any(fnmatch.fnmatchcase(lab, key) for lab in labels)
    ]
    assert not stale, "these EXPECTED rows match no URL pattern any more: " + ", ".join(stale)



# Every page a member reads, and the sign-in page: browsers, proxies and link checkers send HEAD.
HEAD_PAGES = [
    "accounts:login",
    "projects:list",
    "projects:detail",
    "projects:members",
    "projects:settings",
    "generations:gallery",
    "generations:live",
    "generations:detail",
    "generations:file",
    "reviews:activity",
    "generations:input",
    "billing:usage",
    "billing:notifications",
]


@pytest.mark.parametrize("label", HEAD_PAGES)
def test_head_never_fails(label: str, world: World, live: Live, shared_client: Client) -> None:
    pattern = next(p for p in PATTERNS if p.label == label)
    path = build_path(pattern, world, live)
    persona = "anonymous" if label == "accounts:login" else "owner"
    response = request(client_as(shared_client, world, persona), "HEAD", path, pattern)
    no_500(response, f"{label} {persona} HEAD {path}")
    if label == "generations:file":
        # A file answers HEAD like GET, without the body (issue 9, item 10).
        got = request(client_as(shared_client, world, persona), "GET", path, pattern)
        assert (response.status_code, response.get("Content-Length")) == (
            got.status_code,
            got.get("Content-Length"),
        ), f"HEAD {path}: {describe(response)}, GET: {describe(got)}"


def test_ids_from_another_project_are_404(world: World, live: Live, shared_client: Client) -> None:
    """The owner of one project cannot reach another project's objects through its own URLs."""
    live.store_files()  # the other project's file exists: a 404 below is the access check
    assert default_storage.exists(world.other_generation.video.name)
    project = world.project.pk
    other_generation = world.other_generation.pk
    client = client_as(shared_client, world, "owner")
    for name, args in [
        ("generations:detail", [project, other_generation]),
        ("generations:file", [project, other_generation, "video"]),
        (
            "generations:input",
            [project, other_generation, world.other_generation.inputs.get().pk],
        ),
        ("projects:detail", [world.other_project.pk]),
    ]:
        response = client.get(reverse(name, args=args))
        assert response.status_code == 404, f"{name} {args}: {describe(response)}"
    for name, args in [
        ("generations:cancel", [project, other_generation]),
        ("reviews:comment_add", [project, other_generation]),
        ("reviews:decide", [project, other_generation]),
        ("reviews:favourite", [project, other_generation]),
        ("generations:change", [project, other_generation]),
        ("generations:pick", [project, other_generation]),
        ("projects:member_change", [project, world.other_member.pk]),
    ]:
        response = client.post(reverse(name, args=args), {"role": Role.VIEWER})
        assert response.status_code == 404, f"{name} {args}: {describe(response)}"
    world.other_member.refresh_from_db()
    assert world.other_member.role == Role.OWNER
