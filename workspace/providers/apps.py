from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "workspace.providers"
    label = "providers"
