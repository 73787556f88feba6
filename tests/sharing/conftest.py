from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from workspace.generations.models import Generation, Status
from workspace.projects.models import Project
from workspace.providers.models import Channel


@pytest.fixture
def make_video(channel: Channel) -> Callable[..., Generation]:
    """A finished generation with stored bytes: ``make_video(project, author, prompt=…)``."""

    def make(
        project: Project, author: User, *, prompt: str = "Waves at dawn", data: bytes = b""
    ) -> Generation:
        generation = Generation.objects.create(
            project=project,
            created_by=author,
            channel=channel,
            model="sora-2",
            prompt=prompt,
            size="1280x720",
            seconds=4,
            status=Status.COMPLETED,
            progress=100,
            completed_at=timezone.now(),
        )
        body = data or f"video bytes of {generation.pk}".encode() * 100
        name = default_storage.save(generation.storage_name("video.mp4"), ContentFile(body))
        generation.video.name = name
        generation.save(update_fields=["video"])
        return generation

    return make
