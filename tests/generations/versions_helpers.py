"""Shared by the version-stack tests: a catalog whose Sora 2 can be changed at the provider,
and finished videos whose provider copy is still there (or gone)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from workspace.generations.models import Generation, Status
from workspace.projects.models import Project
from workspace.providers.catalog import Catalog
from workspace.providers.integrations.openai_videos.adapter import OpenAIVideosAdapter
from workspace.providers.models import Channel

# Lengths one extension adds and the most a clip may have in all, for these tests only (the
# catalog holds the provider's real facts: 120 s in all, past what a test can reach cheaply).
EXTEND_SECONDS = (4, 8, 12)
MAX_TOTAL_SECONDS = 20


def _sora_2(monkeypatch: pytest.MonkeyPatch, **facts: Any) -> Catalog:
    base = OpenAIVideosAdapter.catalog
    catalog = Catalog(
        models=tuple(
            replace(spec, **facts) if spec.id == "sora-2" else spec for spec in base.models
        )
    )
    monkeypatch.setattr(OpenAIVideosAdapter, "catalog", catalog)
    return catalog


@pytest.fixture
def changeable(monkeypatch: pytest.MonkeyPatch) -> Catalog:
    """Sora 2 edits, remixes and extends, up to a short maximum the tests can reach."""
    return _sora_2(
        monkeypatch,
        can_edit=True,
        can_remix=True,
        extend_seconds=EXTEND_SECONDS,
        max_total_seconds=MAX_TOTAL_SECONDS,
    )


@pytest.fixture
def unchangeable(monkeypatch: pytest.MonkeyPatch) -> Catalog:
    """Sora 2 as a model whose videos cannot be changed at the provider."""
    return _sora_2(
        monkeypatch, can_edit=False, can_remix=False, extend_seconds=(), max_total_seconds=0
    )


def finished(
    project: Project,
    user: User,
    channel: Channel,
    *,
    prompt: str = "A paper boat on a rainy street",
    expires_in: timedelta | None = timedelta(hours=1),
    **fields: Any,
) -> Generation:
    """A completed video whose provider copy lives ``expires_in`` longer (negative: gone)."""
    now = timezone.now()
    generation = Generation.objects.create(
        project=project,
        created_by=user,
        channel=channel,
        model=fields.pop("model", "sora-2"),
        prompt=prompt,
        size=fields.pop("size", "1280x720"),
        seconds=fields.pop("seconds", 4),
        status=Status.COMPLETED,
        progress=100,
        completed_at=now,
        provider_job_id=fields.pop("provider_job_id", f"video_{now.timestamp():.6f}"),
        provider_expires_at=now + expires_in if expires_in is not None else None,
        **fields,
    )
    return generation


def complete(generation: Generation, *, job: str | None = None) -> Generation:
    """Mark a submitted generation finished at the provider (as the workers would)."""
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.COMPLETED,
        progress=100,
        completed_at=timezone.now(),
        provider_job_id=job or f"video_{generation.pk.hex}",
        provider_expires_at=timezone.now() + timedelta(hours=1),
    )
    generation.refresh_from_db()
    return generation
