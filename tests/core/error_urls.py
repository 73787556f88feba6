"""A test-only URL configuration: views that fail in each way, beside the real app's URLs."""

from django.core.exceptions import BadRequest, PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the failure a member might cause")


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("Your role does not allow this.")


def bad(request: HttpRequest) -> HttpResponse:
    raise BadRequest("malformed")


urlpatterns = [
    path("test-errors/500/", boom),
    path("test-errors/403/", forbidden),
    path("test-errors/400/", bad),
    path("", include("workspace.urls")),
]
