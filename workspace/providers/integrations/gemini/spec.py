"""The Gemini API (Veo): what the rest of Reelhouse looks up about it (see providers/spec.py)."""

from __future__ import annotations

from workspace.providers.errors import ErrorClass
from workspace.providers.integrations.gemini.adapter import GeminiVeoAdapter
from workspace.providers.spec import BillingPolicy, ProviderSpec

SPEC = ProviderSpec(
    kind="gemini",
    label="Google Gemini API (Veo, legacy)",
    adapter=GeminiVeoAdapter,
    api_key_env="GEMINI_API_KEY",
    base_url_env="GOOGLE_GEMINI_BASE_URL",
    # The host's root: the adapter adds /v1beta.
    official_base_url="https://generativelanguage.googleapis.com",
    # Google: "You will not be charged if your video is blocked" and "You will only be charged
    # if your video is successfully generated".
    billing=BillingPolicy(charged_failures=frozenset({ErrorClass.AMBIGUOUS_CREATE.value})),
    simulator="workspace.simulator.protocols.gemini:GeminiVeoProtocol",
    simulator_path="/gemini",
    # docs/provider-assumptions.md: what was confirmed and what is assumed about this surface.
    legacy=(
        "Google's SDK (google-genai 3.x) no longer sends Veo requests with an API key, and the "
        "Veo preview ids here were reportedly retired on 2026-10-22 (unconfirmed). Use the "
        "Agent Platform (vertex) channel kind for Veo."
    ),
)
