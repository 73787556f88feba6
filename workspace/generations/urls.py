from django.urls import path

from workspace.generations import views

app_name = "generations"

urlpatterns = [
    path(
        "projects/<id:project_id>/retention/",
        views.retention_policy_view,
        name="retention",
    ),
    path(
        "projects/<id:project_id>/generations/",
        views.generation_create,
        name="create",
    ),
    path(
        "projects/<id:project_id>/generations/gallery/",
        views.generation_gallery,
        name="gallery",
    ),
    path(
        "projects/<id:project_id>/generations/live/",
        views.generation_live,
        name="live",
    ),
    path(
        "projects/<id:project_id>/generations/<uuid:generation_id>/",
        views.generation_detail,
        name="detail",
    ),
    path(
        "projects/<id:project_id>/generations/<uuid:generation_id>/cancel/",
        views.generation_cancel_view,
        name="cancel",
    ),
    path(
        "projects/<id:project_id>/generations/<uuid:generation_id>/change/",
        views.generation_change,
        name="change",
    ),
    path(
        "projects/<id:project_id>/generations/<uuid:generation_id>/pick/",
        views.generation_pick_view,
        name="pick",
    ),
    path(
        "projects/<id:project_id>/generations/<uuid:generation_id>/character/",
        views.character_create_view,
        name="character_create",
    ),
    path(
        "projects/<id:project_id>/generations/<uuid:generation_id>/files/<slug:variant>",
        views.generation_file,
        name="file",
    ),
    path(
        "projects/<id:project_id>/generations/<uuid:generation_id>/inputs/<id:input_id>",
        views.generation_input_file,
        name="input",
    ),
    path(
        "projects/<id:project_id>/generations/drafts/<slug:token>",
        views.generation_draft_file,
        name="draft",
    ),
]
