"""Runway: what the rest of Reelhouse looks up about it (see providers/spec.py)."""

from __future__ import annotations

from workspace.providers.errors import ErrorClass
from workspace.providers.integrations.runway.adapter import RunwayAdapter
from workspace.providers.spec import BillingPolicy, ProviderSpec

SPEC = ProviderSpec(
    kind="runway",
    label="Runway API",
    adapter=RunwayAdapter,
    api_key_env="RUNWAYML_API_SECRET",
    base_url_env="RUNWAYML_BASE_URL",
    # The host's root: the adapter adds /v1.
    official_base_url="https://api.dev.runwayml.com",
    # A finished task reports its final ``cost.credits`` (SDK 5.24; "fully refunded tasks report
    # 0"), and that figure settles the ledger whenever it is there (billing/services.py). Only
    # without it does this policy decide: moderation and provider failures of accepted tasks,
    # including a task canceled at Runway (a cancel that finds it RUNNING is not refunded,
    # ``tasks.delete``), are counted, so budgets never overspend.
    billing=BillingPolicy(
        charged_failures=frozenset({ErrorClass.AMBIGUOUS_CREATE.value}),
        charged_after_acceptance=frozenset(
            {ErrorClass.MODERATION.value, ErrorClass.PROVIDER_FAILED.value}
        ),
    ),
    simulator="workspace.simulator.protocols.runway:RunwayProtocol",
    simulator_path="/runway",
)
