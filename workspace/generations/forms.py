from __future__ import annotations

import json
from typing import Any

from django import forms

from workspace.generations.models import PROMPT_MAX_LENGTH
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
