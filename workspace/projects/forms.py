from django import forms

from workspace.projects.models import DESCRIPTION_MAX_LENGTH, Role


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=120, label="Project name")
    description = forms.CharField(
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Description (optional)",
        help_text=f"Up to {DESCRIPTION_MAX_LENGTH:,} characters.",
    )


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150, label="Username")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EDITOR)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ProjectRenameForm(forms.Form):
    name = forms.CharField(max_length=120, label="New name")


class GenerationMoveForm(forms.Form):
    to_project = forms.TypedChoiceField(coerce=int, label="Move to project")

    def __init__(self, *args: object, choices: list[tuple[int, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["to_project"].choices = choices  # type: ignore[attr-defined]


class ProjectDeleteForm(forms.Form):
    confirm_name = forms.CharField(
        max_length=120,
        label="Type the project's name to confirm",
        help_text="The project disappears for every member at once.",
    )


class GenerationCopyForm(forms.Form):
    to_project = forms.TypedChoiceField(coerce=int, label="Copy to project")

    def __init__(self, *args: object, choices: list[tuple[int, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["to_project"].choices = choices  # type: ignore[attr-defined]
