from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from workspace.generations.selectors import generation_get_or_404
from workspace.projects.selectors import membership_get_or_404
from workspace.reviews.forms import CommentForm, DecisionForm, ReviewPolicyForm
from workspace.reviews.models import COMMENT_MAX_LENGTH, Comment, ReviewState
from workspace.reviews.selectors import FeedCursor, activity_page
from workspace.reviews.services import (
    favourite_toggle,
    review_comment_add,
    review_comment_delete,
    review_decide,
    review_policy_set,
)

KEPT_TEXT_MAX = COMMENT_MAX_LENGTH * 4


def refused_comment_key(generation_id: object) -> str:
    return f"reviews:refused-comment:{generation_id}"


def _detail_url(project_id: int, generation_id: object, anchor: str = "") -> str:
    url = reverse("generations:detail", args=[project_id, generation_id])
    return f"{url}#{anchor}" if anchor else url


@login_required
@require_POST
def comment_add(request: HttpRequest, project_id: int, generation_id: str) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    generation = generation_get_or_404(project=membership.project, generation_id=generation_id)
    form = CommentForm(request.POST)
    errors: dict[str, list[str]] = {}
    if form.is_valid():
        try:
            comment = review_comment_add(
                generation=generation,
                author=request.user,  # type: ignore[arg-type]
                text=form.cleaned_data["text"],
                at_ms=form.cleaned_data["at"],
            )
        except ValidationError as error:
            errors = {
                (field if field in form.fields else NON_FIELD_ERRORS): list(found)
                for field, found in error.message_dict.items()
            }
        else:
            return redirect(_detail_url(project_id, generation.pk, f"comment-{comment.pk}"))
    else:
        errors = {field: [str(m) for m in found] for field, found in form.errors.items()}
    # Post/redirect/get even when refused: the video page shows the text as it was written and
    # the errors beside it, and a reload sends nothing again.
    request.session[refused_comment_key(generation.pk)] = {
        # Bounded: enough to give back a comment a little over the limit to be shortened, not
        # megabytes into the session store.
        "data": {
            "text": request.POST.get("text", "")[:KEPT_TEXT_MAX],
            "at": request.POST.get("at", "")[:20],
        },
        "errors": errors,
    }
    return redirect(_detail_url(project_id, generation.pk, "comment-form"))


@login_required
@require_POST
def comment_delete(request: HttpRequest, project_id: int, comment_id: int) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    comment = get_object_or_404(
        Comment.objects.select_related("generation__project"),
        pk=comment_id,
        generation__project=membership.project,
    )
    review_comment_delete(comment=comment, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, "Comment deleted.")
    return redirect(_detail_url(project_id, comment.generation_id, "comments"))


@login_required
@require_POST
def decide(request: HttpRequest, project_id: int, generation_id: str) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    generation = generation_get_or_404(project=membership.project, generation_id=generation_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve, request changes or no decision.")
    else:
        try:
            review_decide(
                generation=generation,
                actor=request.user,  # type: ignore[arg-type]
                state=form.cleaned_data["state"],
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request, f"Review: {ReviewState(form.cleaned_data['state']).label.lower()}."
            )
    return redirect(_detail_url(project_id, generation.pk, "review"))


@login_required
@require_POST
def favourite(request: HttpRequest, project_id: int, generation_id: str) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    generation = generation_get_or_404(project=membership.project, generation_id=generation_id)
    starred = favourite_toggle(generation=generation, user=request.user)  # type: ignore[arg-type]
    if request.headers.get("X-Requested-With") == "fetch":  # the page's script toggles in place
        return JsonResponse({"favourite": starred})
    # Without the script: back to the page the star was on (a gallery page with its filters),
    # which a card cannot name itself when it was drawn by a live update.
    back = request.POST.get("next") or request.headers.get("Referer", "")
    if not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = _detail_url(project_id, generation.pk)
    return redirect(back)


@login_required
@require_POST
def policy(request: HttpRequest, project_id: int) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    form = ReviewPolicyForm(request.POST)
    actor: User = request.user  # type: ignore[assignment]
    if not form.is_valid():
        messages.error(request, "Choose owners only, or owners and editors.")
    else:
        try:
            review_policy_set(
                project=membership.project, deciders=form.cleaned_data["deciders"], actor=actor
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Review settings saved.")
    return redirect(f"{reverse('projects:settings', args=[project_id])}#review-title")


@login_required
@require_safe
def activity(request: HttpRequest, project_id: int) -> HttpResponse:
    membership = membership_get_or_404(user=request.user, project_id=project_id)
    before = FeedCursor.decode(request.GET["before"]) if request.GET.get("before") else None
    page = activity_page(project=membership.project, before=before)
    return render(
        request,
        "reviews/activity.html",
        {
            "project": membership.project,
            "membership": membership,
            "items": page.items,
            "older_url": f"?before={page.older.encode()}" if page.older else None,
            "is_first_page": before is None,
        },
    )
