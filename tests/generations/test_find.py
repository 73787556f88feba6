"""Finding any video: keyset pages with real URLs, full-text search and filters (issue 13, part 2)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from workspace.generations.models import Generation, Status
from workspace.generations.selectors import PAGE_SIZE, prompt_search

from ..conftest import PASSWORD


@pytest.fixture
def member(client, viewer):  # type: ignore[no-untyped-def]
    assert client.login(username=viewer.username, password=PASSWORD)
    return client


def _bulk(
    project, user, count: int, *, prompt: str = "Take {i}", start=None, **fields
) -> list[Generation]:  # type: ignore[no-untyped-def]
    start = start or timezone.now() - timedelta(days=1)
    rows = [
        Generation(
            project=project, created_by=user, channel_id=project_channel(project),
            model=fields.get("model", "sora-2"), prompt=prompt.format(i=i), size="1280x720",
            seconds=4, status=fields.get("status", Status.COMPLETED),
            progress=100, created_at=start + timedelta(seconds=i),
        )
        for i in range(count)
    ]  # fmt: skip
    return Generation.objects.bulk_create(rows)


def project_channel(project) -> int:  # type: ignore[no-untyped-def]
    from workspace.providers.models import Channel

    return Channel.objects.get(slug="openai").pk


def _ids(page: str) -> list[str]:
    return re.findall(r'<li class="gen-card[^"]*" id="gen-([0-9a-f-]+)"', page)


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a class="button" href="([^"]+)" rel="{rel}">', page)
    return unescape(found.group(1)) if found else None


def _get(client, project, query: str = "") -> str:  # type: ignore[no-untyped-def]
    answer = client.get(reverse("projects:detail", args=[project.pk]) + query)
    assert answer.status_code == 200
    return answer.content.decode()


def test_every_video_is_reachable_page_by_page_and_back(member, project, teammate) -> None:  # type: ignore[no-untyped-def]
    made = _bulk(project, teammate, 2 * PAGE_SIZE + 5)
    newest_first = [str(g.pk) for g in sorted(made, key=lambda g: g.created_at, reverse=True)]
    seen: list[str] = []
    pages: list[str] = []
    query = ""
    while True:
        page = _get(member, project, query)
        pages.append(query)
        seen += _ids(page)
        older = _link(page, "next")
        if older is None:
            break
        assert "before=" in older
        query = older
    assert seen == newest_first  # each once, in order, none skipped
    assert len(pages) == 3
    # From the last page, "Newer" leads back through exactly the same pages.
    page = _get(member, project, pages[-1])
    back = _get(member, project, _link(page, "prev") or "")
    assert _ids(back) == newest_first[PAGE_SIZE : 2 * PAGE_SIZE]
    first = _get(member, project, _link(back, "prev") or "")
    assert _ids(first) == newest_first[:PAGE_SIZE]
    assert _link(first, "prev") is None


def test_a_new_video_between_two_pages_neither_repeats_nor_hides_one(
    member, project, teammate
) -> None:  # type: ignore[no-untyped-def]
    made = _bulk(project, teammate, PAGE_SIZE + 3)
    first = _get(member, project)
    _bulk(project, teammate, 1, prompt="Arrived meanwhile", start=timezone.now())
    second = _get(member, project, _link(first, "next") or "")
    assert set(_ids(first)).isdisjoint(_ids(second))
    assert len(_ids(first)) + len(_ids(second)) == len(made)


@pytest.mark.parametrize("extra", [5, 3 * PAGE_SIZE])
def test_the_page_runs_the_same_queries_however_many_videos(
    member, project, teammate, owner, extra: int
) -> None:  # type: ignore[no-untyped-def]
    def count(query: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            _get(member, project, query)
        return len(captured)

    _bulk(project, owner, 4, model="sora-2-pro")
    small = count("?q=take")
    _bulk(project, teammate, extra, prompt="Take {i} of the kite")
    assert count("?q=take") == small
    assert count("?member=" + teammate.username + "&status=completed") == small


def test_full_text_search_stems_words_and_takes_web_search_syntax(
    member, project, teammate
) -> None:  # type: ignore[no-untyped-def]
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL full-text search; the fallback is tested below")
    boat = _bulk(project, teammate, 1, prompt="A paper boat drifting down a rainy street at dusk")[
        0
    ]
    boats = _bulk(project, teammate, 1, prompt="Boats racing at dusk on a calm lake")[0]
    _bulk(project, teammate, 1, prompt="A lighthouse in fog")
    assert set(_ids(_get(member, project, "?q=boats+dusk"))) == {str(boat.pk), str(boats.pk)}
    assert _ids(_get(member, project, "?q=boat+-rainy")) == [str(boats.pk)]
    assert _ids(_get(member, project, '?q="paper+boat"')) == [str(boat.pk)]
    page = _get(member, project, "?q=submarine")
    assert _ids(page) == [] and "No videos match." in page


def test_the_search_fallback_matches_every_word_anywhere(project, teammate) -> None:  # type: ignore[no-untyped-def]
    boat, _ = _bulk(project, teammate, 2, prompt="Paper boat {i}")
    Generation.objects.filter(pk=boat.pk).update(prompt="A Paper boat at DUSK")
    found = prompt_search(Generation.objects.all(), "boat dusk", vendor="sqlite")
    assert list(found) == [boat]
    assert prompt_search(Generation.objects.all(), "   ", vendor="sqlite").count() == 2


def test_filters_by_member_model_status_and_day_live_in_the_url(
    member, project, teammate, owner
) -> None:  # type: ignore[no-untyped-def]
    today = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    mine = _bulk(project, teammate, 1, start=today)[0]
    pro = _bulk(project, owner, 1, model="sora-2-pro", start=today)[0]
    failed = _bulk(project, owner, 1, status=Status.FAILED, start=today)[0]
    old = _bulk(project, owner, 1, start=today - timedelta(days=40))[0]
    assert _ids(_get(member, project, f"?member={teammate.username}")) == [str(mine.pk)]
    assert _ids(_get(member, project, "?model=sora-2-pro")) == [str(pro.pk)]
    assert _ids(_get(member, project, "?status=failed")) == [str(failed.pk)]
    day = today.date().isoformat()
    assert str(old.pk) not in _ids(_get(member, project, f"?first_day={day}"))
    assert _ids(_get(member, project, f"?last_day={(today - timedelta(days=30)).date()}")) == [
        str(old.pk)
    ]
    # A filter that is not valid narrows nothing and says why.
    page = _get(member, project, "?status=exploded&member=ghost")
    assert len(_ids(page)) == 4 and "Select a valid choice" in page


def test_links_and_live_updates_keep_the_search(member, project, teammate) -> None:  # type: ignore[no-untyped-def]
    _bulk(project, teammate, PAGE_SIZE + 2, prompt="kite number {i}")
    page = _get(member, project, f"?q=kite&member={teammate.username}")
    older = _link(page, "next") or ""
    assert "q=kite" in older and f"member={teammate.username}" in older
    live = re.search(r'data-live-url="([^"]+)"', page)
    assert live and "q=kite" in unescape(live.group(1))
    assert 'data-live-insert="1"' in page
    assert 'data-live-insert="0"' in _get(member, project, older)


def test_the_live_endpoint_narrows_like_the_page(member, project, teammate, owner) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    kite = _bulk(project, teammate, 1, prompt="A kite", status=Status.QUEUED, start=now)[0]
    _bulk(project, owner, 1, prompt="A boat", status=Status.QUEUED, start=now)
    url = reverse("generations:live", args=[project.pk])
    cards = member.get(url, {"since": "0", "member": teammate.username}).json()["cards"]
    assert [c["id"] for c in cards] == [str(kite.pk)]


def test_a_cursor_that_is_not_one_shows_the_first_page(member, project, teammate) -> None:  # type: ignore[no-untyped-def]
    _bulk(project, teammate, 3)
    for query in ("?before=nonsense", "?after=12_zz", "?before=99999999999999999999999_00"):
        assert len(_ids(_get(member, project, query))) == 3


def test_the_search_uses_the_full_text_index(project, teammate) -> None:  # type: ignore[no-untyped-def]
    if connection.vendor != "postgresql":
        pytest.skip("the index exists on PostgreSQL only")
    _bulk(project, teammate, 300, prompt="Take {i} of a boat")
    _bulk(project, teammate, 2, prompt="Take {i} of a kite")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE generations_generation")
        cursor.execute("SET LOCAL enable_seqscan = off")
    found = prompt_search(Generation.objects.filter(project=project), "kite", vendor="postgresql")
    plan = found.only("id").explain()
    assert "generation_prompt_search" in plan, plan
