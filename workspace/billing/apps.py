from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "workspace.billing"
    label = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from workspace.billing import audit, signals

        # The audit log and the budget counters follow model changes through signals.
        audit.connect()
        signals.connect()
