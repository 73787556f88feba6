"""OpenAI Videos: what the rest of Reelhouse looks up about it (see providers/spec.py)."""

from __future__ import annotations

from workspace.providers.errors import ErrorClass
from workspace.providers.integrations.openai_videos.adapter import OpenAIVideosAdapter
from workspace.providers.spec import BillingPolicy, ProviderSpec

SPEC = ProviderSpec(
    kind="openai_videos",
    label="OpenAI Videos (/v1/videos)",
    adapter=OpenAIVideosAdapter,
    api_key_env="OPENAI_API_KEY",
    base_url_env="OPENAI_BASE_URL",
    official_base_url="https://api.openai.com/v1",
    # OpenAI published no statement on failed or moderated jobs (openai-videos-api.md section
    # 4.2: "treat as unknown"); the gateways that still serve the protocol, and the simulator,
    # bill completed jobs only, so every other failure is released.
    billing=BillingPolicy(charged_failures=frozenset({ErrorClass.AMBIGUOUS_CREATE.value})),
    simulator="workspace.simulator.protocols.openai_videos:OpenAIVideosProtocol",
    simulator_path="/v1",
    webhooks=True,
)
