from django.urls import path

from workspace.providers import views

app_name = "providers"

urlpatterns = [
    path("webhooks/<slug:channel_slug>/", views.webhook, name="webhook"),
]
