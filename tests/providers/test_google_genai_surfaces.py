"""What google-genai 3.6.1 does with Veo, as docs/provider-assumptions.md records it.

These pin the findings the Gemini protocol's status rests on: a new pin of the SDK that changes
any of them must change the document (and perhaps the catalog) too. Nothing is sent anywhere:
the Developer API refusal happens before any request, and the rest is the client's own
configuration.
"""

from __future__ import annotations

import pytest
from google import genai
from google.genai import _transformers


@pytest.fixture(autouse=True)
def _no_google_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI",
                 "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_GENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)


def test_the_developer_api_mode_refuses_generate_videos_before_sending() -> None:
    client = genai.Client(api_key="not-a-real-key")
    with pytest.raises(ValueError, match="only supported in Gemini Enterprise Agent Platform"):
        client.models.generate_videos(model="veo-3.1-generate-preview",
                                      source={"prompt": "a paper boat"})
    # And the mode's default API version is v1, not the v1beta our adapter speaks.
    assert client._api_client._http_options.api_version == "v1"


def test_agent_platform_mode_with_a_project_is_regional_v1beta1() -> None:
    client = genai.Client(vertexai=True, project="p", location="us-central1",
                          credentials=_Anonymous())
    options = client._api_client._http_options
    assert options.base_url == "https://us-central1-aiplatform.googleapis.com/"
    assert options.api_version == "v1beta1"


def test_express_mode_takes_an_api_key_on_the_global_host() -> None:
    client = genai.Client(vertexai=True, api_key="not-a-real-key")
    api = client._api_client
    assert (api.project, api.location) == (None, None)
    assert api._http_options.base_url == "https://aiplatform.googleapis.com/"
    assert _transformers.t_model(api, "veo-3.1-generate-001") == (
        "publishers/google/models/veo-3.1-generate-001")


class _Anonymous:
    """Stands in for google.auth credentials: the client only stores them until a request."""

    token = None
    valid = True
    expired = False
