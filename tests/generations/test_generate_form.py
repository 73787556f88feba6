"""The generate form with images, frames, options and takes: end to end through the views."""

from __future__ import annotations

import html
import io
import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from workspace.generations import views
from workspace.generations.drafts import SESSION_KEY
from workspace.generations.models import Generation, GenerationInput, InputRole, Status
from workspace.generations.sending import video_request_for
from workspace.generations.submission import generation_submit
from workspace.projects.services import project_create

from ..conftest import PASSWORD


@pytest.fixture
def editor(client, teammate):  # type: ignore[no-untyped-def]
    assert client.login(username=teammate.username, password=PASSWORD)
    return client


def png(width: int = 800, height: int = 600, name: str = "still.png") -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (20, 120, 220)).save(out, format="PNG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/png")


def form(**overrides):  # type: ignore[no-untyped-def]
    return {
        "prompt": "The boat sails off",
        "model": "sora-2",
        "size": "1280x720",
        "seconds": "4",
        **overrides,
    }


def post(client, project, data):  # type: ignore[no-untyped-def]
    return client.post(reverse("generations:create", args=[project.pk]), data, follow=True)


def finished_video(project, user, size: str = "1280x720") -> Generation:  # type: ignore[no-untyped-def]
    from workspace.simulator.media import media_cache

    generation = generation_submit(
        project=project, user=user, model="sora-2", prompt="Harbour at dusk", size=size, seconds=4
    )
    generation.video = default_storage.save(
        f"generations/{project.pk}/{generation.pk}/video.mp4",
        ContentFile(media_cache().get("video", size, 4)),
    )
    generation.status = Status.COMPLETED
    generation.save()
    return generation


def test_an_uploaded_image_starts_the_video_fitted_to_its_size(editor, project) -> None:  # type: ignore[no-untyped-def]
    answer = post(editor, project, form(start="image", first_frame=png(), fit="crop"))
    assert "Queued." in answer.content.decode()
    generation = Generation.objects.get()
    item = generation.inputs.get()
    assert (item.role, item.width, item.height, item.fit) == ("first_frame", 1280, 720, "crop")
    assert item.original_name == "still.png"
    with item.image.open("rb") as handle:
        assert Image.open(handle).size == (1280, 720)
    # What the provider is sent: the fitted bytes, as the adapter receives them.
    request = video_request_for(generation)
    first = request.image(InputRole.FIRST_FRAME)
    assert first is not None and (first.width, first.height) == (1280, 720)
    # No draft outlives a request that went through.
    assert not editor.session.get(SESSION_KEY)


def test_a_non_image_is_refused_beside_its_field_and_the_prompt_kept(editor, project) -> None:  # type: ignore[no-untyped-def]
    fake = SimpleUploadedFile("photo.png", b"MZ\x90\x00 not an image at all", "image/png")
    body = post(editor, project, form(start="image", first_frame=fake)).content.decode()
    assert "photo.png: This file is not an image we can read" in body
    assert 'id="id_first_frame_error"' in body
    assert "The boat sails off" in body
    assert not Generation.objects.exists()


def test_image_to_video_without_an_image_says_so(editor, project) -> None:  # type: ignore[no-untyped-def]
    body = post(editor, project, form(start="image")).content.decode()
    assert "Choose the image the video starts from." in body
    assert not Generation.objects.exists()


def test_a_refused_form_keeps_the_uploaded_image_for_the_next_try(editor, project) -> None:  # type: ignore[no-untyped-def]
    body = post(editor, project, form(prompt="", start="image", first_frame=png())).content.decode()
    assert "the prompt is empty" in body
    assert "Kept from your last try: still.png (800x600)" in body
    token = re.search(r'name="first_frame_kept" value="([\w-]+)"', body)
    assert token, "the kept image's token is in the form"
    # The kept image is served to this member's session only.
    draft = reverse("generations:draft", args=[project.pk, token[1]])
    assert editor.get(draft)["Content-Type"] == "image/png"
    # The second try sends no file: the kept one is used, fitted to the size chosen now.
    answer = post(
        editor,
        project,
        form(start="image", first_frame_kept=token[1], size="720x1280", fit="pad"),
    )
    assert "Queued." in answer.content.decode()
    item = GenerationInput.objects.get()
    assert (item.width, item.height, item.fit, item.original_name) == (720, 1280, "pad", "still.png")
    assert editor.get(draft).status_code == 404  # used, then deleted


def test_a_kept_token_of_another_session_is_not_an_image(editor, project, client) -> None:  # type: ignore[no-untyped-def]
    body = post(editor, project, form(start="image", first_frame_kept="notMineAtAll")).content
    assert "The image kept from your last try has expired" in body.decode()
    assert not Generation.objects.exists()


def test_an_aspect_that_cannot_be_fitted_is_refused_and_the_image_kept(editor, project) -> None:  # type: ignore[no-untyped-def]
    body = post(
        editor, project, form(start="image", first_frame=png(2000, 150, "strip.png"))
    ).content.decode()
    assert "times wider than the frame" in body
    assert "Kept from your last try: strip.png (2000x150)" in body
    assert not Generation.objects.exists()


def test_a_frame_of_a_project_video_starts_the_video(editor, project, teammate) -> None:  # type: ignore[no-untyped-def]
    source = finished_video(project, teammate)
    page = editor.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert f'<option value="{source.pk}">Harbour at dusk' in page
    answer = post(editor, project, form(start="frame", frame_video=str(source.pk), frame_at="3.2"))
    assert "Queued." in answer.content.decode()
    made = Generation.objects.exclude(pk=source.pk).get()
    item = made.inputs.get()
    assert item.source_generation_id == source.pk and item.source_time_ms == 3200
    assert (item.width, item.height) == (1280, 720)
    # The card and the video page say where the image came from.
    detail = editor.get(reverse("generations:detail", args=[project.pk, made.pk])).content.decode()
    assert "from a frame of" in detail and "at 0:03.2" in detail
    image_url = reverse("generations:input", args=[project.pk, made.pk, item.pk])
    assert image_url in detail
    served = editor.get(image_url)
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"


def test_a_frame_past_the_end_is_refused_beside_the_time(editor, project, teammate) -> None:  # type: ignore[no-untyped-def]
    source = finished_video(project, teammate)
    body = post(
        editor, project, form(start="frame", frame_video=str(source.pk), frame_at="9")
    ).content.decode()
    assert "The video is 0:04.0 long; pick a time from 0:00.0 to 0:04.0" in body
    assert 'id="id_frame_at_error"' in body
    assert Generation.objects.count() == 1


def test_a_frame_of_another_projects_video_is_404(editor, project, teammate, outsider) -> None:  # type: ignore[no-untyped-def]
    elsewhere = project_create(name="Someone else's", owner=outsider)
    theirs = finished_video(elsewhere, outsider)
    answer = editor.post(
        reverse("generations:create", args=[project.pk]),
        form(start="frame", frame_video=str(theirs.pk), frame_at="1"),
    )
    assert answer.status_code == 404
    answer = editor.post(
        reverse("generations:create", args=[project.pk]),
        form(start="frame", frame_video="not-a-uuid", frame_at="1"),
    )
    assert answer.status_code == 404
    assert Generation.objects.count() == 1


def test_input_images_are_404_to_non_members(client, project, teammate, outsider) -> None:  # type: ignore[no-untyped-def]
    assert client.login(username=teammate.username, password=PASSWORD)
    post(client, project, form(start="image", first_frame=png()))
    generation = Generation.objects.get()
    url = reverse("generations:input", args=[project.pk, generation.pk, generation.inputs.get().pk])
    assert client.get(url).status_code == 200
    client.logout()
    assert client.login(username=outsider.username, password=PASSWORD)
    assert client.get(url).status_code == 404


def test_n_takes_are_queued_as_one_request(editor, project, channel) -> None:  # type: ignore[no-untyped-def]
    answer = post(editor, project, form(takes="3"))
    assert "Queued 3 takes." in answer.content.decode()
    takes = list(Generation.objects.all())
    assert len(takes) == 3 and len({g.take_set for g in takes}) == 1
    body = post(editor, project, form(takes=str(channel.max_takes + 1))).content.decode()
    assert f"Ask for 1 to {channel.max_takes} takes, not {channel.max_takes + 1}." in body
    assert Generation.objects.count() == 3


def test_options_the_model_does_not_take_are_refused_beside_them(editor, project) -> None:  # type: ignore[no-untyped-def]
    body = post(
        editor, project, form(seed="42", negative_prompt="text", audio="off")
    ).content.decode()
    assert "Sora 2 takes no seed." in body
    assert "Sora 2 takes no negative prompt." in body
    assert 'id="id_seed_error"' in body and 'id="id_negative_prompt_error"' in body
    assert 'value="42"' in body  # kept
    assert not Generation.objects.exists()


def test_sound_seed_and_negative_prompt_reach_a_model_that_takes_them(editor, project, channel) -> None:  # type: ignore[no-untyped-def]
    channel.protocol = "fal"
    channel.save()
    answer = post(
        editor,
        project,
        form(model="fal-ai/veo3.1/fast", seconds="8", audio="off", seed="7", negative_prompt="fog"),
    )
    assert "Queued." in answer.content.decode()
    generation = Generation.objects.get()
    assert generation.options == {"audio": False, "seed": 7, "negative_prompt": "fog"}
    assert generation.price_variant == "silent"


def test_reference_images_where_the_model_takes_them(editor, project, channel) -> None:  # type: ignore[no-untyped-def]
    channel.protocol = "gemini"
    channel.save()
    data = form(model="veo-3.1-generate-preview", seconds="8")
    answer = post(editor, project, {**data, "references": [png(name="a.png"), png(name="b.png")]})
    assert "Queued." in answer.content.decode()
    roles = list(GenerationInput.objects.values_list("role", "position"))
    assert roles == [("reference", 0), ("reference", 1)]
    body = post(
        editor, project, {**data, "references": [png(name=f"{i}.png") for i in range(4)]}
    ).content.decode()
    assert "takes at most 3 reference images, not 4" in body
    assert "Kept from your last try: 3.png" in body


def test_a_body_over_the_limit_gets_a_message_not_an_error_page(editor, project, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(views, "MAX_FORM_BYTES", 10_000)
    answer = post(editor, project, form(start="image", first_frame=png(2000, 2000)))
    assert answer.status_code == 200
    assert "Nothing was queued: choose smaller images." in answer.content.decode()
    assert not Generation.objects.exists()


def test_the_form_offers_only_what_the_model_takes(editor, project) -> None:  # type: ignore[no-untyped-def]
    page = editor.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert 'data-cap="seed"' in page and 'data-cap="audio_toggle"' in page
    assert '"capabilities": {"first_frame": true' in html.unescape(page)
    assert "Landscape 16:9 · 720p (1280x720)" in page
    assert 'enctype="multipart/form-data"' in page


def test_a_draft_is_served_to_its_own_session_only(editor, project, owner) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    body = post(editor, project, form(prompt="", start="image", first_frame=png())).content.decode()
    token = re.search(r'name="first_frame_kept" value="([\w-]+)"', body)
    assert token
    draft = reverse("generations:draft", args=[project.pk, token[1]])
    assert editor.get(draft).status_code == 200
    other = Client()
    assert other.login(username=owner.username, password=PASSWORD)  # same project, other member
    assert other.get(draft).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_image_to_video_runs_to_completion_on_the_simulator(
    editor, project, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    answer = post(editor, project, form(start="image", first_frame=png(640, 640), fit="pad"))
    assert "Queued." in answer.content.decode()
    generation = Generation.objects.get()
    run_workers(lambda: Generation.objects.get(pk=generation.pk).is_terminal)
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED, generation.error_message
    assert simulator.counters()["creates"] == 1
    # The card shows the image it started from, served to members.
    page = editor.get(reverse("projects:detail", args=[project.pk])).content.decode()
    item = generation.inputs.get()
    assert reverse("generations:input", args=[project.pk, generation.pk, item.pk]) in page
    assert "First frame · pad to fit" in page


def test_a_prompt_past_the_providers_own_limit_is_refused_before_anything_is_spent(editor, project, channel) -> None:  # type: ignore[no-untyped-def]
    # Runway counts UTF-16 code units: 999 letters fit, 999 letters and an emoji (two units)
    # do not, though both are under our own 32,000-character limit.
    channel.protocol = "runway"
    channel.save()
    fits = form(model="gen4.5", size="1280x720", seconds="5", prompt="a" * 999)
    assert "Queued." in post(editor, project, fits).content.decode()
    body = post(editor, project, {**fits, "prompt": "a" * 999 + "\N{CLAPPER BOARD}"}).content.decode()
    assert "Runway Gen-4.5 takes prompts of at most 1000 characters; this one has 1001" in body
    assert Generation.objects.count() == 1
