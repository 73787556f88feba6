"""The project settings page's storage and retention section."""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Count, Sum
from django.utils import timezone

from workspace.generations.forms import RetentionPolicyForm
from workspace.generations.models import RetentionPolicy
from workspace.generations.retention import (
    retention_candidates,
    retention_policy_default,
)
from workspace.generations.storage_use import storage_of_project
from workspace.projects.models import Membership

register = template.Library()


@register.inclusion_tag("generations/_retention_panel.html", takes_context=True)
def retention_settings_panel(context: template.Context) -> dict[str, Any]:
    """Storage used, the policy in force and what it would remove now (a few aggregate
    queries, whatever the project's size), and the owner's form."""
    membership: Membership = context["membership"]
    project = membership.project
    default = retention_policy_default()
    own = RetentionPolicy.objects.filter(project=project).first()
    policy = own or default
    due = retention_candidates(project=project, policy=policy, now=timezone.now()).aggregate(
        videos=Count("pk"), size=Sum("stored_bytes")
    )
    initial = {
        "scope": "own" if own else "default",
        "remove_after_days": policy.remove_after_days,
        "keep_only_picked": policy.keep_only_picked,
        "keep_approved_and_favourites": policy.keep_approved_and_favourites,
    }
    return {
        "csrf_token": context.get("csrf_token"),
        "project": project,
        "membership": membership,
        "stored_bytes": storage_of_project(project=project),
        "policy": policy,
        "own": own,
        "default": default,
        "due_videos": due["videos"],
        "due_bytes": due["size"] or 0,
        "form": RetentionPolicyForm(initial=initial),
    }
