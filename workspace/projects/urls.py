from django.urls import path

from workspace.projects import views

app_name = "projects"

urlpatterns = [
    path("", views.project_list, name="list"),
    path("projects/<id:project_id>/", views.project_detail, name="detail"),
    path("projects/<id:project_id>/members/", views.project_members, name="members"),
    path("projects/<id:project_id>/settings/", views.project_settings, name="settings"),
    path(
        "projects/<id:project_id>/generations/<uuid:generation_id>/move/",
        views.generation_move_view,
        name="generation_move",
    ),
    path(
        "projects/<id:project_id>/generations/<uuid:generation_id>/copy/",
        views.generation_copy_view,
        name="generation_copy",
    ),
    path("projects/<id:project_id>/restore/", views.project_restore_view, name="restore"),
    path(
        "projects/<id:project_id>/members/<id:member_id>/",
        views.project_member_change,
        name="member_change",
    ),
]
