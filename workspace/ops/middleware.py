"""/healthz, /readyz and /metrics, answered before the rest of the middleware.

Load balancers and Prometheus reach a node by its address over plain HTTP: the host check
(ALLOWED_HOSTS), the HTTPS redirect, sessions and CSRF would turn their probes into 400s and
301s. These three paths are answered first and use nothing of the request but its method, its
Authorization header and the client address; no page, cookie or redirect is involved. Sign-in
throttling (axes) only watches sign-ins, so it never counts or blocks these.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from workspace.accounts.throttle import client_address
from workspace.ops import health, metrics

logger = logging.getLogger(__name__)

HEALTH_PATHS = {"/healthz": health.liveness, "/readyz": health.readiness}
METRICS_PATH = "/metrics"


class OperationsEndpointsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        path = request.path_info.rstrip("/") or "/"
        if path in HEALTH_PATHS:
            return _health(request, HEALTH_PATHS[path])
        if path == METRICS_PATH:
            return _metrics(request)
        return self.get_response(request)


def _plain(status: int, text: str, **headers: str) -> HttpResponse:
    response = HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return _finish(response)


def _finish(response: HttpResponse) -> HttpResponse:
    # Answered before SecurityMiddleware, so its nosniff is set here.
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _health(request: HttpRequest, check: Callable[[], health.Report]) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return _plain(405, "Method not allowed.", Allow="GET, HEAD")
    report = check()
    _log_change(report)
    response = HttpResponse(
        json.dumps(report.as_json()),
        status=report.http_status,
        content_type="application/json",
    )
    _finish(response)
    # Probes come every few seconds from every balancer: Django would log each 503 as an
    # error; _log_change says it once per change instead.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


_last_status: dict[int, str] = {}


def _log_change(report: health.Report) -> None:
    if report.status == _last_status.get(os.getpid(), health.OK):
        _last_status[os.getpid()] = report.status
        return
    _last_status[os.getpid()] = report.status
    failing = ", ".join(
        f"{check.name}: {check.state} {check.detail}".strip()
        for check in report.checks
        if check.state not in (health.OK, health.SKIPPED)
    )
    if report.status == health.OK:
        logger.warning("readiness: ok again")
    else:
        logger.warning("readiness: %s (%s)", report.status, failing)


def _metrics(request: HttpRequest) -> HttpResponse:
    token = settings.REELHOUSE_METRICS_TOKEN
    networks = settings.REELHOUSE_METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        # Not configured: as if there were no such page.
        return _plain(404, "Not found.")
    if networks and not _address_allowed(request, networks):
        return _plain(404, "Not found.")
    if token:
        scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            offered.strip().encode(), token.encode()
        ):
            return _plain(
                401, "A bearer token is required.", WWW_Authenticate='Bearer realm="metrics"'
            )
    if request.method not in ("GET", "HEAD"):
        return _plain(405, "Method not allowed.", Allow="GET, HEAD")
    return _finish(HttpResponse(metrics.metrics_text(), content_type=metrics.CONTENT_TYPE))


def _address_allowed(
    request: HttpRequest, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        address = ipaddress.ip_address(client_address(request) or "")
    except ValueError:
        return False
    return any(address in network for network in networks)
