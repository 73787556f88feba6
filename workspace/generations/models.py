"""One row per generation request, and the state machine it moves through.

    queued ──► submitting ──► in_progress ──► downloading ──► completed
      │  ▲ ▲        │   │   │        │  │           │
      │  │ └────────┘   │   ▼        │  │           │
      │  │  (provably   │  held ─────┼──┼─► canceled (an admin decides)
      │  │ not created) ▼            ▼  │           ▼
      │  │            failed ◄───────┴──┼───────────┘
      │  └──────────────────────────────┘ (provider failed it for its own reasons, unbilled)
      ▼
    canceled

Every transition is one conditional UPDATE (``WHERE id = … AND status IN (…)``), so when two
workers, a duplicated RQ job or a retry race for the same row, exactly one wins and the others
see that they lost and do nothing. A row in ``submitting`` may have started a paid job at the
provider, so it is never sent again without first reconciling against the provider's list.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models.functions import Coalesce
from django.dispatch import Signal
from django.utils import timezone

PROMPT_MAX_LENGTH = 32000
ERROR_MESSAGE_MAX_LENGTH = 2000


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Submitting"
    IN_PROGRESS = "in_progress", "Generating"
    DOWNLOADING = "downloading", "Saving"
    HELD = "held", "Held for an admin"
    COMPLETED = "completed", "Ready"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


TRANSITIONS: dict[str, frozenset[str]] = {
    Status.QUEUED: frozenset({Status.SUBMITTING, Status.CANCELED, Status.FAILED}),
    # Back to queued only when the provider provably did not create the job; held when nobody
    # can tell, so an admin decides instead of the system paying twice.
    Status.SUBMITTING: frozenset({Status.QUEUED, Status.IN_PROGRESS, Status.FAILED, Status.HELD}),
    # Back to queued when the provider failed the job for its own reasons (heavy load) and does
    # not bill it: a fresh create is the retry.
    Status.IN_PROGRESS: frozenset({Status.DOWNLOADING, Status.FAILED, Status.QUEUED}),
    Status.HELD: frozenset({Status.QUEUED, Status.CANCELED, Status.IN_PROGRESS}),
    Status.DOWNLOADING: frozenset({Status.COMPLETED, Status.FAILED}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELED: frozenset(),
}
ACTIVE_STATUSES = frozenset(
    {Status.QUEUED, Status.SUBMITTING, Status.IN_PROGRESS, Status.DOWNLOADING, Status.HELD}
)
TERMINAL_STATUSES = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELED})


class IllegalTransition(Exception):
    pass


class Operation(models.TextChoices):
    """What a request asks the provider to do; all but ``generate`` change an earlier video."""

    GENERATE = "generate", "New video"
    EDIT = "edit", "Edit"
    REMIX = "remix", "Remix"
    EXTEND = "extend", "Extension"


CHANGING_OPERATIONS = frozenset({Operation.EDIT, Operation.REMIX, Operation.EXTEND})
# Sent (``generation=``) by the call whose transition made a generation completed, failed or
# canceled, once per generation. Apps above this one that react to the end (the API's outgoing
# webhooks) listen here instead of every place a generation can end calling them.
generation_finished = Signal()


def _file_path(generation: Generation, filename: str) -> str:
    # The FileFields' upload_to (the migrations name it); the path itself is the model's.
    return generation.storage_name(filename)


class Generation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="generations"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="generations"
    )
    channel = models.ForeignKey(
        "providers.Channel", on_delete=models.PROTECT, related_name="generations"
    )
    model = models.CharField(max_length=80)
    # OpenAI's limit, the widest of the providers' (a TextField's max_length bounds its form
    # field only; the validator bounds full_clean).
    prompt = models.TextField(
        max_length=PROMPT_MAX_LENGTH, validators=[MaxLengthValidator(PROMPT_MAX_LENGTH)]
    )
    size = models.CharField(max_length=20)
    seconds = models.PositiveSmallIntegerField()
    estimated_cost_cents = models.PositiveIntegerField(default=0)
    # What the provider itself says the finished job cost, in US cents, where its protocol reports
    # one (Runway's ``cost.credits``, 1 credit = 1 cent); NULL when it does not. The ledger settles
    # on it; the list price stays what was reserved.
    provider_reported_cost_cents = models.PositiveIntegerField(null=True, blank=True)

    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0)
    # NULL, not "", until the provider names the job: the uniqueness constraint skips NULLs.
    provider_job_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    error_class = models.CharField(max_length=40, blank=True)
    # Written by code, truncated to this on write.
    error_message = models.TextField(
        blank=True,
        max_length=ERROR_MESSAGE_MAX_LENGTH,
        validators=[MaxLengthValidator(ERROR_MESSAGE_MAX_LENGTH)],
    )

    submit_attempts = models.PositiveSmallIntegerField(default=0)
    # Jobs the provider failed for its own reasons (heavy load) and that were sent again.
    provider_retries = models.PositiveSmallIntegerField(default=0)
    # Every provider job id this generation ever had, oldest first, for audits.
    provider_job_history = models.JSONField(default=list, blank=True)
    poll_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    submit_started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    # When the job finished at the provider: the provider's own time where its protocol gives one
    # (OpenAI's ``completed_at``), else estimated from its progress; never simply when we looked,
    # or every late check would teach the next estimate to be later still.
    provider_finished_at = models.DateTimeField(null=True, blank=True)
    # How long the provider took from accepting the job to finishing it (seconds, provider
    # clock): the sample the render-time model learns from; NULL when it cannot be known.
    render_seconds = models.FloatField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    provider_expires_at = models.DateTimeField(null=True, blank=True)

    video = models.FileField(upload_to=_file_path, blank=True, max_length=300)
    thumbnail = models.FileField(upload_to=_file_path, blank=True, max_length=300)
    spritesheet = models.FileField(upload_to=_file_path, blank=True, max_length=300)
    # Bytes of the video, poster and spritesheet as stored, written with the file names so the
    # usage panel sums a column instead of asking the store about every file. 0 with a stored
    # file means "not measured yet" (rows from before this column): ``storage_measure`` fills it.
    stored_bytes = models.PositiveBigIntegerField(default=0)
    # Set when the retention policy removed the files: the row, its ledger entries and its
    # inputs stay, the file fields are emptied, and pages say so instead of a broken player.
    files_removed_at = models.DateTimeField(null=True, blank=True)
    # Why, in words that follow "removed by the retention policy (…)": "older than 30 days".
    files_removed_reason = models.CharField(max_length=200, blank=True)

    # What it was made from. ``parent`` is the video an edit, remix or extension changed (its
    # provider copy is what the provider works from); images and frames are ``inputs``.
    operation = models.CharField(
        max_length=10, choices=Operation.choices, default=Operation.GENERATE
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="derivatives"
    )
    # Set on a copy made in another project (``projects.services.generation_copy``): the
    # video it copied. A copy was never sent to a provider and cost nothing.
    copied_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies"
    )
    # For an extension: the length of the video it extends. ``seconds`` is always what this
    # request makes and is billed for; the finished clip is ``total_seconds`` long.
    source_seconds = models.PositiveSmallIntegerField(null=True, blank=True)
    # Every video belongs to one stack: its own, or its parent's (edits, remixes, extensions
    # and takes of one request share the stack of what they came from).
    stack_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    # Takes of one request ("make N takes") share ``take_set``; ``take_count`` is N.
    take_set = models.UUIDField(null=True, blank=True, db_index=True)
    take_count = models.PositiveSmallIntegerField(default=1)
    is_pick = models.BooleanField(default=False)
    # The one member the gallery shows for the whole stack (its newest request, or the pick of
    # that request's takes), kept by ``versions`` in the transaction that changes the stack, so
    # a gallery page reads one row per stack from an index instead of grouping every version.
    is_stack_head = models.BooleanField(default=True)
    # The state of the current review decision ("approved", "changes", or "none"), kept here by
    # ``reviews.services.review_decide`` in the decision's transaction: the gallery's review
    # filter then walks one index in page order instead of joining every decision.
    review_state = models.CharField(max_length=10, default="none", editable=False)
    # Model options the catalog says this model takes: ``audio`` (bool), ``seed`` (int),
    # ``negative_prompt`` (str). Absent means the provider's default.
    options = models.JSONField(default=dict, blank=True)
    characters: models.ManyToManyField[Character, Any] = models.ManyToManyField(
        "Character", blank=True, related_name="generations"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "provider_job_id"],
                condition=models.Q(provider_job_id__isnull=False),
                name="one_generation_per_provider_job",
            ),
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="progress_is_a_percentage"
            ),
        ]
        indexes = [
            models.Index(fields=["project", "-created_at"]),
            # The dispatcher's questions: who has work waiting, and what is their oldest?
            models.Index(fields=["channel", "status", "created_by", "created_at"]),
            # How long this model's renders took lately (adaptive polling).
            models.Index(fields=["channel", "model", "-provider_finished_at"]),
            # The same, skipping rows without a render time: at a million rows, reading past the
            # NULLs at the head of the index above cost 170 ms per card page and per dispatch.
            models.Index(
                fields=["channel", "model", "-provider_finished_at"],
                condition=models.Q(render_seconds__isnull=False),
                name="recent_render_samples",
            ),
            # Follow-up calls per video lately (dispatch's pacing, the queue's ETAs).
            models.Index(
                fields=["channel", "-completed_at"],
                condition=models.Q(status="completed"),
                name="recent_completions",
            ),
            # Retention's candidates: finished videos that still have their files, oldest first.
            models.Index(
                fields=["project", "completed_at"],
                condition=models.Q(status="completed", files_removed_at__isnull=True),
                name="retention_candidates",
            ),
            # The gallery's keyset pages of stack heads (one card per stack).
            models.Index(
                fields=["project", "-created_at", "-id"],
                condition=models.Q(is_stack_head=True),
                name="gallery_stack_heads",
            ),
            # The gallery's filters, each read in page order (newest first) so that a page is the
            # first 49 entries of one index, however rare the match is in a large project.
            models.Index(
                fields=["project", "created_by", "-created_at", "-id"], name="gallery_by_member"
            ),
            models.Index(
                fields=["project", "status", "-created_at", "-id"], name="gallery_by_status"
            ),
            models.Index(
                fields=["project", "model", "-created_at", "-id"], name="gallery_by_model"
            ),
            models.Index(
                fields=["project", "review_state", "-created_at", "-id"], name="gallery_by_review"
            ),
            # The live updates' question, asked by every open page every few seconds: what
            # changed lately, and what is still in flight (two small index reads, OR-ed).
            models.Index(fields=["project", "updated_at"], name="gallery_changes"),
            models.Index(
                fields=["project"],
                condition=models.Q(status__in=sorted(ACTIVE_STATUSES)),
                name="gallery_in_flight",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.size} {self.seconds}s ({self.status})"

    @property
    def total_seconds(self) -> int:
        """How long the finished clip is (an extension's includes what it extends)."""
        return (self.source_seconds or 0) + self.seconds

    @property
    def price_variant(self) -> str:
        """The price table row kind this request is charged at (silent when audio is off)."""
        return "silent" if self.options.get("audio") is False else ""

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def files_removed(self) -> bool:
        return self.files_removed_at is not None

    def storage_name(self, filename: str) -> str:
        """Where a file of this generation lives in Django's default storage."""
        return f"generations/{self.project_id}/{self.pk}/{filename}"

    def transition(self, to: str, *, from_: str | set[str] | frozenset[str], **fields: Any) -> bool:
        """Move to ``to`` if the row is still in ``from_``; return whether this call won.

        Refuses transitions the state machine does not allow, whatever the row's state.
        """
        sources = {from_} if isinstance(from_, str) else set(from_)
        for source in sources:
            if to not in TRANSITIONS[source]:
                raise IllegalTransition(f"A generation cannot go from {source} to {to}.")
        now = timezone.now()
        changed = Generation.objects.filter(pk=self.pk, status__in=sources).update(
            status=to, updated_at=now, **fields
        )
        if changed:
            self.status = to
            self.updated_at = now
            for name, value in fields.items():
                setattr(self, name, value)
            if to in TERMINAL_STATUSES:
                generation_finished.send(sender=Generation, generation=self)
        return bool(changed)


class DispatchTurn(models.Model):
    """When a member last got a create slot on a channel: the round-robin's memory."""

    channel = models.ForeignKey("providers.Channel", on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_dispatched_at = models.DateTimeField()
    dispatched = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "member"], name="one_turn_per_member")
        ]

    def __str__(self) -> str:
        return f"{self.member_id} on {self.channel_id} at {self.last_dispatched_at}"


class InputRole(models.TextChoices):
    FIRST_FRAME = "first_frame", "First frame"
    LAST_FRAME = "last_frame", "Last frame"
    REFERENCE = "reference", "Reference image"


class Fit(models.TextChoices):
    CROP = "crop", "Crop to fill"
    PAD = "pad", "Pad to fit"


INPUT_NAME_MAX_LENGTH = 200


def _input_path(generation_input: GenerationInput, filename: str) -> str:
    return generation_input.generation.storage_name(f"inputs/{filename}")


class GenerationInput(models.Model):
    """An image a generation was made from, as sent: already checked and fitted to its size."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="inputs")
    role = models.CharField(max_length=20, choices=InputRole.choices)
    position = models.PositiveSmallIntegerField(default=0)
    image = models.FileField(upload_to=_input_path, max_length=300)
    content_type = models.CharField(max_length=40)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    byte_size = models.PositiveIntegerField()
    fit = models.CharField(max_length=10, choices=Fit.choices, blank=True)
    original_name = models.CharField(max_length=INPUT_NAME_MAX_LENGTH, blank=True)
    # A frame taken from a video of the project, and when in it (milliseconds).
    source_generation = models.ForeignKey(
        Generation, null=True, blank=True, on_delete=models.SET_NULL, related_name="frames_taken"
    )
    source_time_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["generation_id", "role", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "role", "position"], name="one_input_per_place"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} of {self.generation_id}"


class CharacterStatus(models.TextChoices):
    PENDING = "pending", "Being made"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


CHARACTER_NAME_MAX_LENGTH = 80


class Character(models.Model):
    """A named character the provider made from a short video, reused by name in prompts."""

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="characters"
    )
    channel = models.ForeignKey("providers.Channel", on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    name = models.CharField(
        max_length=CHARACTER_NAME_MAX_LENGTH,
        validators=[MaxLengthValidator(CHARACTER_NAME_MAX_LENGTH)],
    )
    source_generation = models.ForeignKey(
        Generation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=CharacterStatus.choices, default=CharacterStatus.PENDING
    )
    provider_character_id = models.CharField(  # noqa: DJ001
        max_length=200, null=True, blank=True
    )
    error_message = models.TextField(
        blank=True,
        max_length=ERROR_MESSAGE_MAX_LENGTH,
        validators=[MaxLengthValidator(ERROR_MESSAGE_MAX_LENGTH)],
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "channel", "name"], name="one_character_name_per_project"
            )
        ]

    def __str__(self) -> str:
        return self.name


class RetentionPolicy(models.Model):
    """When stored files of finished videos are removed: the organisation's default (the one
    row without a project, set by admins) or one project's own (set by its owners), which
    replaces the default for that project entirely.

    Removing keeps the ``Generation`` row (marked ``files_removed_at``), its ledger entries and
    its input images; only the video, poster and spritesheet go.
    """

    project = models.OneToOneField(
        "projects.Project",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="retention_policy",
        help_text="Empty for the organisation-wide default.",
    )
    remove_after_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Remove the files of videos finished more than this many days ago; "
        "empty to keep them however old.",
    )
    keep_only_picked = models.BooleanField(
        default=False,
        help_text="Remove the files of the takes not picked, once a take of their request "
        "is picked.",
    )
    keep_approved_and_favourites = models.BooleanField(
        default=True,
        help_text="Never remove an approved video or one a member starred.",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name_plural = "retention policies"
        constraints = [
            # One organisation default: the row without a project (NULLs are never equal, so
            # the one-to-one's own uniqueness does not cover it).
            models.UniqueConstraint(
                Coalesce("project", models.Value(0)),
                name="one_retention_policy_per_scope",
            ),
            models.CheckConstraint(
                condition=models.Q(remove_after_days__isnull=True)
                | models.Q(remove_after_days__gte=1),
                name="retention_days_positive",
            ),
        ]

    def __str__(self) -> str:
        scope = "Organisation default" if self.project_id is None else f"Project {self.project_id}"
        return f"{scope}: {self.describe()}"

    @property
    def removes_anything(self) -> bool:
        return self.remove_after_days is not None or self.keep_only_picked

    def describe(self) -> str:
        parts = []
        if self.remove_after_days is not None:
            parts.append(f"files of videos older than {self.remove_after_days} days are removed")
        if self.keep_only_picked:
            parts.append("takes not picked are removed once one is picked")
        if not parts:
            return "files are kept"
        kept = "; approved and starred videos are kept" if self.keep_approved_and_favourites else ""
        return "; ".join(parts) + kept
