from __future__ import annotations

import re

from django import forms

from workspace.reviews.models import COMMENT_MAX_LENGTH, TIMECODE_MAX_MS, Deciders, ReviewState

_TIMECODE = re.compile(r"^(?:(?:(\d{1,2}):)?(\d{1,2}):)?(\d{1,5}(?:[.,]\d{1,3})?)$")


def parse_timecode(value: str) -> int | None:
    """``75``, ``75.5``, ``1:15``, ``1:15.5`` or ``0:01:15`` as milliseconds; None if not one."""
    match = _TIMECODE.match(value.strip())
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    if minutes is not None and float(seconds.replace(",", ".")) >= 60:
        return None
    total = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds.replace(",", "."))
    return round(total * 1000)


def format_timecode(at_ms: int) -> str:
    seconds, ms = divmod(at_ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    tenths = f".{ms // 100}" if ms >= 100 else ""
    return f"{minutes}:{seconds:02d}{tenths}"


class CommentForm(forms.Form):
    text = forms.CharField(
        max_length=COMMENT_MAX_LENGTH,
        label="Comment",
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "What works, what to change… @name tells a member"}
        ),
        help_text=f"Up to {COMMENT_MAX_LENGTH:,} characters; @username notifies a project member.",
        error_messages={
            "required": "Write something: the comment is empty.",
            "max_length": (
                f"A comment can be at most {COMMENT_MAX_LENGTH:,} characters "
                "(it has %(show_value)d)."
            ),
        },
    )
    at = forms.CharField(
        required=False,
        max_length=12,
        label="At (optional)",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0:03", "size": 8}),
        help_text="A moment in the video, e.g. 0:03 or 3.5; empty for the whole video.",
    )

    def clean_at(self) -> int | None:
        value = self.cleaned_data.get("at", "").strip()
        if not value:
            return None
        at_ms = parse_timecode(value)
        if at_ms is None or at_ms > TIMECODE_MAX_MS:
            raise forms.ValidationError(
                "Write the time as seconds (3.5) or minutes:seconds (0:03.5)."
            )
        return at_ms


class DecisionForm(forms.Form):
    state = forms.ChoiceField(choices=ReviewState.choices)


class ReviewPolicyForm(forms.Form):
    deciders = forms.ChoiceField(
        choices=Deciders.choices,
        label="Who may approve or request changes",
        widget=forms.RadioSelect,
    )
