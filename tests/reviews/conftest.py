from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from workspace.generations.models import Generation, Status
from workspace.projects.models import Project
from workspace.providers.models import Channel


@pytest.fixture
def make_video(channel: Channel) -> Callable[..., Generation]:
    """A finished generation row (no file needed: reviews never read it)."""

    def make(
        project: Project,
        author: User,
        prompt: str = "Waves at dawn",
        status: str = Status.COMPLETED,
    ) -> Generation:
        return Generation.objects.create(
            project=project,
            created_by=author,
            channel=channel,
            model="sora-2",
            prompt=prompt,
            size="1280x720",
            seconds=4,
            status=status,
            progress=100 if status == Status.COMPLETED else 0,
            completed_at=timezone.now() if status == Status.COMPLETED else None,
        )

    return make


@pytest.fixture
def video(project: Project, teammate: User, make_video: Callable[..., Generation]) -> Generation:
    return make_video(project, teammate)
