from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks


class ProvidersConfig(AppConfig):
    name = "workspace.providers"
    label = "providers"

    def ready(self) -> None:
        from django.conf import settings

        from workspace.providers.http import shared_ssl_context, trust_for_origin

        shared_ssl_context()
        if settings.SIMULATOR_TLS_URL:
            trust_for_origin(settings.SIMULATOR_TLS_URL, settings.SIMULATOR_CA_FILE)
        checks.register(check_simulated_apis)


def check_simulated_apis(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every registered provider's simulated API exists and is mounted where its spec says.

    The specs are checked when the registry loads, but only the simulator imports the simulated
    APIs, so without this a wrong pointer would surface when a keyless channel first reached the
    simulator. ``manage.py check`` (and commands that run checks, such as ``migrate`` under
    ``up``) reports it as providers.E001 instead. Here, in the app config, because only the
    top layer may import the simulator.
    """
    from workspace.providers.registry import PROVIDERS
    from workspace.providers.spec import SpecError
    from workspace.simulator.server import simulated_api_class

    errors: list[checks.CheckMessage] = []
    for spec in PROVIDERS.values():
        try:
            simulated_api_class(spec)
        except SpecError as error:
            errors.append(checks.Error(str(error), obj=spec.kind, id="providers.E001"))
    return errors
