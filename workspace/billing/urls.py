from django.urls import path

from workspace.billing import views

app_name = "billing"

urlpatterns = [
    path("usage/", views.usage, name="usage"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications_read"),
]
