"""Sign-in throttling glue for django-axes: the client address, the backend and the lockout page."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_address(request: HttpRequest) -> str | None:
    """The client's address as far as the configured trusted proxies vouch for it.

    With ``REELHOUSE_PROXY_COUNT=0`` (the default) that is the connection's own address and
    X-Forwarded-For is ignored, since anyone can send that header. With N trusted proxies each
    appending the address it saw, the Nth entry from the right is the one the outermost trusted
    proxy saw; entries further left were written by the client and are ignored.
    """
    count: int = settings.REELHOUSE_PROXY_COUNT
    if count > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= count:
            return forwarded[-count]
    address = request.META.get("REMOTE_ADDR")
    return str(address) if address else None


class SignInThrottleBackend(AxesStandaloneBackend):
    """django-axes' lockout check, skipped for authentication without a request.

    Every sign-in form (ours and the admin's) passes its request; a call without one (the test
    client's ``login()``, scripts) comes from no address that could be locked, and axes would
    raise instead of letting the next backend answer.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        "accounts/locked_out.html",
        {"minutes": minutes, "admin_sign_in": request.path.startswith("/admin/")},
        status=429,
    )
