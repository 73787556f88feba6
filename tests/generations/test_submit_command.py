"""The generation_submit command's image, frame, option, takes and change flags."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from PIL import Image

from workspace.generations.models import Generation, GenerationInput, InputRole, Operation
from workspace.projects.services import project_create

from .test_generate_form import finished_video


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("generation_submit", *args, stdout=out)
    return out.getvalue()


def base(user, project) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--user", user.username, "--project", str(project.pk), "--prompt", "Dawn"]


@pytest.fixture
def still(tmp_path: Path) -> Path:
    path = tmp_path / "still.jpg"
    Image.new("RGB", (900, 900), (200, 40, 40)).save(path, format="JPEG")
    return path


def test_an_image_starts_the_video_with_the_fit_chosen(teammate, project, still) -> None:  # type: ignore[no-untyped-def]
    out = run(*base(teammate, project), "--image", str(still), "--fit", "blur")
    generation = Generation.objects.get()
    assert str(generation.pk) in out
    item = generation.inputs.get()
    assert (item.role, item.width, item.height, item.fit) == ("first_frame", 1280, 720, "pad")
    assert item.original_name == "still.jpg" and item.content_type == "image/jpeg"


def test_bad_images_are_clear_errors(teammate, project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    with pytest.raises(CommandError, match=r"--image .*fake.png: This file is not an image"):
        run(*base(teammate, project), "--image", str(fake))
    with pytest.raises(CommandError, match=r"--image .*missing.png: No such file"):
        run(*base(teammate, project), "--image", str(tmp_path / "missing.png"))
    strip = tmp_path / "strip.png"
    Image.new("RGB", (3000, 200)).save(strip)
    with pytest.raises(CommandError, match=r"--image: The image is 15:1 and the video 16:9"):
        run(*base(teammate, project), "--image", str(strip))
    assert not Generation.objects.exists()


def test_a_frame_of_a_project_video(teammate, project, outsider) -> None:  # type: ignore[no-untyped-def]
    source = finished_video(project, teammate)
    run(*base(teammate, project), "--frame-of", str(source.pk), "--at", "1.5")
    item = GenerationInput.objects.get()
    assert item.source_generation_id == source.pk and item.source_time_ms == 1500
    with pytest.raises(CommandError, match=r"The video is 0:04.0 long"):
        run(*base(teammate, project), "--frame-of", str(source.pk), "--at", "6")
    with pytest.raises(CommandError, match="--frame-of needs --at"):
        run(*base(teammate, project), "--frame-of", str(source.pk))
    with pytest.raises(CommandError, match="--at goes with --frame-of"):
        run(*base(teammate, project), "--at", "1")
    # Another project's video is not there for this member.
    theirs = finished_video(project_create(name="Theirs", owner=outsider), outsider)
    with pytest.raises(CommandError, match=f"There is no video {theirs.pk} in project"):
        run(*base(teammate, project), "--frame-of", str(theirs.pk), "--at", "1")


def test_options_and_takes(teammate, project, channel) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="seed: Sora 2 takes no seed"):
        run(*base(teammate, project), "--seed", "3")
    with pytest.raises(CommandError, match=f"takes: Ask for 1 to {channel.max_takes} takes"):
        run(*base(teammate, project), "--takes", str(channel.max_takes + 1))
    out = run(*base(teammate, project), "--takes", "2")
    assert "and 1 more takes of it" in out
    assert Generation.objects.count() == 2
    channel.protocol = "fal"
    channel.save()
    run(
        *base(teammate, project),
        "--model", "fal-ai/veo3.1/fast", "--seconds", "8",
        "--no-audio", "--seed", "9", "--negative-prompt", "rain",
    )  # fmt: skip
    made = Generation.objects.order_by("-created_at").first()
    assert made is not None
    assert made.options == {"audio": False, "seed": 9, "negative_prompt": "rain"}


def test_references_and_last_frame_follow_the_catalog(teammate, project, channel, still) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="references: Sora 2 takes no reference images"):
        run(*base(teammate, project), "--reference", str(still))
    with pytest.raises(CommandError, match="last_frame: Sora 2 cannot end on a given frame"):
        run(*base(teammate, project), "--image", str(still), "--last-frame", str(still))
    channel.protocol = "gemini"
    channel.save()
    run(
        *base(teammate, project),
        "--model", "veo-3.1-generate-preview", "--seconds", "8",
        "--reference", str(still), "--reference", str(still),
    )  # fmt: skip
    assert list(GenerationInput.objects.values_list("role", "position")) == [
        (InputRole.REFERENCE, 0),
        (InputRole.REFERENCE, 1),
    ]


@pytest.fixture
def changeable(monkeypatch):  # type: ignore[no-untyped-def]
    """Sora 2 able to be edited and extended (not remixed), whatever the catalog says today."""
    from dataclasses import replace

    from workspace.providers.catalog import Catalog
    from workspace.providers.models import Channel

    real = Channel.catalog.fget  # type: ignore[attr-defined]

    def catalog(channel):  # type: ignore[no-untyped-def]
        specs = real(channel).models
        return Catalog(
            models=tuple(
                replace(
                    spec,
                    can_edit=True,
                    can_remix=False,
                    extend_seconds=(4, 8),
                    max_total_seconds=12,
                    extend_sizes=(),
                )
                if spec.id == "sora-2"
                else spec
                for spec in specs
            )
        )

    monkeypatch.setattr(Channel, "catalog", property(catalog))


def test_edit_remix_and_extend_go_through_the_service(teammate, project, outsider, changeable) -> None:  # type: ignore[no-untyped-def]
    source = finished_video(project, teammate)
    # A row with no provider copy: the service explains what can still be done.
    with pytest.raises(CommandError, match="parent: The provider's copy of this video expired"):
        run("--user", teammate.username, "--prompt", "Make it night", "--edit", str(source.pk))
    source.provider_job_id = "video_123"
    source.provider_expires_at = timezone.now() + timedelta(hours=1)
    source.save()
    run("--user", teammate.username, "--prompt", "Make it night", "--edit", str(source.pk))
    edit = Generation.objects.get(operation=Operation.EDIT)
    assert (edit.parent_id, edit.project_id, edit.seconds) == (source.pk, project.pk, 4)
    run(
        "--user", teammate.username, "--prompt", "More", "--extend", str(source.pk),
        "--seconds", "8",
    )  # fmt: skip
    extension = Generation.objects.get(operation=Operation.EXTEND)
    assert (extension.seconds, extension.source_seconds, extension.total_seconds) == (8, 4, 12)
    with pytest.raises(CommandError, match="seconds: An extension of this video can add 4, 8"):
        run(
            "--user", teammate.username, "--prompt", "More", "--extend", str(source.pk),
            "--seconds", "12",
        )  # fmt: skip
    with pytest.raises(CommandError, match="operation: Sora 2 videos cannot be remixed"):
        run("--user", teammate.username, "--prompt", "Remix", "--remix", str(source.pk))
    with pytest.raises(CommandError, match="images: An edit takes no images"):
        run(
            "--user", teammate.username, "--prompt", "x", "--edit", str(source.pk),
            "--frame-of", str(source.pk), "--at", "1",
        )  # fmt: skip
    with pytest.raises(CommandError, match=f"There is no video {source.pk} among your projects"):
        run("--user", outsider.username, "--prompt", "Mine now", "--remix", str(source.pk))
    with pytest.raises(CommandError, match="is not a video id"):
        run("--user", teammate.username, "--prompt", "x", "--remix", "nope")
    other = project_create(name="Elsewhere", owner=teammate)
    with pytest.raises(CommandError, match="is not in project 'Elsewhere'"):
        run(
            "--user", teammate.username, "--project", other.name, "--prompt", "x",
            "--edit", str(source.pk),
        )  # fmt: skip
    assert Generation.objects.count() == 3
