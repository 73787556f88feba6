import pytest
from django.urls import reverse

from workspace.generations.models import Generation

from ..conftest import PASSWORD


@pytest.fixture
def editor_client(client, teammate):  # type: ignore[no-untyped-def]
    assert client.login(username=teammate.username, password=PASSWORD)
    return client


def form(**overrides):  # type: ignore[no-untyped-def]
    return {
        "prompt": "Waves at dawn",
        "model": "sora-2",
        "size": "1280x720",
        "seconds": "4",
        **overrides,
    }


def test_the_form_offers_only_catalog_choices(editor_client, project) -> None:  # type: ignore[no-untyped-def]
    page = editor_client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert 'value="sora-2-pro"' in page
    assert 'data-catalog="' in page
    assert "simulator" in page  # no key is set, and the page says so


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"prompt": ""}, "the prompt is empty"),
        ({"size": "1792x1024"}, "is not one of them"),
        ({"model": "sora-9"}, "Select a valid choice"),
        ({"seconds": "5"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_shown_beside_the_field_and_kept(
    editor_client, project, overrides, message
) -> None:  # type: ignore[no-untyped-def]
    answer = editor_client.post(
        reverse("generations:create", args=[project.pk]), form(**overrides), follow=True
    )
    # Redirected back to the project page (a reload then sends nothing again).
    assert answer.redirect_chain[0][1] == 302 and answer.status_code == 200
    body = answer.content.decode()
    assert message in body
    if overrides.get("prompt") != "":
        assert "Waves at dawn" in body  # nothing the member typed is lost
    assert not Generation.objects.exists()


def test_viewers_cannot_post_the_form(client, project, viewer) -> None:  # type: ignore[no-untyped-def]
    assert client.login(username=viewer.username, password=PASSWORD)
    page = client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert "you can watch and download" in page
    assert client.post(reverse("generations:create", args=[project.pk]), form()).status_code == 403


def test_a_valid_form_queues_a_generation(editor_client, project) -> None:  # type: ignore[no-untyped-def]
    answer = editor_client.post(reverse("generations:create", args=[project.pk]), form())
    assert answer.status_code == 302
    generation = Generation.objects.get()
    assert (generation.model, generation.size, generation.seconds) == ("sora-2", "1280x720", 4)
    gallery = editor_client.get(reverse("generations:gallery", args=[project.pk])).content.decode()
    assert "Waves at dawn" in gallery
    assert 'data-active="1"' in gallery


def test_missing_files_are_404(editor_client, project) -> None:  # type: ignore[no-untyped-def]
    editor_client.post(reverse("generations:create", args=[project.pk]), form())
    generation = Generation.objects.get()
    for variant in ("video", "thumbnail", "nonsense"):
        url = reverse("generations:file", args=[project.pk, generation.pk, variant])
        assert editor_client.get(url).status_code == 404
