from __future__ import annotations

import json
from typing import Any

from django import forms
from django.forms.renderers import Jinja2

from workspace.billing.services import price_table
from workspace.generations.drafts import DraftStash
from workspace.generations.images import (
    MAX_IMAGE_BYTES,
    CheckedImage,
    ImageRefused,
    PreparedImage,
    frame_extract,
    image_check,
    image_fit,
)
from workspace.generations.models import (
    CHANGING_OPERATIONS,
    PROMPT_MAX_LENGTH,
    Fit,
    Generation,
    InputRole,
    Operation,
    Status,
)
from workspace.generations.selectors import GalleryFilters
from workspace.generations.submission import MAX_SEED, NEGATIVE_PROMPT_MAX_LENGTH
from workspace.providers.catalog import size_parts
from workspace.providers.models import Channel
from workspace.reviews.models import ReviewState

IMAGE_ACCEPT = "image/png,image/jpeg,image/webp"
# The fit choice the member sees; both pads are stored as Fit.PAD (the bars are how it looks).
FIT_CHOICES = [
    ("crop", "Crop to fill (centred)"),
    ("pad", "Pad to fit: black bars"),
    ("blur", "Pad to fit: blurred bars"),
]


class MultipleImageInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """Several files in one field (reference images)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleImageInput(attrs={"accept": IMAGE_ACCEPT}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        if isinstance(data, (list, tuple)):
            return [super(MultipleImageField, self).clean(item, initial) for item in data]
        return [] if not data else [super().clean(data, initial)]


# The project page draws ~25 widgets (generate form and filters) on every load: Django's own
# Jinja2 copies of its widget templates draw the same markup at a fraction of the cost.
PAGE_FORMS_RENDERER = Jinja2()


class GenerationForm(forms.Form):
    """The generate form; its choices come from the channel's model catalog."""

    default_renderer = PAGE_FORMS_RENDERER

    prompt = forms.CharField(
        max_length=PROMPT_MAX_LENGTH,
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "A paper boat drifting down a rainy street at dusk…"}
        ),
        label="Prompt",
        help_text=(
            f"Describe the scene, the camera and the mood; up to {PROMPT_MAX_LENGTH:,} characters."
        ),
        error_messages={"required": "Describe the video you want: the prompt is empty."},
    )
    model = forms.ChoiceField(label="Model")
    size = forms.ChoiceField(label="Shape")
    seconds = forms.TypedChoiceField(coerce=int, label="Length")
    start = forms.ChoiceField(
        label="Start from",
        required=False,
        initial="text",
        choices=[
            ("text", "Text alone"),
            ("image", "An image"),
            ("frame", "A frame of a video"),
        ],
        widget=forms.RadioSelect,
    )
    first_frame = forms.FileField(
        label="First frame",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": IMAGE_ACCEPT}),
        help_text=(
            f"PNG, JPEG or WebP, up to {MAX_IMAGE_BYTES // (1024 * 1024)} MB; an animated image "
            "gives its first frame."
        ),
    )
    # Draft tokens (drafts.py): 16 characters each.
    first_frame_kept = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    frame_video = forms.CharField(
        label="Video",
        required=False,
        max_length=36,  # a video's id; the view finds it in the project (else 404)
        widget=forms.Select(choices=[("", "Choose a video")]),
    )
    frame_at = forms.DecimalField(
        label="At (seconds)",
        required=False,
        min_value=0,
        decimal_places=3,
        max_digits=8,
        widget=forms.NumberInput(attrs={"step": "0.1", "inputmode": "decimal"}),
    )
    last_frame = forms.FileField(
        label="Last frame",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": IMAGE_ACCEPT}),
    )
    last_frame_kept = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    references = MultipleImageField(label="Reference images", required=False)
    references_kept = forms.CharField(required=False, max_length=512, widget=forms.HiddenInput)
    fit = forms.ChoiceField(
        label="Fit the image", choices=FIT_CHOICES, initial="crop", required=False
    )
    audio = forms.ChoiceField(
        label="Sound",
        required=False,
        initial="on",
        choices=[("on", "With sound"), ("off", "Silent")],
    )
    seed = forms.IntegerField(
        label="Seed",
        required=False,
        min_value=0,
        max_value=MAX_SEED,
        help_text="The same seed and request give a similar video; empty for a random one.",
        error_messages={"invalid": f"A seed is a whole number from 0 to {MAX_SEED:,}."},
    )
    negative_prompt = forms.CharField(
        # Not "negative prompt" in the label: "Prompt" must name one field only.
        label="Avoid",
        help_text="What the video should not show (a negative prompt).",
        required=False,
        max_length=NEGATIVE_PROMPT_MAX_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": "blurry, text, watermark"}),
    )
    # Not required: a form without the field (an older page, a script) asks for one take.
    takes = forms.IntegerField(
        label="Takes",
        initial=1,
        required=False,
        widget=forms.NumberInput(attrs={"min": 1}),
        error_messages={"invalid": "Takes is a whole number."},
    )
    max_image_bytes = MAX_IMAGE_BYTES

    def __init__(
        self,
        *args: Any,
        channel: Channel,
        stash: DraftStash | None = None,
        videos: list[Generation] | None = None,
        frame_source: Generation | None = None,
        check_inputs: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.channel = channel
        self.stash = stash
        self.frame_source = frame_source
        self.check_inputs = check_inputs and stash is not None
        self.images: list[PreparedImage] = []
        # Errors only the image checks find (the page cannot recompute them from the text).
        self.input_errors: dict[str, list[str]] = {}
        # Drafts this submission stashed or used, by field: kept on refusal, deleted on success.
        self.kept: dict[str, list[str]] = {}
        takes_field: forms.IntegerField = self.fields["takes"]  # type: ignore[assignment]
        takes_field.widget.attrs["max"] = channel.max_takes
        takes_field.validators.append(_takes_validator(channel.max_takes))
        takes_field.help_text = (
            f"1 to {channel.max_takes} versions of one request, reserved together; keep the best."
        )
        video_field = self.fields["frame_video"]
        video_field.widget.choices = [("", "Choose a finished video")] + [
            (str(v.pk), f"{v.prompt[:60]} · {v.size} · {v.total_seconds}s") for v in videos or []
        ]
        catalog = channel.catalog
        default = catalog.default
        sizes = sorted({s for m in catalog.models for s in m.sizes})
        seconds = sorted({s for m in catalog.models for s in m.seconds})
        model_field: forms.ChoiceField = self.fields["model"]  # type: ignore[assignment]
        size_field: forms.ChoiceField = self.fields["size"]  # type: ignore[assignment]
        seconds_field: forms.ChoiceField = self.fields["seconds"]  # type: ignore[assignment]
        model_field.choices = [(m.id, m.label) for m in catalog.models]
        # The sizes as named presets (shape, ratio, resolution), most common shapes first.
        size_field.choices = [(s, _size_label(s)) for s in sizes]
        seconds_field.choices = [(s, f"{s} seconds") for s in seconds]
        self.initial.setdefault("model", default.id)
        self.initial.setdefault("size", default.default_size)
        self.initial.setdefault("seconds", default.default_seconds)
        # The page's script narrows size and length to what the chosen model can make.
        model_field.widget.attrs["data-catalog"] = json.dumps(
            {m.id: m.form_data() for m in catalog.models}
        )
        # Estimates come from the price table (what the reservation will charge), not the
        # catalog's list prices: an admin may have changed a price since.
        model_field.widget.attrs["data-prices"] = json.dumps(price_table(channel=channel))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        spec = self.channel.catalog.get(cleaned.get("model", ""))
        size_ok = False
        if spec is not None and "size" in cleaned and "seconds" in cleaned:
            errors = spec.validate(size=cleaned["size"], seconds=cleaned["seconds"])
            for field, message in errors.items():
                self.add_error(field, message)
            size_ok = "size" not in errors
        if self.check_inputs:
            self._clean_images(cleaned, size=cleaned["size"] if size_ok else None)
        return cleaned

    # --- Images ------------------------------------------------------------------------------

    def _clean_images(self, cleaned: dict[str, Any], *, size: str | None) -> None:
        """Check every image (stashing each good upload at once, so it survives any later
        refusal), then fit them to the size."""
        start = cleaned.get("start") or "text"
        choice = cleaned.get("fit") or "crop"
        fit = Fit.CROP if choice == "crop" else Fit.PAD
        bars = "blur" if choice == "blur" else "black"
        wanted: list[tuple[str, str, int, CheckedImage, dict[str, Any]]] = []
        if start == "image":
            first = self._checked_upload("first_frame", cleaned)
            if first is not None:
                wanted.append(("first_frame", InputRole.FIRST_FRAME, 0, first, {}))
            elif "first_frame" not in self.errors:
                self._refuse("first_frame", "Choose the image the video starts from.")
        elif start == "frame":
            frame = self._frame(cleaned)
            if frame is not None:
                wanted.append(("frame_at", InputRole.FIRST_FRAME, 0, frame[0], frame[1]))
        last = self._checked_upload("last_frame", cleaned)
        if last is not None:
            wanted.append(("last_frame", InputRole.LAST_FRAME, 0, last, {}))
        for position, checked in enumerate(self._checked_references(cleaned)):
            wanted.append(("references", InputRole.REFERENCE, position, checked, {}))
        if size is None:
            return
        for field, role, position, checked, source in wanted:
            try:
                self.images.append(
                    image_fit(
                        checked,
                        role=role,
                        size=size,
                        fit=fit,
                        bars=bars,
                        position=position,
                        **source,
                    )
                )
            except ImageRefused as refusal:
                self._refuse(field, str(refusal))

    def _refuse(self, field: str, message: str) -> None:
        self.add_error(field, message)
        self.input_errors.setdefault(field, []).append(message)

    def _check_and_stash(self, field: str, upload: Any) -> CheckedImage | None:
        assert self.stash is not None
        if upload.size > MAX_IMAGE_BYTES:
            # Refused before reading it into memory.
            self._refuse(
                field,
                f"{upload.name} is {upload.size / (1024 * 1024):.1f} MB; the limit is "
                f"{MAX_IMAGE_BYTES // (1024 * 1024)} MB.",
            )
            return None
        try:
            checked = image_check(upload.read(), name=upload.name or "")
        except ImageRefused as refusal:
            self._refuse(field, f"{upload.name}: {refusal}" if upload.name else str(refusal))
            return None
        self.kept.setdefault(field, []).append(self.stash.put(checked))
        return checked

    def _checked_upload(
        self, field: str, cleaned: dict[str, Any]
    ) -> CheckedImage | None:
        """A new upload, else the draft kept from the member's last try."""
        assert self.stash is not None
        upload = cleaned.get(field)
        if upload:
            return self._check_and_stash(field, upload)
        token = cleaned.get(f"{field}_kept") or ""
        if token:
            kept = self.stash.get(token)
            if kept is None:
                self._refuse(
                    field, "The image kept from your last try has expired; choose it again."
                )
                return None
            self.kept.setdefault(field, []).append(token)
            return kept
        return None

    def _checked_references(self, cleaned: dict[str, Any]) -> list[CheckedImage]:
        assert self.stash is not None
        found: list[CheckedImage] = []
        uploads = cleaned.get("references") or []
        if uploads:
            for upload in uploads:
                checked = self._check_and_stash("references", upload)
                if checked is not None:
                    found.append(checked)
            return found
        for token in (cleaned.get("references_kept") or "").split():
            kept = self.stash.get(token)
            if kept is None:
                self._refuse(
                    "references", "A reference image kept from your last try has expired."
                )
                continue
            self.kept.setdefault("references", []).append(token)
            found.append(kept)
        return found

    def _frame(self, cleaned: dict[str, Any]) -> tuple[CheckedImage, dict[str, Any]] | None:
        at = cleaned.get("frame_at")
        if self.frame_source is None:
            self._refuse("frame_video", "Choose the video to take the frame from.")
            return None
        if at is None:
            if "frame_at" not in self.errors:
                self._refuse("frame_at", "Pick the time of the frame on the video's player.")
            return None
        at_ms = round(at * 1000)
        try:
            checked = frame_extract(self.frame_source, at_ms=at_ms)
        except ImageRefused as refusal:
            self._refuse("frame_at", str(refusal))
            return None
        return checked, {
            "source_generation_id": str(self.frame_source.pk),
            "source_time_ms": at_ms,
        }

    # --- What the service takes --------------------------------------------------------------

    def clean_takes(self) -> int:
        return self.cleaned_data.get("takes") or 1

    def options(self) -> dict[str, Any]:
        """The model options the member set; a field the model does not take is left to the
        service to refuse (the form hides it, so only a hand-made request sends one)."""
        cleaned = self.cleaned_data
        options: dict[str, Any] = {}
        spec = self.channel.catalog.get(cleaned.get("model", ""))
        audio = cleaned.get("audio")
        if audio == "off" or (audio == "on" and spec is not None and spec.audio_toggle):
            options["audio"] = audio == "on"
        if cleaned.get("seed") is not None:
            options["seed"] = cleaned["seed"]
        if cleaned.get("negative_prompt"):
            options["negative_prompt"] = cleaned["negative_prompt"]
        return options

    def kept_data(self) -> dict[str, str]:
        """The kept-draft fields as the page should show them after a refusal."""
        kept = {f"{field}_kept": " ".join(tokens) for field, tokens in self.kept.items()}
        names = ("first_frame_kept", "last_frame_kept", "references_kept")
        return {name: kept.get(name, "") for name in names}

    def kept_drafts(self) -> list[dict[str, Any]]:
        """What the page lists as kept images, with the field each belongs to."""
        if self.stash is None:
            return []
        shown = []
        data = self.data if self.is_bound else {}
        for field in ("first_frame", "last_frame", "references"):
            for token in (data.get(f"{field}_kept") or "").split():
                info = self.stash.info(token)
                if info is not None:
                    shown.append({"field": field, "token": token, **info})
        return shown

    @property
    def kept_by_field(self) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for draft in self.kept_drafts():
            grouped.setdefault(draft["field"], []).append(draft)
        return grouped


def _takes_validator(most: int) -> Any:
    def check(value: int) -> None:
        if not 1 <= value <= most:
            raise forms.ValidationError(f"Ask for 1 to {most} takes, not {value}.")

    return check


def _size_label(size: str) -> str:
    """A size as a named preset: "Landscape 16:9 · 720p (1280x720)"."""
    width, height = (int(part) for part in size.split("x"))
    ratio, resolution = size_parts(size)
    shape = "Landscape" if width > height else "Portrait" if height > width else "Square"
    if ratio not in {"16:9", "9:16", "1:1", "4:3", "3:4", "21:9"}:
        ratio = f"{width / height:.2f}:1" if width > height else f"1:{height / width:.2f}"
    return f"{shape} {ratio} · {resolution} ({size})"


class ChangeForm(forms.Form):
    """Edit, remix or extend a finished video: a new prompt, and for an extension the seconds
    to add. What the model allows (and the price) is checked by ``generation_submit``."""

    operation = forms.ChoiceField(
        choices=[(op.value, op.label) for op in CHANGING_OPERATIONS],
        error_messages={"invalid_choice": "Choose edit, remix or extend."},
    )
    prompt = forms.CharField(
        max_length=PROMPT_MAX_LENGTH,
        label="Prompt",
        error_messages={"required": "Say what should change: the prompt is empty."},
    )
    seconds = forms.IntegerField(
        required=False,
        min_value=1,
        label="Seconds to add",
        error_messages={"invalid": "Choose how many seconds to add."},
    )

    FIELDS = ("operation", "prompt", "seconds")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        extending = cleaned.get("operation") == Operation.EXTEND
        if extending and cleaned.get("seconds") is None and "seconds" not in self.errors:
            self.add_error("seconds", "Choose how many seconds to add.")
        return cleaned


class GalleryFilterForm(forms.Form):
    """The gallery's search and filters, read from the URL so a search can be shared."""

    default_renderer = PAGE_FORMS_RENDERER

    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Words from a prompt: boat dusk -rain"}
        ),
    )
    member = forms.ChoiceField(required=False, label="Member")
    model = forms.ChoiceField(required=False, label="Model")
    status = forms.ChoiceField(
        required=False, label="Status", choices=[("", "Any status"), *Status.choices]
    )
    first_day = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    last_day = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    review = forms.ChoiceField(
        required=False,
        label="Review",
        choices=[
            ("", "Any review"),
            (ReviewState.APPROVED, "Approved"),
            (ReviewState.CHANGES_REQUESTED, "Changes requested"),
            (ReviewState.NONE, "Not decided"),
        ],
    )
    favourite = forms.BooleanField(required=False, label="My favourites only")

    FIELDS = ("q", "member", "model", "status", "first_day", "last_day", "review", "favourite")

    def __init__(
        self,
        *args: Any,
        usernames: list[str],
        models: list[tuple[str, str]],
        user_id: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.user_id = user_id  # whose favourites "My favourites only" means
        member_field: forms.ChoiceField = self.fields["member"]  # type: ignore[assignment]
        model_field: forms.ChoiceField = self.fields["model"]  # type: ignore[assignment]
        member_field.choices = [("", "Anyone"), *((name, name) for name in usernames)]
        model_field.choices = [("", "Any model"), *models]

    def filters(self) -> GalleryFilters:
        """What the valid fields ask for; a field with an error narrows nothing."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return GalleryFilters(
            q=data.get("q") or "",
            member=data.get("member") or "",
            model=data.get("model") or "",
            status=data.get("status") or "",
            first_day=data.get("first_day"),
            last_day=data.get("last_day"),
            review=data.get("review") or "",
            favourites_of=self.user_id if data.get("favourite") else None,
        )


RETENTION_DAYS_MAX = 3650


class RetentionPolicyForm(forms.Form):
    """A project owner's retention choice: the organisation's default, or the project's own."""

    scope = forms.ChoiceField(
        choices=[("default", "Use the organisation's default"), ("own", "This project's own")],
        widget=forms.RadioSelect,
        label="Policy",
    )
    remove_after_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=RETENTION_DAYS_MAX,
        label="Remove files of videos older than (days)",
        help_text="Empty: keep them however old.",
        error_messages={"min_value": "Keep files at least one day."},
    )
    keep_only_picked = forms.BooleanField(
        required=False,
        label="Keep only picked takes",
        help_text="Once a take of a request is picked, the other takes' files are removed.",
    )
    keep_approved_and_favourites = forms.BooleanField(
        required=False,
        label="Always keep approved and starred videos",
    )
