"""Version stacks (issue 12, parts 3-5): heads, picks, the stack of a video, what a finished
video can become and at what price, and takes reserved together at the budget's edge."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections

from workspace.billing.models import Budget, Kind, LedgerEntry, Scope
from workspace.billing.periods import Period
from workspace.core.models import AuditEvent
from workspace.generations.models import Generation, Operation, Status
from workspace.generations.submission import generation_submit
from workspace.generations.versions import (
    change_offers,
    generation_pick,
    stack_for,
    stacks_attach,
)

from .versions_helpers import changeable, complete, finished, unchangeable  # noqa: F401

pytestmark = pytest.mark.django_db


def submit(project, user, **fields):  # type: ignore[no-untyped-def]
    values = {"model": "sora-2", "size": "1280x720", "seconds": 4, "prompt": "Waves", **fields}
    return generation_submit(project=project, user=user, **values)


def heads(stack_id) -> list[Generation]:  # type: ignore[no-untyped-def]
    return list(Generation.objects.filter(stack_id=stack_id, is_stack_head=True))


def takes_of(first: Generation) -> list[Generation]:
    return list(Generation.objects.filter(take_set=first.take_set).order_by("created_at", "id"))


@pytest.mark.usefixtures("changeable")
def test_an_extension_becomes_the_head_and_the_stack_reads_both_ways(
    project, teammate, channel
) -> None:  # type: ignore[no-untyped-def]
    source = finished(project, teammate, channel)
    extension = submit(
        project, teammate, operation=Operation.EXTEND, parent=source, seconds=8, prompt="On"
    )
    assert (extension.stack_id, extension.source_seconds, extension.total_seconds) == (
        source.stack_id,
        4,
        12,
    )
    assert heads(source.stack_id) == [extension]
    complete(extension)
    edit = submit(project, teammate, operation=Operation.EDIT, parent=extension, prompt="Dusk")
    assert heads(source.stack_id) == [edit]
    assert edit.seconds == 12  # an edit keeps the length of what it changes

    middle = stack_for(extension)
    assert [g.pk for g in middle.members] == [source.pk, extension.pk, edit.pk]
    assert (middle.position, middle.previous, middle.next) == (2, source, edit)
    assert middle.parent == source and middle.derivatives == [edit]
    assert stack_for(edit).ancestors == [extension, source]
    assert stack_for(source).previous is None and stack_for(edit).next is None


@pytest.mark.usefixtures("changeable")
def test_the_stack_is_read_in_one_query_however_deep(
    project, teammate, channel, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    top = finished(project, teammate, channel)
    for _ in range(3):
        top = complete(
            submit(project, teammate, operation=Operation.EXTEND, parent=top, prompt="More")
        )
    with django_assert_num_queries(1):
        stack = stack_for(top)
        assert len(stack.ancestors) == 3 and stack.members[0].created_by.username


def test_takes_share_a_set_the_first_is_the_head_until_one_is_picked(project, teammate) -> None:  # type: ignore[no-untyped-def]
    first = submit(project, teammate, takes=4)
    takes = takes_of(first)
    assert len(takes) == 4 and {t.take_count for t in takes} == {4}
    assert heads(first.stack_id) == [first]
    stacks_attach(takes[:1])
    assert (takes[0].stack_size, takes[0].stack_is_takes) == (4, True)  # type: ignore[attr-defined]

    for take in takes:
        complete(take)
    third = Generation.objects.get(pk=takes[2].pk)
    generation_pick(generation=third, user=teammate)
    assert heads(first.stack_id) == [third]
    assert [t.pk for t in Generation.objects.filter(take_set=first.take_set, is_pick=True)] == [
        third.pk
    ]
    event = AuditEvent.objects.get(target_id=str(third.pk))
    assert event.changes["is_pick"] == [False, True] and event.actor_name == teammate.username

    second = Generation.objects.get(pk=takes[1].pk)
    generation_pick(generation=second, user=teammate)
    picks = list(Generation.objects.filter(take_set=first.take_set, is_pick=True))
    assert picks == [second] and heads(first.stack_id) == [second]
    assert AuditEvent.objects.get(target_id=str(second.pk)).changes["unpicked"] == [str(third.pk)]
    generation_pick(generation=second, user=teammate)  # again: nothing changes, nothing logged
    assert AuditEvent.objects.filter(target_id=str(second.pk)).count() == 1


@pytest.mark.usefixtures("changeable")
def test_picking_in_an_older_set_leaves_a_newer_version_the_head(project, teammate) -> None:  # type: ignore[no-untyped-def]
    first = submit(project, teammate, takes=2)
    takes = [complete(t) for t in takes_of(first)]
    extension = submit(project, teammate, operation=Operation.EXTEND, parent=takes[1], prompt="On")
    assert extension.stack_id == first.stack_id
    generation_pick(generation=takes[1], user=teammate)
    assert heads(first.stack_id) == [extension]
    assert Generation.objects.get(pk=takes[1].pk).is_pick


def test_who_and_what_can_be_picked(project, teammate, viewer, outsider, channel) -> None:  # type: ignore[no-untyped-def]
    first = submit(project, teammate, takes=2)
    with pytest.raises(ValidationError, match="not ready"):
        generation_pick(generation=first, user=teammate)  # still queued
    complete(first)
    with pytest.raises(PermissionDenied):
        generation_pick(generation=first, user=viewer)
    with pytest.raises(Generation.DoesNotExist):
        generation_pick(generation=first, user=outsider)
    single = finished(project, teammate, channel)
    with pytest.raises(ValidationError, match="not one of several takes"):
        generation_pick(generation=single, user=teammate)
    assert not Generation.objects.filter(is_pick=True).exists()


@pytest.mark.usefixtures("changeable")
def test_offers_follow_the_catalog_and_price_table(project, teammate, channel) -> None:  # type: ignore[no-untyped-def]
    source = finished(project, teammate, channel, seconds=8)
    offers = change_offers(source)
    assert offers.edit and offers.remix and not offers.expired
    assert (offers.change_seconds, offers.change_cents) == (8, 80)  # 10 c/s for 8 s
    # 20 s at most in all: 8 + 12 fits, nothing longer is offered.
    assert [(c.added, c.total, c.cents) for c in offers.extend] == [
        (4, 12, 40),
        (8, 16, 80),
        (12, 20, 120),
    ]
    longest = finished(project, teammate, channel, seconds=12)
    longest.source_seconds = 8
    assert change_offers(longest).extend == []
    assert "20 seconds" in change_offers(longest).extend_refusal


@pytest.mark.usefixtures("changeable")
def test_offers_say_when_the_provider_copy_is_gone(project, teammate, channel) -> None:  # type: ignore[no-untyped-def]
    gone = finished(project, teammate, channel, expires_in=-timedelta(minutes=1))
    offers = change_offers(gone)
    assert offers.expired and not offers.any
    with pytest.raises(ValidationError, match="download the video"):
        submit(project, teammate, operation=Operation.EDIT, parent=gone, prompt="Dusk")
    assert Generation.objects.count() == 1


@pytest.mark.usefixtures("unchangeable")
def test_a_model_that_cannot_change_videos_offers_nothing(project, teammate, channel) -> None:  # type: ignore[no-untyped-def]
    offers = change_offers(finished(project, teammate, channel))
    assert not offers.offered and not offers.any


# ---- Takes in the ledger -----------------------------------------------------------------------


def test_at_the_budget_edge_four_takes_are_refused_whole_and_one_passes(project, teammate) -> None:  # type: ignore[no-untyped-def]
    # 40 cents a take (4 s at 10 c/s): one fits in 100, four (160) do not.
    Budget.objects.create(scope=Scope.MEMBER, user=teammate, period=Period.MONTH, limit_cents=100)
    with pytest.raises(ValidationError, match="budget"):
        submit(project, teammate, takes=4)
    assert not Generation.objects.exists()
    assert not LedgerEntry.objects.exists()
    one = submit(project, teammate, takes=1)
    assert list(LedgerEntry.objects.values_list("generation_id", "kind", "reserved_cents")) == [
        (one.pk, Kind.RESERVE, 40)
    ]


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: requests at once, each on its own connection",
)
@pytest.mark.django_db(transaction=True)
def test_take_requests_at_once_never_overspend(project, teammate) -> None:  # type: ignore[no-untyped-def]
    limit = 200  # room for five takes of 40 cents
    Budget.objects.create(scope=Scope.MEMBER, user=teammate, period=Period.MONTH, limit_cents=limit)
    requests = 6  # of two takes each: 480 cents asked for
    start = threading.Barrier(requests)
    outcomes: list[str] = []
    lock = threading.Lock()

    def ask() -> None:
        try:
            start.wait(timeout=30)
            submit(project, teammate, takes=2)
            result = "queued"
        except ValidationError as error:
            result = "refused" if "budget" in str(error) else f"other: {error}"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=ask) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["queued"] * 2 + ["refused"] * 4, outcomes
    reserved = sum(LedgerEntry.objects.values_list("reserved_cents", flat=True))
    assert reserved == 160 <= limit
    # Whole requests only: every take set that exists has both of its takes.
    sets = Generation.objects.values_list("take_set", flat=True)
    assert sorted(list(sets).count(s) for s in set(sets)) == [2, 2]
    assert Generation.objects.filter(status=Status.QUEUED).count() == 4
