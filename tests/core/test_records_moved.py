"""Notifications and the audit log moved from billing to core with every row they hold.

Runs the real migrations backwards to the last state in which billing owned them, writes rows
there as an existing deployment would have them, and migrates forward again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import StateApps

from workspace.core.models import AuditEvent, Notification

# The last state with both in billing; going back to it unapplies core's adoption too.
BEFORE = [("billing", "0003_merge_20261202_0737")]

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _migrate(targets: list[tuple[str, str]]) -> StateApps:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    # The state of every app as migrated (not only the targets' ancestors: those would hold
    # the content types of before their 0002).
    others = [
        node for node in executor.loader.graph.leaf_nodes() if node[0] not in {"billing", "core"}
    ]
    return executor.loader.project_state([*others, *targets]).apps


def _latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.fixture
def billing_owned() -> Iterator[StateApps]:
    latest = _latest()
    old = _migrate(BEFORE)
    try:
        yield old
    finally:
        # Whatever the test found, the database goes back to the state every other test uses.
        _migrate(latest)


def test_rows_and_permissions_survive_the_move(billing_owned: StateApps) -> None:
    old = billing_owned
    user = old.get_model("auth", "User").objects.create(username="owner", is_staff=True)
    budget = old.get_model("billing", "Budget").objects.create(scope="organisation")
    note = old.get_model("billing", "Notification").objects.create(
        user=user,
        level="warning",
        title="Organisation budget is at 80 %",
        message="$8 of $10",
        url="/usage/",
        budget=budget,
    )
    event = old.get_model("billing", "AuditEvent").objects.create(
        actor=user,
        actor_name="owner",
        action="changed",
        target_type="budget",
        target_id=str(budget.pk),
        target_repr="Organisation monthly budget",
        changes={"limit_cents": [1000, 2000]},
    )
    content_type = old.get_model("contenttypes", "ContentType").objects.get_or_create(
        app_label="billing", model="auditevent"
    )[0]
    view = old.get_model("auth", "Permission").objects.get_or_create(
        content_type=content_type,
        codename="view_auditevent",
        defaults={"name": "Can view audit event"},
    )[0]
    old.get_model("auth", "Group").objects.create(name="auditors").permissions.add(view)

    new = _migrate(_latest())

    moved_note = new.get_model("core", "Notification").objects.get(pk=note.pk)
    assert (
        moved_note.user_id,
        moved_note.level,
        moved_note.title,
        moved_note.message,
        moved_note.url,
        moved_note.read_at,
    ) == (user.pk, "warning", "Organisation budget is at 80 %", "$8 of $10", "/usage/", None)
    moved_event = new.get_model("core", "AuditEvent").objects.get(pk=event.pk)
    assert (
        moved_event.actor_id,
        moved_event.action,
        moved_event.target_repr,
        moved_event.changes,
    ) == (user.pk, "changed", "Organisation monthly budget", {"limit_cents": [1000, 2000]})
    # The group's permission followed the model: same row, now core's.
    group = new.get_model("auth", "Group").objects.get(name="auditors")
    assert list(group.permissions.values_list("pk", "content_type__app_label")) == [
        (view.pk, "core")
    ]
    # New rows continue the old tables' ids instead of colliding with them.
    assert Notification.objects.create(user_id=user.pk, title="next").pk > note.pk
    assert AuditEvent.objects.filter(pk=event.pk).exists()
