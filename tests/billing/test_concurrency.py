"""Fifty simultaneous submissions at the edge of a budget never overspend by even one job."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.db.models import Sum

from tests.billing.conftest import budget, submit
from workspace.billing.models import BudgetCounter, LedgerEntry, Scope
from workspace.generations.models import Generation

SUBMISSIONS = 50


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason=(
        "needs PostgreSQL: real concurrent transactions, each on its own connection, are what "
        "this test is about (set DATABASE_URL=postgres://…)"
    ),
)
@pytest.mark.django_db(transaction=True)
def test_fifty_simultaneous_submissions_never_overspend(project, owner, teammate) -> None:  # type: ignore[no-untyped-def]
    # Each job costs $0.40. The organisation can afford 12 more, each member 7: whichever
    # submissions win the race, exactly 12 may pass and no budget may end above its limit.
    budget(Scope.ORGANISATION, cents=500)
    budget(cents=280)
    start = threading.Barrier(SUBMISSIONS)
    accepted: list[str] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one(user) -> None:  # type: ignore[no-untyped-def]
        try:
            start.wait(timeout=30)
            generation = submit(project, user)
            with lock:
                accepted.append(str(generation.pk))
        except ValidationError as error:
            with lock:
                refused.append(" ".join(error.messages))
        except BaseException as error:  # surfaced below: a deadlock or crash fails the test
            with lock:
                errors.append(error)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=one, args=(owner if i % 2 else teammate,))
        for i in range(SUBMISSIONS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(accepted) + len(refused) == SUBMISSIONS
    assert len(accepted) == 12
    assert all("would be exceeded" in message for message in refused), set(refused)
    assert Generation.objects.count() == 12

    reserved = LedgerEntry.objects.filter(kind="reserve").aggregate(total=Sum("reserved_cents"))
    assert reserved["total"] == 480
    org = BudgetCounter.objects.get(budget__scope=Scope.ORGANISATION)
    assert (org.spent_cents, org.reserved_cents) == (0, 480)
    for counter in BudgetCounter.objects.filter(budget__scope=Scope.MEMBER):
        assert counter.reserved_cents <= 280
        mine = LedgerEntry.objects.filter(user_id=counter.user_id).aggregate(
            total=Sum("reserved_cents")
        )
        assert counter.reserved_cents == mine["total"]
