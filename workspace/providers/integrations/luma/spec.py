"""Luma: what the rest of Reelhouse looks up about it (see providers/spec.py)."""

from __future__ import annotations

from workspace.providers.errors import ErrorClass
from workspace.providers.integrations.luma.adapter import LumaAdapter
from workspace.providers.spec import BillingPolicy, ProviderSpec

SPEC = ProviderSpec(
    kind="luma",
    label="Luma Agents API (Ray)",
    adapter=LumaAdapter,
    # The variables luma-agents-python reads.
    api_key_env="LUMA_AGENTS_API_KEY",
    base_url_env="LUMA_BASE_URL",
    # Includes /v1, as the SDK's default does.
    official_base_url="https://agents.lumalabs.ai/v1",
    # Undocumented. Luma's error guide names budget_exhausted ("ran out of funds
    # mid-generation"), so spending happens while a generation runs, but says nothing of whether
    # a moderated or failed one is billed: moderation and provider failures of accepted
    # generations, including the retryable generation_failed/output_not_found (overloaded), are
    # counted until Luma's usage report shows otherwise.
    billing=BillingPolicy(
        charged_failures=frozenset({ErrorClass.AMBIGUOUS_CREATE.value}),
        charged_after_acceptance=frozenset(
            {
                ErrorClass.MODERATION.value,
                ErrorClass.PROVIDER_FAILED.value,
                ErrorClass.OVERLOADED.value,
            }
        ),
    ),
    simulator="workspace.simulator.protocols.luma:SimulatedLumaAPI",
    simulator_path="/luma/v1",
)
