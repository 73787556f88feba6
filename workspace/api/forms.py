from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib.auth.models import User

from workspace.api.models import TOKEN_NAME_MAX_LENGTH, WEBHOOK_URL_MAX_LENGTH
from workspace.projects.models import Project

EXPIRY_CHOICES = [
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
    ("7", "In 7 days"),
    ("never", "Never"),
]
ACCESS_CHOICES = [("read", "Read-only: list, watch and download"), ("write", "Read-write")]


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=TOKEN_NAME_MAX_LENGTH,
        help_text="What uses it, e.g. “nightly render script on the studio Mac”.",
    )
    project = forms.ModelChoiceField(
        queryset=Project.objects.none(),
        required=False,
        empty_label="All my projects",
        help_text=(
            "A token for all your projects names the project of each new video in the "
            "OpenAI-Project header."
        ),
    )
    access = forms.ChoiceField(choices=ACCESS_CHOICES, initial="write")
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="90", label="Expires")

    def __init__(self, *args: Any, owner: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["project"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Project.objects.filter(memberships__user=owner).order_by("name")

    def expires_after(self) -> timedelta | None:
        value = self.cleaned_data["expires"]
        return None if value == "never" else timedelta(days=int(value))


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="Webhook URL",
        required=False,
        max_length=WEBHOOK_URL_MAX_LENGTH,
        help_text=(
            "Reelhouse POSTs video.completed and video.failed here for the videos this token "
            "creates, signed the Standard Webhooks way. Empty: no webhooks."
        ),
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/reelhouse-hook"}),
    )
    new_secret = forms.BooleanField(
        label="Make a new signing secret (the current one stops working)", required=False
    )

    def __init__(self, *args: Any, token_id: int, **kwargs: Any) -> None:
        # Each token's form on the page needs its own field ids.
        kwargs["prefix"] = f"hook{token_id}"
        super().__init__(*args, **kwargs)
