"""The audit log: who changed which budget, price, channel, project or membership, and how.

Recorded from model signals, so every path is covered (the admin, the project member pages and
their services, management commands) without each caller remembering to log. The acting user
comes from the request being served (``AuditActorMiddleware``) or from ``audit_actor()`` in
code that runs outside a request; with neither, the change is logged as made by the system.

Channels hold the *names* of the environment variables with keys, never keys, so logging their
fields can never reveal one. Bulk ``QuerySet.update()`` calls send no signals and are therefore
not seen here; code that changes audited rows does so through ``save()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models
from django.db.models.signals import post_delete, post_save, pre_save
from django.http import HttpRequest, HttpResponse

from workspace.billing.models import Budget, Price
from workspace.core.models import AuditEvent
from workspace.projects.models import Membership, Project
from workspace.providers.models import Channel

# Timestamps that change on every save say nothing about who changed what.
_SKIPPED_FIELDS = {"created_at", "updated_at", "added_at"}

_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)
_actor: ContextVar[AbstractBaseUser | None] = ContextVar("audit_actor", default=None)


class AuditActorMiddleware:
    """Remember the request being served so audit entries can name who made a change."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


@contextmanager
def audit_actor(user: AbstractBaseUser | None) -> Iterator[None]:
    """Attribute changes made inside the block to ``user`` (for code outside a request)."""
    token = _actor.set(user)
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> AbstractBaseUser | None:
    explicit = _actor.get()
    if explicit is not None:
        return explicit
    request = _request.get()
    # The user is resolved lazily, only when something audited actually changes.
    user = getattr(request, "user", None) if request is not None else None
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated:
        return None
    return user


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _fields(model: type[models.Model]) -> list[str]:
    return [
        field.attname
        for field in model._meta.concrete_fields
        if not field.primary_key and field.name not in _SKIPPED_FIELDS
    ]


# Secrets (even encrypted) never enter the log: only whether one is set.
_REDACTED_FIELDS = {"api_key_encrypted"}


def _redact(name: str, value: Any) -> Any:
    if name in _REDACTED_FIELDS:
        return "(a key is stored)" if value else "(no key stored)"
    return value


def _snapshot(instance: models.Model) -> dict[str, Any]:
    return {
        name: _redact(name, _jsonable(getattr(instance, name))) for name in _fields(type(instance))
    }


def audit_record(
    *, action: str, target: models.Model, changes: dict[str, list[Any]], target_repr: str = ""
) -> AuditEvent:
    return AuditEvent.record(
        actor=current_actor(),
        action=action,
        target_type=str(target._meta.verbose_name),
        target_id=target.pk,
        target_repr=target_repr or str(target),
        changes=changes,
    )


def _before_save(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    if kwargs.get("raw") or instance.pk is None or instance._state.adding:
        instance._audit_before = None  # type: ignore[attr-defined]
        return
    previous = sender._default_manager.filter(pk=instance.pk).values(*_fields(sender)).first()
    instance._audit_before = (  # type: ignore[attr-defined]
        {k: _redact(k, _jsonable(v)) for k, v in previous.items()} if previous else None
    )


def _after_save(
    sender: type[models.Model], instance: models.Model, created: bool, **kwargs: Any
) -> None:
    if kwargs.get("raw"):
        return
    after = _snapshot(instance)
    before = getattr(instance, "_audit_before", None)
    if created or before is None:
        changes = {name: [None, value] for name, value in after.items()}
        audit_record(action=AuditEvent.Action.CREATED, target=instance, changes=changes)
        return
    changes = {
        name: [before.get(name), value]
        for name, value in after.items()
        if before.get(name) != value
    }
    note = getattr(instance, "audit_note", "")
    if changes and note:
        # Why the model changed more than was asked (e.g. a stored key forgotten on a move).
        changes["note"] = [None, note]
    if changes:
        audit_record(action=AuditEvent.Action.CHANGED, target=instance, changes=changes)


def _after_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    changes = {name: [value, None] for name, value in _snapshot(instance).items()}
    try:
        label = str(instance)
    except models.ObjectDoesNotExist:  # e.g. a membership whose project is being deleted
        label = f"{instance._meta.verbose_name} #{instance.pk}"
    audit_record(
        action=AuditEvent.Action.DELETED, target=instance, changes=changes, target_repr=label
    )


AUDITED_MODELS: tuple[type[models.Model], ...] = (Budget, Price, Channel, Membership, Project)


def connect() -> None:
    for model in AUDITED_MODELS:
        uid = f"billing-audit-{model._meta.label_lower}"
        pre_save.connect(_before_save, sender=model, dispatch_uid=uid)
        post_save.connect(_after_save, sender=model, dispatch_uid=uid)
        post_delete.connect(_after_delete, sender=model, dispatch_uid=uid)
