from django import forms

from workspace.sharing.models import LIFETIME_DAYS


class ShareLinkForm(forms.Form):
    lifetime_days = forms.TypedChoiceField(
        coerce=int,
        choices=[(d, f"{d} day{'s' if d > 1 else ''}") for d in LIFETIME_DAYS],
        initial=7,
        label="Link works for",
    )
    show_prompt = forms.BooleanField(
        required=False, label="Show each video's prompt on the shared page"
    )
