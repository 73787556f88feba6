from django.urls import path

from workspace.sharing import views

app_name = "sharing"

urlpatterns = [
    path("projects/<id:project_id>/share/", views.share_create, name="create"),
    path(
        "projects/<id:project_id>/share/<id:link_id>/revoke/",
        views.share_revoke,
        name="revoke",
    ),
    path("projects/<id:project_id>/videos.zip", views.selection_zip, name="zip"),
    # The only pages a link's holder reaches; nothing in them leads anywhere else.
    path("s/<str:share_token>/", views.share_public, name="public"),
    path(
        "s/<str:share_token>/<uuid:generation_id>/<slug:variant>",
        views.share_file,
        name="public_file",
    ),
]
