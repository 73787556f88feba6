from django.urls import path

from workspace.projects import views

app_name = "projects"

urlpatterns = [
    path("", views.project_list, name="list"),
    path("projects/<int:project_id>/", views.project_detail, name="detail"),
    path("projects/<int:project_id>/members/", views.project_members, name="members"),
    path(
        "projects/<int:project_id>/members/<int:member_id>/",
        views.project_member_change,
        name="member_change",
    ),
]
