"""Every text Reelhouse stores has a maximum, in the model and in every form that writes it.

The walkers fail the suite when a later field or form comes without a bound.
"""

from __future__ import annotations

import importlib
import inspect

import pytest
from django import forms
from django.apps import apps
from django.core.validators import MaxLengthValidator
from django.db import models
from django.urls import reverse

from tests.billing.conftest import submit
from workspace.billing.models import Budget, LedgerEntry
from workspace.generations.models import Generation
from workspace.projects.models import Project
from workspace.projects.services import project_create

OUR_APPS = ["accounts", "billing", "core", "generations", "projects", "providers"]


def _our_models() -> list[type[models.Model]]:
    return [model for label in OUR_APPS for model in apps.get_app_config(label).get_models()]


def test_every_text_field_of_ours_is_bounded_in_the_model() -> None:
    unbounded = []
    for model in _our_models():
        for field in model._meta.get_fields():
            if not isinstance(field, models.TextField):
                continue
            # A TextField's max_length bounds only its form field; full_clean needs the validator.
            limits = [v.limit_value for v in field.validators if isinstance(v, MaxLengthValidator)]
            if field.max_length is None or limits != [field.max_length]:
                unbounded.append(f"{model._meta.label}.{field.name}")
    assert unbounded == []
    assert _our_models()  # the walk saw the models


def _our_forms() -> list[type[forms.BaseForm]]:
    found = []
    for label in OUR_APPS:
        try:
            module = importlib.import_module(f"workspace.{label}.forms")
        except ModuleNotFoundError:
            continue
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, forms.BaseForm) and value.__module__ == module.__name__:
                found.append(value)
    return found


def test_every_text_field_of_our_forms_is_bounded() -> None:
    unbounded = [
        f"{form.__name__}.{name}"
        for form in _our_forms()
        for name, field in form.base_fields.items()
        if isinstance(field, forms.CharField) and field.max_length is None
    ]
    assert unbounded == []
    assert len(_our_forms()) >= 5


def test_a_description_over_2000_characters_is_refused_and_kept(signed_in, outsider) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(outsider)
    description = "d" * 2001
    answer = client.post(reverse("projects:list"), {"name": "B-roll", "description": description})
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "Ensure this value has at most 2000 characters (it has 2001)." in page
    assert description in page and "B-roll" in page  # the member's input is kept
    assert not Project.objects.filter(name="B-roll").exists()


def test_the_service_refuses_it_too(outsider) -> None:  # type: ignore[no-untyped-def]
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        project_create(name="B-roll", owner=outsider, description="d" * 2_000_000)
    assert "at most 2000 characters" in caught.value.message_dict["description"][0]
    assert not Project.objects.exists()


def test_a_prompt_over_the_limit_is_refused_and_kept(signed_in, teammate, project) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(teammate)
    prompt = "p" * 32001
    data = {"prompt": prompt, "model": "sora-2", "size": "1280x720", "seconds": "4"}
    # Redirected back to the project page (post/redirect/get), the input and errors kept.
    answer = client.post(reverse("generations:create", args=[project.pk]), data, follow=True)
    assert answer.status_code == 200 and answer.redirect_chain
    page = answer.content.decode()
    assert "Ensure this value has at most 32000 characters (it has 32001)." in page
    assert prompt in page
    assert not Generation.objects.exists()


@pytest.mark.parametrize(
    ("url", "field"),
    [
        (lambda project: reverse("generations:create", args=[project.pk]), "prompt"),
        (lambda project: reverse("projects:list"), "description"),
        (lambda project: reverse("projects:members", args=[project.pk]), "username"),
    ],
    ids=["prompt", "description", "member name"],
)
def test_a_nul_byte_is_a_form_error_not_a_500(signed_in, owner, project, url, field) -> None:  # type: ignore[no-untyped-def]
    # PostgreSQL refuses NUL in text; the form must say so before anything reaches it.
    client = signed_in(owner)
    client.raise_request_exception = False
    data = {"name": "B-roll", "description": "", "username": "tariq", "role": "viewer"}
    data |= {"prompt": "Waves", "model": "sora-2", "size": "1280x720", "seconds": "4"}
    data[field] = "before\x00after"
    answer = client.post(url(project), data, follow=True)
    assert answer.status_code in (200, 400)
    assert "Null characters are not allowed." in answer.content.decode()
    assert not Generation.objects.exists()
    assert Project.objects.count() == 1


def test_the_generate_service_refuses_a_nul_byte(project, teammate) -> None:  # type: ignore[no-untyped-def]
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        submit(project, teammate, prompt="a\x00b")
    assert "NUL" in caught.value.message_dict["prompt"][0]


def test_member_name_over_its_column_is_refused(signed_in, owner, project) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(owner)
    answer = client.post(
        reverse("projects:members", args=[project.pk]), {"username": "u" * 151, "role": "viewer"}
    )
    assert "Ensure this value has at most 150 characters (it has 151)." in answer.content.decode()


def test_an_adjustment_reason_over_1000_characters_is_refused(admin_client, teammate) -> None:  # type: ignore[no-untyped-def]
    reason = "r" * 1001
    answer = admin_client.post(
        reverse("admin:billing_ledgerentry_add"),
        {"user": teammate.pk, "amount": "-1.50", "seconds_delta": "0", "reason": reason},
    )
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "Ensure this value has at most 1000 characters (it has 1001)." in page
    assert reason in page
    assert not LedgerEntry.objects.filter(kind="adjustment").exists()


def test_a_budget_note_over_200_characters_is_refused(admin_client) -> None:  # type: ignore[no-untyped-def]
    answer = admin_client.post(
        reverse("admin:billing_budget_add"),
        {"scope": "organisation", "period": "month", "is_active": "on", "note": "n" * 201},
    )
    assert "Ensure this value has at most 200 characters (it has 201)." in answer.content.decode()
    assert not Budget.objects.exists()


def test_an_api_key_over_4096_characters_is_refused(admin_client, channel) -> None:  # type: ignore[no-untyped-def]
    # 4 KB: room for a Google service account's JSON key file (about 2.4 KB), no more.
    from tests.providers.test_channel_keys_safety import change

    answer = change(admin_client, channel, new_api_key="k" * 4097)
    assert "Ensure this value has at most 4096 characters (it has 4097)." in (
        answer.content.decode())
    assert channel.__class__.objects.get(pk=channel.pk).api_key_encrypted == ""


def test_code_written_texts_are_cut_to_their_bound(project, owner) -> None:  # type: ignore[no-untyped-def]
    from workspace.core.models import Notification
    from workspace.core.notify import admins_notify

    owner.is_staff = True
    owner.save()
    admins_notify(subject="s" * 500, message="m" * 10_000)
    note = Notification.objects.get(user=owner)
    note.full_clean()  # within every bound
    assert len(note.message) == 4000 and len(note.title) == 200

