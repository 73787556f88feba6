from __future__ import annotations

import json
from typing import Any

from django import forms

from workspace.billing.services import price_table
from workspace.generations.models import (
    CHANGING_OPERATIONS,
    PROMPT_MAX_LENGTH,
    Operation,
    Status,
)
from workspace.generations.selectors import GalleryFilters
from workspace.providers.models import Channel


class GenerationForm(forms.Form):
    """The generate form; its choices come from the channel's model catalog."""

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
    size = forms.ChoiceField(label="Size")
    seconds = forms.TypedChoiceField(coerce=int, label="Length")

    def __init__(self, *args: Any, channel: Channel, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channel = channel
        catalog = channel.catalog
        default = catalog.default
        sizes = sorted({s for m in catalog.models for s in m.sizes})
        seconds = sorted({s for m in catalog.models for s in m.seconds})
        model_field: forms.ChoiceField = self.fields["model"]  # type: ignore[assignment]
        size_field: forms.ChoiceField = self.fields["size"]  # type: ignore[assignment]
        seconds_field: forms.ChoiceField = self.fields["seconds"]  # type: ignore[assignment]
        model_field.choices = [(m.id, m.label) for m in catalog.models]
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
        if spec is not None and "size" in cleaned and "seconds" in cleaned:
            for field, message in spec.validate(
                size=cleaned["size"], seconds=cleaned["seconds"]
            ).items():
                self.add_error(field, message)
        return cleaned


def _size_label(size: str) -> str:
    width, height = (int(part) for part in size.split("x"))
    shape = "landscape" if width > height else "portrait"
    return f"{size} ({shape})"


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

    FIELDS = ("q", "member", "model", "status", "first_day", "last_day")

    def __init__(
        self, *args: Any, usernames: list[str], models: list[tuple[str, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
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
        )
