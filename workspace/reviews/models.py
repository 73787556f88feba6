"""What a team thinks of its videos: comments, review decisions, favourites, who may decide.

Every row hangs off a generation (or, for the policy, a project), so a video moved to another
project takes its comments, decisions and stars with it, and deleting a project deletes them.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxLengthValidator, MinLengthValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

COMMENT_MAX_LENGTH = 2000
# A timecode beyond any video we can make (providers stop at a minute or two) is a typo.
TIMECODE_MAX_MS = 6 * 60 * 60 * 1000


class Comment(models.Model):
    generation = models.ForeignKey(
        "generations.Generation", on_delete=models.CASCADE, related_name="comments"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_comments"
    )
    text = models.TextField(
        max_length=COMMENT_MAX_LENGTH,
        # A TextField's max_length bounds its form field only; the validators bound full_clean.
        validators=[MinLengthValidator(1), MaxLengthValidator(COMMENT_MAX_LENGTH)],
    )
    # Where in the video the comment points, in milliseconds from the start; null: the whole video.
    at_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["generation", "created_at"], name="comment_by_video"),
            # The activity feed walks every project's comments newest first.
            models.Index(fields=["-created_at", "-id"], name="comment_newest"),
        ]

    def __str__(self) -> str:
        return self.text[:60]

    @property
    def at_seconds(self) -> float | None:
        return None if self.at_ms is None else self.at_ms / 1000


class ReviewState(models.TextChoices):
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes", "Changes requested"
    NONE = "none", "No decision"


class ReviewDecision(models.Model):
    """One decision on a video; the history is kept and the row with ``is_current`` is shown.

    A new decision clears the previous row's flag and inserts itself in one transaction under
    the video's row lock; the partial unique constraint makes two current rows impossible.
    """

    generation = models.ForeignKey(
        "generations.Generation", on_delete=models.CASCADE, related_name="review_decisions"
    )
    state = models.CharField(max_length=10, choices=ReviewState.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_decisions"
    )
    decided_at = models.DateTimeField(default=timezone.now)
    is_current = models.BooleanField(default=True)

    class Meta:
        ordering = ["-decided_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["generation"],
                condition=Q(is_current=True),
                name="one_current_review_decision",
            ),
        ]
        indexes = [
            # The gallery's review filter: current decisions in a given state.
            models.Index(
                fields=["state", "generation"],
                condition=Q(is_current=True),
                name="review_current_by_state",
            ),
            models.Index(fields=["-decided_at", "-id"], name="review_decision_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.get_state_display()} by {self.decided_by}"


class Favourite(models.Model):
    """A member's star on a video: private to that member."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="favourites"
    )
    generation = models.ForeignKey(
        "generations.Generation", on_delete=models.CASCADE, related_name="favourites"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # Also the index the gallery's "my favourites" filter and the cards' stars use.
            models.UniqueConstraint(fields=["user", "generation"], name="one_favourite_per_member")
        ]

    def __str__(self) -> str:
        return f"{self.user} ★ {self.generation_id}"


class Deciders(models.TextChoices):
    OWNERS_AND_EDITORS = "editors", "Owners and editors"
    OWNERS = "owners", "Owners only"


class ReviewPolicy(models.Model):
    """A project's review settings. Kept beside the project rather than on it so the review
    app owns its own schema; a project without a row uses the defaults."""

    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    deciders = models.CharField(
        max_length=10, choices=Deciders.choices, default=Deciders.OWNERS_AND_EDITORS
    )

    class Meta:
        verbose_name_plural = "review policies"

    def __str__(self) -> str:
        return f"{self.project_id}: {self.get_deciders_display()}"
