from django.apps import AppConfig


class SimulatorAppConfig(AppConfig):
    """Registers the ``simulate_provider`` management command; the simulator has no models."""

    name = "workspace.simulator"
    label = "simulator"
    verbose_name = "Provider simulator"
