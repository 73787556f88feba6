"""Defects seen around projects and members (issue 13, part 6)."""

from __future__ import annotations

import importlib

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from workspace.projects.models import Membership, Project, Role
from workspace.projects.services import project_create


def test_a_sole_owner_who_is_refused_leaving_stays_on_the_members_page(
    signed_in, project, owner
) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(owner)
    own = Membership.objects.get(project=project, user=owner)
    answer = client.post(
        reverse("projects:member_change", args=[project.pk, own.pk]), {"action": "remove"}
    )
    assert answer["Location"] == reverse("projects:members", args=[project.pk])
    page = client.get(answer["Location"]).content.decode()
    assert "must keep at least one owner" in page
    assert Membership.objects.filter(pk=own.pk).exists()


def test_a_member_who_leaves_goes_to_the_project_list(signed_in, project, teammate) -> None:  # type: ignore[no-untyped-def]
    own = Membership.objects.get(project=project, user=teammate)
    own.role = Role.OWNER
    own.save()
    client = signed_in(teammate)
    answer = client.post(
        reverse("projects:member_change", args=[project.pk, own.pk]), {"action": "remove"}
    )
    assert answer["Location"] == reverse("projects:list")


def test_two_projects_cannot_share_a_name(signed_in, project, outsider) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as refused:
        project_create(name="  launch FILM ", owner=outsider)
    assert "name" in refused.value.message_dict
    client = signed_in(outsider)
    answer = client.post(reverse("projects:list"), {"name": "Launch film", "description": ""})
    assert answer.status_code == 200
    assert "There is already a project called" in answer.content.decode()
    assert Project.objects.count() == 1


def test_the_database_refuses_a_duplicate_name_whatever_the_caller(project, outsider) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.create(name="LAUNCH FILM", created_by=outsider)


def test_later_duplicates_get_a_free_number_and_the_oldest_keeps_its_name() -> None:
    migration = importlib.import_module(
        "workspace.projects.migrations.0003_number_duplicate_project_names"
    )
    names = ["B-roll", "B-roll (2)", "b-ROLL", "Kite", "KITE", "kite"]
    assert migration.numbered(names) == [
        "B-roll", "B-roll (2)", "b-ROLL (3)", "Kite", "KITE (2)", "kite (3)",
    ]  # fmt: skip
    long = ["x" * 120, "X" * 120]
    assert migration.numbered(long) == ["x" * 120, "X" * 116 + " (2)"]


def test_the_migration_numbers_existing_duplicates(db, outsider) -> None:  # type: ignore[no-untyped-def]
    from django.apps import apps
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("drops and re-adds the constraint inside the test's transaction: PostgreSQL")
    migration = importlib.import_module(
        "workspace.projects.migrations.0003_number_duplicate_project_names"
    )
    Project.objects.create(name="B-roll", created_by=outsider)
    Project.objects.create(name="B-roll (2)", created_by=outsider)
    with transaction.atomic():
        # The state the migration starts from has no constraint; drop it here for the test.
        from django.db import connection

        with connection.schema_editor() as editor:
            editor.remove_constraint(Project, Project._meta.constraints[0])
        Project.objects.create(name="b-ROLL", created_by=outsider)
        migration.rename_duplicates(apps, None)
        names = sorted(Project.objects.values_list("name", flat=True))
        if connection.vendor == "postgresql":  # run the FK checks now, so the index can be built
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with connection.schema_editor() as editor:
            editor.add_constraint(Project, Project._meta.constraints[0])
    assert names == ["B-roll", "B-roll (2)", "b-ROLL (3)"]
