"""Review panels as self-contained template tags, so the video page and the project settings
page each need one line to show them (and other work on those templates merges cleanly)."""

from __future__ import annotations

from typing import Any

from django import template
from django.core.exceptions import NON_FIELD_ERRORS
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from workspace.generations.models import Generation, Status
from workspace.projects.models import Membership
from workspace.reviews.forms import CommentForm, ReviewPolicyForm, format_timecode
from workspace.reviews.models import Deciders, ReviewState
from workspace.reviews.selectors import comments_for, decisions_for, reviews_attach
from workspace.reviews.services import MENTION, review_deciders, review_may_decide
from workspace.reviews.views import refused_comment_key

register = template.Library()


@register.filter
def comment_html(text: str) -> str:
    """A comment's text for the page: escaped, line breaks kept, @mentions marked, and wrapped
    in a bidi isolate so a right-to-left override cannot flip what follows it."""
    escaped = str(conditional_escape(text))
    # Usernames hold no character that escaping changes, so matching the escaped text is safe.
    marked = MENTION.sub(r'<span class="mention">@\1</span>', escaped)
    return mark_safe("\u2068" + marked.replace("\n", "<br>") + "\u2069")  # noqa: S308


@register.filter
def timecode(at_ms: int | None) -> str:
    return "" if at_ms is None else format_timecode(at_ms)


def _comment_form(request: Any, generation: Generation) -> CommentForm:
    refused = request.session.pop(refused_comment_key(generation.pk), None)
    if not isinstance(refused, dict):
        return CommentForm()
    form = CommentForm(refused.get("data", {}))
    form.is_valid()  # the field errors again, beside the input as it was sent
    for field, found in (refused.get("errors") or {}).items():
        for message in found:
            if field == NON_FIELD_ERRORS or field not in form.fields:
                form.add_error(None, message)
            elif message not in form.errors.get(field, []):
                form.add_error(field, message)
    return form


@register.inclusion_tag("reviews/_panel.html", takes_context=True)
def review_panel(context: template.Context) -> dict[str, Any]:
    """Decision, star and comments for the video page (``generation`` and ``membership`` in
    its context); four queries."""
    request = context["request"]
    generation: Generation = context["generation"]
    membership: Membership = context["membership"]
    reviews_attach([generation], user=request.user)
    deciders = review_deciders(project=membership.project)
    decisions = decisions_for(generation)
    return {
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "project": membership.project,
        "membership": membership,
        "generation": generation,
        "user": request.user,
        "comments": comments_for(generation),
        "comment_form": _comment_form(request, generation),
        "current": decisions[0] if decisions and decisions[0].state != ReviewState.NONE else None,
        "history": decisions,
        "may_decide": review_may_decide(membership=membership, deciders=deciders)
        and generation.status == Status.COMPLETED
        and not membership.project.is_archived,
        "deciders_label": Deciders(deciders).label.lower(),
        "states": ReviewState,
        "read_only": membership.project.is_archived,
    }


@register.inclusion_tag("reviews/_settings_panel.html", takes_context=True)
def review_settings_panel(context: template.Context) -> dict[str, Any]:
    """The project settings page's review section (``project`` and ``membership`` in context)."""
    membership: Membership = context["membership"]
    deciders = review_deciders(project=membership.project)
    return {
        "csrf_token": context.get("csrf_token"),
        "project": membership.project,
        "membership": membership,
        "form": ReviewPolicyForm(initial={"deciders": deciders}),
        "deciders_label": Deciders(deciders).label,
    }
