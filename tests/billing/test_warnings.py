"""Warnings at 80 % and 100 % of a budget: in the app and by email, once per period each."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.billing.conftest import budget, submit
from workspace.billing.models import Scope
from workspace.billing.periods import Period, period_bounds
from workspace.billing.services import reservation_create
from workspace.core.models import Notification
from workspace.generations.models import Generation
from workspace.generations.submission import generation_cancel


def titles(user) -> list[str]:  # type: ignore[no-untyped-def]
    return list(
        Notification.objects.filter(user=user).order_by("id").values_list("title", flat=True)
    )


def test_warnings_fire_once_at_80_and_once_at_100_percent(
    project, teammate, admin_user, channel, settings, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    teammate.email = "tariq@example.test"
    teammate.save()
    budget(cents=200)  # five $0.40 videos a month for every member

    def send() -> Generation:
        with django_capture_on_commit_callbacks(execute=True):
            return submit(project, teammate)

    for _ in range(3):
        send()
    assert not Notification.objects.exists() and not mail.outbox  # 60 %

    send()  # 80 %
    assert titles(teammate) == ["Your monthly budget is at 80 %"]
    assert titles(admin_user) == ["Default member monthly budget (tariq) is at 80 %"]
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@example.test", "tariq@example.test"]
    body = next(m for m in mail.outbox if m.to == ["tariq@example.test"]).body
    assert "$1.60 of $2.00 used ($0.00 spent, $1.60 reserved)" in body
    assert "It resets in" in body

    last = send()  # 100 %
    assert titles(teammate)[-1].startswith("Your monthly budget is at 100 %")
    assert len(mail.outbox) == 4

    # Going down and back up within the period does not warn again.
    with django_capture_on_commit_callbacks(execute=True):
        generation_cancel(generation=last, user=teammate)
    send()
    assert len(titles(teammate)) == 2 and len(mail.outbox) == 4
    note = Notification.objects.filter(user=teammate).first()
    assert note is not None and note.url == reverse("billing:usage")

    # A new period warns afresh.
    next_month = period_bounds(Period.MONTH, last.created_at).end
    assert next_month is not None
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(4):
            generation = Generation.objects.create(
                project=project, created_by=teammate, channel=channel, model="sora-2",
                prompt="next month", size="1280x720", seconds=4,
                created_at=next_month + timedelta(hours=i),
            )  # fmt: skip
            reservation_create(generation=generation)
    assert titles(teammate)[-1] == "Your monthly budget is at 80 %"
    assert len(titles(teammate)) == 3 and len(mail.outbox) == 6


def test_project_budget_warnings_reach_its_owners(
    project, owner, teammate, admin_user, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    budget(Scope.PROJECT, project=project, cents=40)
    with django_capture_on_commit_callbacks(execute=True):
        submit(project, teammate)
    for person in (owner, teammate, admin_user):
        assert titles(person) == [
            "Monthly budget of project “Launch film” is at 100 %: new generations that would "
            "go over it are refused"
        ]


def test_a_refused_submission_sends_nothing(
    project, teammate, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    budget(cents=10)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        submit(project, teammate)
    assert not Notification.objects.exists()
    assert not mail.outbox
