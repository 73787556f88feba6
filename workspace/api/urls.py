from django.urls import path, re_path

from workspace.api import views

app_name = "api"

urlpatterns = [
    path("api-tokens/", views.tokens, name="tokens"),
    path("api-tokens/<id:token_id>/revoke/", views.token_revoke_view, name="token_revoke"),
    path("api-tokens/<id:token_id>/webhook/", views.token_webhook, name="token_webhook"),
    path("v1/openapi.json", views.openapi_json, name="openapi"),
    # The OpenAI Videos contract. No trailing slashes: the SDKs append none.
    path("v1/videos", views.videos, name="videos"),
    # Fixed names before <video_id>, which would otherwise take them for ids.
    path("v1/videos/edits", views.video_edits, name="video_edits"),
    path("v1/videos/extensions", views.video_extensions, name="video_extensions"),
    path(
        "v1/videos/characters",
        views.not_available("Video characters", "POST"),
        name="video_characters",
    ),
    path(
        "v1/videos/characters/<str:character_id>",
        views.not_available("Video characters", "GET"),
        name="video_character",
    ),
    path("v1/videos/<str:video_id>", views.video, name="video"),
    path("v1/videos/<str:video_id>/content", views.video_content, name="video_content"),
    path("v1/videos/<str:video_id>/remix", views.video_remix, name="video_remix"),
    # Anything else under /v1 answers in the API's envelope, not with an HTML page.
    re_path(r"^v1/", views.v1_not_found, name="v1_not_found"),
]
