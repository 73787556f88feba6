from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "workspace.providers"
    label = "providers"

    def ready(self) -> None:
        from workspace.providers.http import shared_ssl_context

        shared_ssl_context()
