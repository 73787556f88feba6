from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Health and metrics for operators: /healthz, /readyz and /metrics (middleware.py)."""

    name = "workspace.ops"
    label = "ops"
    verbose_name = "Operations"
