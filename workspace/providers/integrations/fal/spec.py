"""fal.ai: what the rest of Reelhouse looks up about it (see providers/spec.py)."""

from __future__ import annotations

from workspace.providers.errors import ErrorClass
from workspace.providers.integrations.fal.adapter import FalQueueAdapter
from workspace.providers.spec import BillingPolicy, ProviderSpec

SPEC = ProviderSpec(
    kind="fal",
    label="fal.ai queue",
    adapter=FalQueueAdapter,
    api_key_env="FAL_KEY",
    # Like its SDK's, the variable may hold a bare host (queue.fal.run).
    base_url_env="FAL_QUEUE_RUN_HOST",
    official_base_url="https://queue.fal.run",
    # "A 422 may still be charged if a runner spent GPU time"; server errors are "never
    # charged".
    billing=BillingPolicy(
        charged_failures=frozenset({ErrorClass.AMBIGUOUS_CREATE.value}),
        charged_after_acceptance=frozenset({ErrorClass.INVALID_REQUEST.value}),
    ),
    simulator="workspace.simulator.protocols.fal:FalQueueProtocol",
    simulator_path="/fal",
)
