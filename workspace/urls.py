from collections.abc import Callable
from functools import wraps
from typing import Any

from csp.decorators import csp_update
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from django.urls import include, path
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns


def superuser_dashboard(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """The RQ dashboard can empty and requeue queues: superusers only.

    Anonymous visitors go to the admin sign-in (admin_view); other staff get 403. django-rq's
    templates carry inline script and style, so only these pages allow them.
    """

    @wraps(view)
    def superuser_only(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_superuser:
            raise PermissionDenied("The queue dashboard is for superusers only.")
        return view(request, *args, **kwargs)

    inline = {"script-src": ["'unsafe-inline'"], "style-src": ["'unsafe-inline'"]}
    return admin.site.admin_view(csp_update(inline)(superuser_only))


rq_patterns = [
    *(
        # The JSON stats would otherwise answer any staff account; no API token is configured.
        type(p)(p.pattern, superuser_dashboard(p.callback), name=p.name)
        for p in get_api_urlpatterns()
    ),
    *(
        pattern
        for pattern in get_admin_urlpatterns(view_wrapper=superuser_dashboard)
        # rq-scheduler's page: Reelhouse uses RQ's own scheduler, and without the rq-scheduler
        # package the page is a 500.
        if getattr(pattern, "name", None) != "scheduler_jobs"
    ),
]

urlpatterns = [
    path("admin/rq/", include((rq_patterns, "django_rq"))),
    path("admin/", admin.site.urls),
    path("accounts/", include("workspace.accounts.urls")),
    path("", include("workspace.providers.urls")),
    path("", include("workspace.projects.urls")),
    path("", include("workspace.generations.urls")),
    path("", include("workspace.billing.urls")),
    path("", include("workspace.api.urls")),
    path("", include("workspace.reviews.urls")),
    path("", include("workspace.sharing.urls")),
]
