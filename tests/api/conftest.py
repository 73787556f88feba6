"""API fixtures: tokens issued through the service, and a client that sends one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from workspace.api.services import token_create
from workspace.projects.models import Project


@pytest.fixture
def issue(db: None) -> Callable[..., str]:
    """``issue(user, project=None, write=True, expires_at=None)`` → the token's secret."""

    def make(
        user: User,
        project: Project | None = None,
        *,
        write: bool = True,
        expires_at: datetime | None = None,
        name: str = "script",
    ) -> str:
        return token_create(
            owner=user, name=name, project=project, can_write=write, expires_at=expires_at
        ).secret

    return make


class Api:
    """Django's test client speaking to /v1 with a Bearer token (CSRF checks enforced)."""

    def __init__(self, secret: str | None, **headers: str) -> None:
        self.client = Client(enforce_csrf_checks=True)
        self.headers = dict(headers)
        if secret is not None:
            self.headers["Authorization"] = f"Bearer {secret}"

    def get(self, path: str, data: dict[str, Any] | None = None, **headers: str) -> Any:
        return self.client.get(f"/v1{path}", data, headers={**self.headers, **headers})

    def post(self, path: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
        return self.client.post(
            f"/v1{path}",
            body or {},
            content_type="application/json",
            headers={**self.headers, **headers},
        )

    def delete(self, path: str, **headers: str) -> Any:
        return self.client.delete(f"/v1{path}", headers={**self.headers, **headers})


@pytest.fixture
def api() -> Callable[..., Api]:
    return Api
