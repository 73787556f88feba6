from django.apps import AppConfig


class GenerationsConfig(AppConfig):
    name = "workspace.generations"
    label = "generations"
