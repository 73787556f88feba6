"""An edit and an extension sent from the video page's forms, run by the real workers against
the simulated OpenAI API: each becomes the stack's newest version, the gallery shows the stack
as one card, and the ledger's settled spend equals what the simulator billed."""

from __future__ import annotations

import re

import pytest
from django.db.models import Sum
from django.urls import reverse

from tests.billing.conftest import budget, submit
from workspace.billing.models import LedgerEntry
from workspace.generations.models import Generation, Operation, Status

from ..conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_edit_and_an_extension_from_the_page_end_to_end(
    client, project, teammate, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    budget(cents=100_000)
    source = submit(project, teammate, prompt="A paper boat", seconds=4)
    run_workers(lambda: Generation.objects.get(pk=source.pk).is_terminal)
    source.refresh_from_db()
    assert source.status == Status.COMPLETED and source.provider_expires_at
    assert client.login(username=teammate.username, password=PASSWORD)

    def change(generation: Generation, **data: str) -> Generation:
        answer = client.post(reverse("generations:change", args=[project.pk, generation.pk]), data)
        assert answer.status_code == 302, answer
        made = Generation.objects.get(parent=generation, operation=data["operation"])
        assert answer["Location"] == reverse("generations:detail", args=[project.pk, made.pk])
        run_workers(lambda: Generation.objects.get(pk=made.pk).is_terminal)
        made.refresh_from_db()
        assert made.status == Status.COMPLETED, (made.error_class, made.error_message)
        return made

    edit = change(source, operation="edit", prompt="Make it snow")
    page = client.get(reverse("generations:detail", args=[project.pk, edit.pk])).content.decode()
    # The edit's own page offers the extension at the price table's price, before sending.
    assert "+8 s → 12 s in all · $0.80" in page
    extension = change(edit, operation="extend", prompt="It sails on", seconds="8")

    assert (edit.operation, edit.seconds) == (Operation.EDIT, 4)
    assert (extension.seconds, extension.total_seconds) == (8, 12)
    assert {g.stack_id for g in (source, edit, extension)} == {source.stack_id}
    assert list(Generation.objects.filter(is_stack_head=True)) == [extension]
    log = {entry["id"]: entry for entry in simulator.creates()}
    assert log[edit.provider_job_id]["source_id"] == source.provider_job_id
    assert log[extension.provider_job_id]["billed_seconds"] == 8

    page = client.get(
        reverse("generations:detail", args=[project.pk, extension.pk])
    ).content.decode()
    assert "Version 3 of 3" in page and "An extension (+8 s, 12 s in all) of" in page
    gallery = client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert re.findall(r'<li class="gen-card[^"]*" id="gen-([0-9a-f-]+)"', gallery) == [
        str(extension.pk)
    ]
    assert "3 versions" in gallery

    settled = LedgerEntry.objects.filter(kind="settle").aggregate(total=Sum("spent_cents"))
    # 10 c/s: 4 s (the source) + 4 s (the edit keeps its length) + 8 s (the added segment).
    assert settled["total"] == 10 * (4 + 4 + 8) == simulator.counters()["billed_cents"]
