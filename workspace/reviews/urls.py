from django.urls import path

from workspace.reviews import views

app_name = "reviews"

urlpatterns = [
    path(
        "projects/<id:project_id>/generations/<uuid:generation_id>/comments/",
        views.comment_add,
        name="comment_add",
    ),
    path(
        "projects/<id:project_id>/comments/<id:comment_id>/delete/",
        views.comment_delete,
        name="comment_delete",
    ),
    path(
        "projects/<id:project_id>/generations/<uuid:generation_id>/review/",
        views.decide,
        name="decide",
    ),
    path(
        "projects/<id:project_id>/generations/<uuid:generation_id>/favourite/",
        views.favourite,
        name="favourite",
    ),
    path("projects/<id:project_id>/review-settings/", views.policy, name="policy"),
    path("projects/<id:project_id>/activity/", views.activity, name="activity"),
]
