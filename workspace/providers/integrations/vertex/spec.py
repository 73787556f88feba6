"""Veo on the Agent Platform: what the rest of Reelhouse looks up about it (providers/spec.py)."""

from __future__ import annotations

from workspace.providers.errors import ErrorClass
from workspace.providers.integrations.vertex.adapter import VertexVeoAdapter
from workspace.providers.spec import BillingPolicy, ProviderSpec

SPEC = ProviderSpec(
    kind="vertex",
    label="Google Agent Platform / Vertex AI (Veo)",
    adapter=VertexVeoAdapter,
    # The service account's JSON key file (or an express-mode API key). google-auth reads a
    # key file's *path* from GOOGLE_APPLICATION_CREDENTIALS; a channel reads the JSON itself
    # from this variable, so the path convention is not reused under another meaning.
    api_key_env="GOOGLE_SERVICE_ACCOUNT_KEY",
    base_url_env="GOOGLE_VERTEX_BASE_URL",
    # The regional endpoint the reference names; the location is read from the host.
    official_base_url="https://us-central1-aiplatform.googleapis.com",
    # The Gemini API's billing statement for Veo ("only charged if your video is successfully
    # generated"); the Agent Platform publishes nothing different in what was read.
    billing=BillingPolicy(charged_failures=frozenset({ErrorClass.AMBIGUOUS_CREATE.value})),
    simulator="workspace.simulator.protocols.vertex:VertexVeoProtocol",
    simulator_path="/vertex",
)
