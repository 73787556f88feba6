"""The video page's versions panel and change forms, picking a take, and the gallery's one card
per stack (issue 12, parts 3-5), through the views as a member's browser would use them."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from workspace.billing.models import LedgerEntry
from workspace.generations.models import Generation, Operation
from workspace.generations.submission import generation_submit

from ..conftest import PASSWORD
from .versions_helpers import changeable, complete, finished, unchangeable  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client, teammate):  # type: ignore[no-untyped-def]
    assert client.login(username=teammate.username, password=PASSWORD)
    return client


def detail(project, generation) -> str:  # type: ignore[no-untyped-def]
    return reverse("generations:detail", args=[project.pk, generation.pk])


def change_url(project, generation) -> str:  # type: ignore[no-untyped-def]
    return reverse("generations:change", args=[project.pk, generation.pk])


def text(answer) -> str:  # type: ignore[no-untyped-def]
    assert answer.status_code == 200, answer.status_code
    return unescape(answer.content.decode())


def takes(project, user, n: int = 4) -> list[Generation]:  # type: ignore[no-untyped-def]
    first = generation_submit(
        project=project, user=user, model="sora-2", prompt="Kite", size="1280x720", seconds=4,
        takes=n,
    )  # fmt: skip
    return [
        complete(g)
        for g in Generation.objects.filter(take_set=first.take_set).order_by("created_at")
    ]


@pytest.mark.usefixtures("changeable")
def test_the_extend_form_shows_length_and_price_before_sending(
    editor, project, teammate, channel
) -> None:  # type: ignore[no-untyped-def]
    source = finished(project, teammate, channel, seconds=8)
    page = text(editor.get(detail(project, source)))
    assert "Change this video" in page
    assert "+4 s → 12 s in all · $0.40" in page and "+12 s → 20 s in all · $1.20" in page
    assert "+16 s" not in page  # past the model's 20 seconds
    assert re.search(r"New length: <strong><span data-extend-total>12</span> seconds", page)
    assert "New length: <strong>8 seconds</strong> (as this video) · Price: <strong>$0.80" in page


@pytest.mark.usefixtures("changeable")
def test_extending_queues_a_new_version_and_shows_it(editor, project, teammate, channel) -> None:  # type: ignore[no-untyped-def]
    source = finished(project, teammate, channel)
    answer = editor.post(
        change_url(project, source),
        {"operation": "extend", "prompt": "The boat reaches the sea", "seconds": "8"},
    )
    extension = Generation.objects.get(parent=source)
    assert answer.status_code == 302 and answer["Location"] == detail(project, extension)
    assert (extension.operation, extension.seconds, extension.total_seconds) == (
        Operation.EXTEND,
        8,
        12,
    )
    assert LedgerEntry.objects.get(generation_id=extension.pk).reserved_cents == 80
    page = text(editor.get(detail(project, extension)))
    assert "Version 2 of 2" in page
    assert re.search(r'href="[^"]+" rel="prev"', page)
    assert "An extension (+8 s, 12 s in all) of" in page
    assert "Queued: the extension is the newest version of this video." in page


@pytest.mark.usefixtures("changeable")
@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"operation": "extend", "prompt": "On", "seconds": "16"}, "seconds", "not 16"),
        ({"operation": "extend", "prompt": "", "seconds": "4"}, "prompt", "the prompt is empty"),
        ({"operation": "edit", "prompt": " "}, "prompt", "the prompt is empty"),
    ],
)
def test_a_refused_change_keeps_the_input_beside_the_error(
    editor, project, teammate, channel, data, field, message
) -> None:  # type: ignore[no-untyped-def]
    source = finished(project, teammate, channel, seconds=8)
    answer = editor.post(change_url(project, source), data, follow=True)
    assert answer.redirect_chain[0][1] == 302
    page = text(answer)
    op = data["operation"]
    error = re.search(rf'id="change-{op}-{field}-error">(.*?)</div>', page, re.S)
    assert error and message in error.group(1), page
    if data["prompt"].strip():
        assert f">{data['prompt']}</textarea>" in page  # what was typed is kept
    assert Generation.objects.count() == 1 and not LedgerEntry.objects.exists()
    # Shown once: a reload is a plain page.
    assert message not in text(editor.get(detail(project, source)))


@pytest.mark.usefixtures("changeable")
def test_an_expired_copy_is_explained_instead_of_the_forms(
    editor, project, teammate, channel
) -> None:  # type: ignore[no-untyped-def]
    gone = finished(project, teammate, channel, expires_in=-timedelta(hours=1))
    page = text(editor.get(detail(project, gone)))
    assert "can no longer be edited, remixed or extended" in page
    assert "download the video" in page and "image to video" in page
    assert 'id="change-extend"' not in page and 'id="change-edit"' not in page
    # A form posted from a page loaded before the copy expired is refused the same way.
    answer = editor.post(change_url(project, gone), {"operation": "edit", "prompt": "Dusk"})
    assert answer.status_code == 302
    assert "can only be made from that copy" in text(editor.get(answer["Location"]))
    assert Generation.objects.count() == 1


@pytest.mark.usefixtures("unchangeable")
def test_no_change_forms_where_the_catalog_has_none(editor, project, teammate, channel) -> None:  # type: ignore[no-untyped-def]
    page = text(editor.get(detail(project, finished(project, teammate, channel))))
    assert "Change this video" not in page


@pytest.mark.usefixtures("changeable")
def test_viewers_see_no_forms_and_cannot_change_or_pick(
    client, project, teammate, viewer, channel
) -> None:  # type: ignore[no-untyped-def]
    source = finished(project, teammate, channel)
    set_ = takes(project, teammate, 2)
    assert client.login(username=viewer.username, password=PASSWORD)
    page = text(client.get(detail(project, set_[0])))
    assert "Pick this take" not in page and "Takes of this request" in page
    assert "Change this video" not in text(client.get(detail(project, source)))
    answer = client.post(change_url(project, source), {"operation": "edit", "prompt": "Dusk"})
    assert answer.status_code == 403
    pick = reverse("generations:pick", args=[project.pk, set_[1].pk])
    assert client.post(pick).status_code == 403
    assert not Generation.objects.filter(is_pick=True).exists()
    assert not Generation.objects.filter(parent=source).exists()


@pytest.mark.usefixtures("changeable")
def test_a_non_member_gets_404_for_every_new_url(
    client, project, teammate, outsider, channel
) -> None:  # type: ignore[no-untyped-def]
    source = finished(project, teammate, channel)
    assert client.login(username=outsider.username, password=PASSWORD)
    assert (
        client.post(change_url(project, source), {"operation": "edit", "prompt": "x"}).status_code
        == 404
    )
    assert client.post(reverse("generations:pick", args=[project.pk, source.pk])).status_code == 404


def test_the_takes_side_by_side_and_picking_one(editor, project, teammate) -> None:  # type: ignore[no-untyped-def]
    set_ = takes(project, teammate, 4)
    page = text(editor.get(detail(project, set_[0])))
    assert "Takes of this request" in page and "none picked yet" in page
    assert page.count("Pick this take") == 4
    answer = editor.post(reverse("generations:pick", args=[project.pk, set_[2].pk]), follow=True)
    page = text(answer)
    assert "Picked: the gallery shows this take for its set." in page
    assert page.count("Pick this take") == 3 and "one picked" in page
    assert re.search(rf'data-take="{set_[2].pk}">.*?data-pick>', page, re.S)
    gallery = text(editor.get(reverse("projects:detail", args=[project.pk])))
    cards = re.findall(r'<li class="gen-card[^"]*" id="gen-([0-9a-f-]+)"', gallery)
    assert cards == [str(set_[2].pk)]
    assert "4 takes · the pick" in gallery


@pytest.mark.usefixtures("changeable")
def test_the_gallery_shows_a_stack_as_one_card_with_its_count(
    editor, project, teammate, channel
) -> None:  # type: ignore[no-untyped-def]
    alone = finished(project, teammate, channel, prompt="Alone")
    source = finished(project, teammate, channel, prompt="Source")
    extension = generation_submit(
        project=project, user=teammate, model="sora-2", prompt="Further", size="1280x720",
        seconds=4, operation=Operation.EXTEND, parent=source,
    )  # fmt: skip
    gallery = text(editor.get(reverse("projects:detail", args=[project.pk])))
    cards = re.findall(r'<li class="gen-card[^"]*" id="gen-([0-9a-f-]+)"', gallery)
    assert cards == [str(extension.pk), str(alone.pk)]
    assert "2 versions" in gallery
    # A search finds every version that matches, the head or not.
    found = text(editor.get(reverse("projects:detail", args=[project.pk]) + "?q=source"))
    assert re.findall(r'id="gen-([0-9a-f-]+)"', found)[:1] == [str(source.pk)]
    # The live endpoint sends the new head; the page drops the stack's old card for it.
    live = editor.get(
        reverse("generations:live", args=[project.pk]),
        {"since": f"{(timezone.now() - timedelta(minutes=5)).timestamp():.6f}"},
    ).json()
    ids = [card["id"] for card in live["cards"]]
    assert str(extension.pk) in ids and str(source.pk) not in ids
    card = next(c for c in live["cards"] if c["id"] == str(extension.pk))["html"]
    assert f'data-stack="{source.stack_id}"' in card


@pytest.mark.usefixtures("changeable")
@pytest.mark.parametrize("stacks", [3, 12])
def test_gallery_and_live_queries_do_not_grow_with_stacks(
    editor, project, teammate, channel, stacks: int
) -> None:  # type: ignore[no-untyped-def]
    def counts() -> tuple[int, int, int]:
        with CaptureQueriesContext(connection) as page:
            text(editor.get(reverse("projects:detail", args=[project.pk])))
        with CaptureQueriesContext(connection) as live:
            editor.get(reverse("generations:live", args=[project.pk]), {"since": "0"})
        with CaptureQueriesContext(connection) as video:
            text(editor.get(detail(project, top)))
        return len(page), len(live), len(video)

    def grow(n: int) -> Generation:
        last = None
        for i in range(n):
            source = finished(project, teammate, channel, prompt=f"Shot {i}")
            last = complete(generation_submit(
                project=project, user=teammate, model="sora-2", prompt="More", size="1280x720",
                seconds=4, operation=Operation.EXTEND, parent=source,
            ))  # fmt: skip
            takes(project, teammate, 2)
        assert last is not None
        return last

    top = grow(2)
    before = counts()
    top = complete(generation_submit(
        project=project, user=teammate, model="sora-2", prompt="Again", size="1280x720",
        seconds=4, operation=Operation.EXTEND, parent=top,
    ))  # fmt: skip
    grow(stacks)
    assert counts() == before


@pytest.mark.usefixtures("changeable")
def test_moving_a_version_gives_each_project_its_card_of_the_stack(
    client, project, owner, channel
) -> None:  # type: ignore[no-untyped-def]
    from workspace.projects.services import project_create

    elsewhere = project_create(name="B-roll", owner=owner)
    source = finished(project, owner, channel, prompt="Source")
    extension = complete(
        generation_submit(
            project=project, user=owner, model="sora-2", prompt="Further", size="1280x720",
            seconds=4, operation=Operation.EXTEND, parent=source,
        )
    )  # fmt: skip
    assert client.login(username=owner.username, password=PASSWORD)
    answer = client.post(
        reverse("projects:generation_move", args=[project.pk, extension.pk]),
        {"to_project": elsewhere.pk},
    )
    assert answer.status_code == 302

    def cards(where) -> list[str]:  # type: ignore[no-untyped-def]
        page = text(client.get(reverse("projects:detail", args=[where.pk])))
        return re.findall(r'<li class="gen-card[^"]*" id="gen-([0-9a-f-]+)"', page)

    assert cards(project) == [str(source.pk)]
    assert cards(elsewhere) == [str(extension.pk)]
    # The moved version's page says where it came from without showing it.
    page = text(client.get(detail(elsewhere, extension)))
    assert "of a video that is no longer in this project" in page
