from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "workspace.reviews"
    label = "reviews"
