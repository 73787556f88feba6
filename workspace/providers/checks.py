"""Start-up check: every registered provider's simulated API exists where its spec says.

The specs themselves are checked when the registry loads; the simulated API is only imported by
the simulator, so without this a wrong pointer would surface only when a keyless channel first
reached the simulator. ``manage.py check`` (and every command that runs checks, such as
``migrate`` under ``up``) reports it instead.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error

from workspace.providers.registry import PROVIDERS
from workspace.providers.spec import SpecError


def check_simulated_apis(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from workspace.simulator.server import simulated_api_class

    errors: list[CheckMessage] = []
    for spec in PROVIDERS.values():
        try:
            simulated_api_class(spec)
        except SpecError as error:
            errors.append(Error(str(error), obj=spec.kind, id="providers.E001"))
    return errors
