from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("workspace.accounts.urls")),
    path("", include("workspace.providers.urls")),
    path("", include("workspace.projects.urls")),
    path("", include("workspace.generations.urls")),
    path("", include("workspace.billing.urls")),
]
