"""The live endpoint every open project page polls (issue 13, part 1)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from workspace.generations.models import Generation, Status
from workspace.generations.selectors import LIVE_OVERLAP
from workspace.generations.submission import generation_submit

from ..conftest import PASSWORD


@pytest.fixture
def viewer_client(client, viewer):  # type: ignore[no-untyped-def]
    assert client.login(username=viewer.username, password=PASSWORD)
    return client


def _make(
    project, user, prompt: str, *, status: str = Status.COMPLETED, age: timedelta = timedelta(0)
):  # type: ignore[no-untyped-def]
    generation = generation_submit(
        project=project, user=user, model="sora-2", prompt=prompt, size="1280x720", seconds=4
    )
    at = timezone.now() - age
    Generation.objects.filter(pk=generation.pk).update(
        status=status, updated_at=at, created_at=at, progress=100 if status == "completed" else 0
    )
    return Generation.objects.get(pk=generation.pk)


def _live(client, project, since: str | None = None):  # type: ignore[no-untyped-def]
    url = reverse("generations:live", args=[project.pk])
    answer = client.get(url, {"since": since} if since is not None else {})
    assert answer.status_code == 200, answer.content
    assert answer["Cache-Control"] == "no-store"
    return answer.json()


def test_a_teammates_new_video_reaches_a_viewers_open_page(
    viewer_client, project, teammate
) -> None:  # type: ignore[no-untyped-def]
    old = _make(project, teammate, "An old finished take", age=timedelta(hours=2))
    first = _live(viewer_client, project)
    assert first["cards"] == []  # nothing changed, nothing in flight
    new = _make(project, teammate, "A kite over dunes", status=Status.QUEUED)
    second = _live(viewer_client, project, first["cursor"])
    ids = [card["id"] for card in second["cards"]]
    assert ids == [str(new.pk)]
    assert "A kite over dunes" in second["cards"][0]["html"]
    assert f'id="gen-{new.pk}"' in second["cards"][0]["html"]
    assert str(old.pk) not in ids
    assert float(second["cursor"]) >= float(first["cursor"])


def test_state_changes_are_sent_and_in_flight_cards_are_always_sent(
    viewer_client, project, teammate
) -> None:  # type: ignore[no-untyped-def]
    running = _make(
        project, teammate, "Rendering", status=Status.IN_PROGRESS, age=timedelta(hours=1)
    )
    done = _make(project, teammate, "Finished long ago", age=timedelta(hours=1))
    cursor = _live(viewer_client, project)["cursor"]
    # The running one comes every time, as its moving state only: its progress clock and queue
    # position move on their own, its markup does not.
    answer = _live(viewer_client, project, cursor)
    assert answer["cards"] == []
    assert [m["id"] for m in answer["moving"]] == [str(running.pk)]
    Generation.objects.filter(pk=done.pk).update(status=Status.FAILED, updated_at=timezone.now())
    answer = _live(viewer_client, project, cursor)
    assert [c["id"] for c in answer["cards"]] == [str(done.pk)]
    assert 'data-state="failed:' in answer["cards"][0]["html"]
    assert [m["id"] for m in answer["moving"]] == [str(running.pk)]


def test_an_unchanged_queued_card_gets_its_standing_without_markup(
    viewer_client, project, teammate
) -> None:  # type: ignore[no-untyped-def]
    first = _make(project, teammate, "First", status=Status.QUEUED, age=timedelta(minutes=5))
    second = _make(project, teammate, "Second", status=Status.QUEUED, age=timedelta(minutes=4))
    page = viewer_client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    cursor = _live(viewer_client, project)["cursor"]
    moving = {m["id"]: m for m in _live(viewer_client, project, cursor)["moving"]}
    assert moving[str(first.pk)]["position"] == 1
    assert moving[str(second.pk)]["position"] == 2
    headline, detail = moving[str(second.pk)]["standing"]
    # The same words the card's queue note was drawn with.
    assert f"<strong data-standing-headline>{headline}</strong>" in page
    assert headline == "#2 in the queue" and detail.startswith(", about ")
    assert "html" not in moving[str(first.pk)]


def test_a_card_asked_for_again_is_sent_whole(viewer_client, project, teammate) -> None:  # type: ignore[no-untyped-def]
    queued = _make(project, teammate, "Waiting", status=Status.QUEUED, age=timedelta(minutes=5))
    other = _make(project, teammate, "Other", status=Status.QUEUED, age=timedelta(minutes=6))
    url = reverse("generations:live", args=[project.pk])
    cursor = _live(viewer_client, project)["cursor"]
    answer = viewer_client.get(url, {"since": cursor, "render": f"{queued.pk}"}).json()
    assert [c["id"] for c in answer["cards"]] == [str(queued.pk)]
    assert "#2 in the queue" in answer["cards"][0]["html"]
    assert [m["id"] for m in answer["moving"]] == [str(other.pk)]
    for refused in ("not-an-id", ",".join(str(uuid.uuid4()) for _ in range(101))):
        assert viewer_client.get(url, {"since": cursor, "render": refused}).status_code == 400


def test_moving_state_costs_the_same_queries_for_2_or_25_cards(
    viewer_client, project, teammate, owner, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from workspace.generations import selectors

    # Both counted requests find the standings the request before them shared, however slow
    # the machine is between the two.
    monkeypatch.setattr(selectors, "LIVE_SHARE_SECONDS", 600)

    def queries(count: int) -> int:
        Generation.objects.all().delete()
        for index in range(count):
            author = teammate if index % 2 else owner
            status = Status.QUEUED if index % 2 else Status.IN_PROGRESS
            _make(project, author, f"Take {index}", status=status, age=timedelta(hours=1))
        cursor = _live(viewer_client, project)["cursor"]
        with CaptureQueriesContext(connection) as captured:
            answer = _live(viewer_client, project, cursor)
        assert len(answer["moving"]) == count and answer["cards"] == []
        return len(captured)

    assert queries(2) == queries(25)


def test_a_change_committed_just_before_the_cursor_is_not_missed(
    viewer_client, project, teammate
) -> None:  # type: ignore[no-untyped-def]
    cursor = _live(viewer_client, project)["cursor"]
    # Written with a timestamp a little before the cursor (a transaction that committed late).
    late = _make(project, teammate, "Late commit", age=LIVE_OVERLAP / 2)
    assert [c["id"] for c in _live(viewer_client, project, cursor)["cards"]] == [str(late.pk)]


@pytest.mark.parametrize("since", ["yesterday", "nan", "inf", "-5", "1e400"])
def test_a_cursor_that_is_not_one_is_refused(viewer_client, project, since: str) -> None:  # type: ignore[no-untyped-def]
    answer = viewer_client.get(reverse("generations:live", args=[project.pk]), {"since": since})
    assert answer.status_code == 400


def test_one_request_answers_for_every_card_in_a_constant_number_of_queries(
    viewer_client, project, teammate, owner
) -> None:  # type: ignore[no-untyped-def]
    def queries(count: int) -> int:
        Generation.objects.all().delete()
        for index in range(count):
            author = teammate if index % 2 else owner
            _make(project, author, f"Take {index}", status=Status.IN_PROGRESS)
        with CaptureQueriesContext(connection) as captured:
            cards = _live(viewer_client, project, "0")["cards"]
        assert len(cards) == count
        return len(captured)

    assert queries(2) == queries(25)


def test_the_project_page_starts_the_live_cursor_and_marks_times(
    viewer_client, project, teammate
) -> None:  # type: ignore[no-untyped-def]
    _make(project, teammate, "Waves")
    page = viewer_client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert f'data-live-url="{reverse("generations:live", args=[project.pk])}"' in page
    assert 'data-live-cursor="' in page and 'data-live-insert="1"' in page
    assert "data-relative>" in page


def test_a_cursor_from_the_far_future_answers_like_now(viewer_client, project, teammate) -> None:  # type: ignore[no-untyped-def]
    running = _make(project, teammate, "Rendering", status=Status.IN_PROGRESS)
    for since in ("1e300", "99999999999"):
        assert [c["id"] for c in _live(viewer_client, project, since)["cards"]] == [str(running.pk)]


def test_a_videos_own_page_follows_only_that_video(viewer_client, project, teammate) -> None:  # type: ignore[no-untyped-def]
    watched = _make(project, teammate, "Watched", status=Status.IN_PROGRESS, age=timedelta(days=2))
    _make(project, teammate, "Another", status=Status.IN_PROGRESS)
    url = reverse("generations:live", args=[project.pk])
    answer = viewer_client.get(url, {"since": "0", "generation": str(watched.pk)}).json()
    assert [c["id"] for c in answer["cards"]] == [str(watched.pk)]
    assert viewer_client.get(url, {"generation": "not-an-id"}).status_code == 400
    page = viewer_client.get(reverse("generations:detail", args=[project.pk, watched.pk]))
    assert f"{url}?generation={watched.pk}" in page.content.decode()


def test_card_links_are_the_urls_reverse_gives(project, teammate) -> None:  # type: ignore[no-untyped-def]
    from workspace.generations.templatetags.generation_tags import card_url

    video = _make(project, teammate, "Linked")
    for _ in range(2):  # the second time from the kept shape
        for name, args in (
            ("generations:detail", (project.pk, video.pk)),
            ("generations:file", (project.pk, video.pk, "video")),
            ("generations:file", (project.pk, video.pk, "thumbnail")),
            ("generations:cancel", (project.pk, video.pk)),
            ("reviews:favourite", (project.pk, video.pk)),
            ("generations:detail", (project.pk + 1, uuid.uuid4())),
            ("generations:detail", (project.pk, str(video.pk))),
        ):
            assert card_url(name, *args) == reverse(name, args=args)


def test_a_card_the_page_holds_is_not_sent_again_until_it_changes(
    viewer_client, project, teammate
) -> None:  # type: ignore[no-untyped-def]
    url = reverse("generations:live", args=[project.pk])
    cursor = _live(viewer_client, project)["cursor"]
    waiting = _make(project, teammate, "Waiting", status=Status.QUEUED)
    done = _make(project, teammate, "Done")
    first = _live(viewer_client, project, cursor)
    versions = {c["id"]: c["version"] for c in first["cards"]}
    assert set(versions) == {str(waiting.pk), str(done.pk)}
    have = ",".join(f"{id_}:{version}" for id_, version in versions.items())
    # Within the repeated past, at the versions the page holds: the queued card only moves,
    # the finished one is not sent at all.
    again = viewer_client.get(url, {"since": first["cursor"], "have": have}).json()
    assert again["cards"] == []
    assert [m["id"] for m in again["moving"]] == [str(waiting.pk)]
    Generation.objects.filter(pk=done.pk).update(status=Status.FAILED, updated_at=timezone.now())
    changed = viewer_client.get(url, {"since": first["cursor"], "have": have}).json()
    assert [c["id"] for c in changed["cards"]] == [str(done.pk)]
    for refused in ("nonsense", f"{waiting.pk}:soon"):
        assert viewer_client.get(url, {"since": cursor, "have": refused}).status_code == 400


def test_polls_in_one_window_share_one_read_and_each_gets_its_own_stars(
    client, project, owner, viewer, teammate, settings
) -> None:  # type: ignore[no-untyped-def]
    """A process reads a project's changed-or-in-flight rows once per window for every
    unfiltered poll: the second member's poll makes no rows query, and no viewer's star (or
    anything else per viewer) is carried to another through the shared rows."""
    from workspace.generations.selectors import live_rows_forget
    from workspace.reviews.services import favourite_toggle

    settings.REELHOUSE_LIVE_ROWS_SECONDS = 3600  # one window for the whole test
    live_rows_forget()
    card = _make(project, teammate, "A heron on a post", status=Status.QUEUED)
    favourite_toggle(generation=card, user=owner)
    since = f"{(timezone.now() - timedelta(seconds=2)).timestamp():.6f}"
    url = reverse("generations:live", args=[project.pk])
    assert client.login(username=owner.username, password=PASSWORD)
    with CaptureQueriesContext(connection) as first_queries:
        first = client.get(url, {"since": since}).json()
    assert client.login(username=viewer.username, password=PASSWORD)
    with CaptureQueriesContext(connection) as second_queries:
        second = client.get(url, {"since": since}).json()
    owners = next(c["html"] for c in first["cards"] if c["id"] == str(card.pk))
    viewers = next(c["html"] for c in second["cards"] if c["id"] == str(card.pk))
    assert 'aria-pressed="true"' in owners and 'aria-pressed="false"' in viewers
    assert ">Cancel<" not in viewers  # the viewer's own card, not the owner's
    rows_sql = [
        q["sql"] for q in second_queries.captured_queries if "generations_generation" in q["sql"]
    ]
    assert rows_sql == [], rows_sql  # session, user, membership and stars only
    assert len(second_queries.captured_queries) < len(first_queries.captured_queries)


def test_a_change_after_the_shared_read_is_in_the_next_answer(
    viewer_client, project, teammate, settings
) -> None:  # type: ignore[no-untyped-def]
    """The answer's cursor is the read's time, not the poll's: a row changed after the read
    (still within the window, so not in this answer) is sent by the first poll after it."""
    from workspace.generations.selectors import live_rows_forget

    settings.REELHOUSE_LIVE_ROWS_SECONDS = 3600
    live_rows_forget()
    card = _make(project, teammate, "A gull on a mast", age=timedelta(hours=1))
    first = _live(viewer_client, project)
    Generation.objects.filter(pk=card.pk).update(error_message="changed", updated_at=timezone.now())
    assert _live(viewer_client, project, first["cursor"])["cards"] == []  # the same read
    live_rows_forget()  # the window has passed
    later = _live(viewer_client, project, first["cursor"])
    assert [c["id"] for c in later["cards"]] == [str(card.pk)]


def test_a_process_keeps_shared_reads_only_of_projects_polled_lately(
    viewer_client, project, settings
) -> None:  # type: ignore[no-untyped-def]
    from workspace.generations import selectors

    settings.REELHOUSE_LIVE_ROWS_SECONDS = 3600
    selectors.live_rows_forget()
    gone = selectors._LiveRows(
        taken=timezone.now() - selectors.LIVE_SHARE_REACH - timedelta(seconds=1),
        bound=timezone.now(),
        rows=[],
        complete=True,
    )
    selectors._live_rows[project.pk + 1000] = gone  # a project nobody has polled for a while
    _live(viewer_client, project)
    assert set(selectors._live_rows) == {project.pk}
