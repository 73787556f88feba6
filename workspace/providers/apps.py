from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "workspace.providers"
    label = "providers"

    def ready(self) -> None:
        from django.core import checks

        from workspace.providers.checks import check_simulated_apis
        from workspace.providers.http import shared_ssl_context

        shared_ssl_context()
        checks.register(check_simulated_apis)
