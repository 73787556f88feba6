"""Defects seen on the project page and a video's page (issue 13, part 6)."""

from __future__ import annotations

import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from workspace.billing.models import Budget, Scope
from workspace.billing.periods import Period
from workspace.generations.models import Generation, Status
from workspace.generations.submission import generation_submit
from workspace.providers.errors import ErrorClass

from ..conftest import PASSWORD

FORM = {"prompt": "Waves at dawn", "model": "sora-2", "size": "1280x720", "seconds": "4"}


@pytest.fixture
def editor(client, teammate):  # type: ignore[no-untyped-def]
    assert client.login(username=teammate.username, password=PASSWORD)
    return client


def _submit(project, user, prompt: str = "Waves at dawn") -> Generation:  # type: ignore[no-untyped-def]
    return generation_submit(
        project=project, user=user, model="sora-2", prompt=prompt, size="1280x720", seconds=4
    )


@pytest.mark.parametrize(
    "error_class", [ErrorClass.OVERLOADED, ErrorClass.NETWORK, ErrorClass.RATE_LIMITED]
)
def test_a_video_that_failed_after_its_last_retry_does_not_promise_another(
    editor, project, teammate, error_class
) -> None:  # type: ignore[no-untyped-def]
    generation = _submit(project, teammate)
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.FAILED, error_class=error_class, error_message="503 Service Unavailable"
    )
    for url in (
        reverse("projects:detail", args=[project.pk]),
        reverse("generations:detail", args=[project.pk, generation.pk]),
    ):
        page = editor.get(url).content.decode()
        assert "Try again later" in page
        assert "retry automatically" not in page
        assert "waiting its turn" not in page


def test_the_budget_strip_on_the_project_page_has_its_stylesheet(editor, project, teammate) -> None:  # type: ignore[no-untyped-def]
    Budget.objects.create(scope=Scope.MEMBER, user=teammate, period=Period.MONTH, limit_cents=500)
    page = editor.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert 'class="billing-budgets' in page
    head = page.split("</head>", 1)[0]
    assert "billing/billing.css" in head


def test_the_simulator_badge_says_what_is_true_about_cost(editor, project) -> None:  # type: ignore[no-untyped-def]
    page = editor.get(reverse("projects:detail", args=[project.pk])).content.decode()
    badge = re.search(r'<span class="badge sim"[^>]*>(.*?)</span>', page, re.S)
    assert badge is not None
    assert "no cost" not in page and "Nothing is charged" not in page
    assert "list price" in badge.group(1)


def test_a_refused_form_redirects_so_a_reload_does_not_resubmit(editor, project) -> None:  # type: ignore[no-untyped-def]
    detail = reverse("projects:detail", args=[project.pk])
    answer = editor.post(
        reverse("generations:create", args=[project.pk]), {**FORM, "size": "1792x1024"}
    )
    assert answer.status_code == 302
    assert answer["Location"].split("#")[0] == detail
    page = editor.get(detail).content.decode()
    assert "is not one of them" in page  # the error beside its field
    assert "Waves at dawn" in page  # and the member's input, kept
    # Shown once: the next visit is a fresh form, and nothing was queued.
    again = editor.get(detail).content.decode()
    assert "is not one of them" not in again and "Waves at dawn" not in again
    assert not Generation.objects.exists()


def test_a_budget_refusal_is_shown_after_the_redirect(editor, project, teammate) -> None:  # type: ignore[no-untyped-def]
    Budget.objects.create(scope=Scope.MEMBER, user=teammate, period=Period.MONTH, limit_cents=10)
    answer = editor.post(reverse("generations:create", args=[project.pk]), FORM, follow=True)
    assert answer.redirect_chain and answer.status_code == 200
    page = answer.content.decode()
    assert 'class="form-error"' in page and "budget" in page.lower()
    assert "Waves at dawn" in page
    assert not Generation.objects.exists()


def test_success_banners_do_not_pile_up(editor, project) -> None:  # type: ignore[no-untyped-def]
    detail = reverse("projects:detail", args=[project.pk])
    for _ in range(4):
        answer = editor.post(reverse("generations:create", args=[project.pk]), FORM)
        assert answer.status_code == 302
        # The live gallery's fetches in between must not keep the banner from being shown once.
        editor.get(reverse("generations:gallery", args=[project.pk]))
        page = editor.get(detail).content.decode()
        assert page.count('class="message success"') == 1
    assert editor.get(detail).content.decode().count('class="message') == 0


def test_the_download_name_says_what_the_video_shows(editor, project, teammate) -> None:  # type: ignore[no-untyped-def]
    generation = _submit(project, teammate, prompt="A paper boat drifting down a rainy street!")
    for variant, extension in (("video", "mp4"), ("thumbnail", "jpg")):
        name = f"generations/{project.pk}/{generation.pk}/{variant}.{extension}"
        setattr(generation, variant, default_storage.save(name, ContentFile(b"x" * 64)))
    generation.save()
    short = str(generation.pk)[:8]
    url = reverse("generations:file", args=[project.pk, generation.pk, "video"])
    disposition = editor.get(url + "?download=1")["Content-Disposition"]
    assert f'filename="a-paper-boat-drifting-down-a-rainy-street-{short}.mp4"' in disposition
    url = reverse("generations:file", args=[project.pk, generation.pk, "thumbnail"])
    disposition = editor.get(url + "?download=1")["Content-Disposition"]
    assert f"a-paper-boat-drifting-down-a-rainy-street-{short}-thumbnail.jpg" in disposition


def test_a_long_prompt_is_cut_at_a_word_in_the_download_name(project, teammate) -> None:  # type: ignore[no-untyped-def]
    from workspace.generations.views import download_filename

    generation = _submit(project, teammate, prompt="lighthouse " * 20)
    name = download_filename(generation=generation, variant="video", extension="mp4")
    stem = name.rsplit("-", 1)[0]
    assert len(stem) <= 48 and stem.endswith("lighthouse")
    only_symbols = _submit(project, teammate, prompt="🌊🌊🌊")
    assert download_filename(generation=only_symbols, variant="video", extension="mp4") == (
        f"reelhouse-{str(only_symbols.pk)[:8]}.mp4"
    )


def _unisolated_overrides(page: str) -> list[int]:
    """Positions of bidi overrides/embeddings not inside an FSI … PDI isolate."""
    bad = []
    depth = 0
    for index, char in enumerate(page):
        if char == "\u2068":
            depth += 1
        elif char == "\u2069":
            depth = max(0, depth - 1)
        elif char in "\u202a\u202b\u202d\u202e" and depth == 0:
            bad.append(index)
    return bad


def test_a_right_to_left_override_in_a_prompt_ends_with_the_prompt(
    editor, project, teammate
) -> None:  # type: ignore[no-untyped-def]
    generation = _submit(project, teammate, prompt="Boat \u202eat dusk")
    Generation.objects.filter(pk=generation.pk).update(status=Status.FAILED)
    for url in (
        reverse("projects:detail", args=[project.pk]),
        reverse("generations:gallery", args=[project.pk]),
        reverse("generations:detail", args=[project.pk, generation.pk]),
    ):
        page = editor.get(url).content.decode()
        assert "\u202e" in page
        assert _unisolated_overrides(page) == [], url
