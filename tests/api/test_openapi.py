"""The published OpenAPI document: derived from OpenAI's, served by the app, and the API
checked against it by schemathesis over real HTTP (no server error; every answer as documented).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.test_videos import REFERENCE
from workspace.api.openapi import DOCUMENT, derive
from workspace.api.services import token_create
from workspace.projects.services import project_create


def test_the_served_document_is_derived_from_openais() -> None:
    derived = derive(yaml.safe_load(REFERENCE.read_text()))
    assert json.loads(DOCUMENT.read_text()) == derived, (
        "workspace/api/openapi.json is stale; regenerate it with: .venv/bin/python -c "
        "\"import json, yaml; from workspace.api.openapi import DOCUMENT, derive; "
        "DOCUMENT.write_text(json.dumps(derive(yaml.safe_load(open("
        "'workspace/providers/specs/openai-videos-openapi.yaml'))), indent=1, sort_keys=True)"
        " + '\\n')\""
    )
    assert set(derived["paths"]) == {
        "/videos",
        "/videos/{video_id}",
        "/videos/{video_id}/content",
        "/videos/{video_id}/remix",
        "/videos/edits",
        "/videos/extensions",
    }
    assert "/videos/characters" not in derived["paths"]
    create = derived["components"]["schemas"]["CreateVideoJsonBody"]["properties"]
    assert "input_reference" in create and "prompt" in create


@pytest.mark.django_db(transaction=True)
def test_the_document_is_public_and_names_this_site(live_server) -> None:  # type: ignore[no-untyped-def]
    answer = httpx.get(f"{live_server.url}/v1/openapi.json")
    assert answer.status_code == 200
    assert answer.json()["servers"] == [{"url": f"{live_server.url}/v1"}]


@pytest.fixture
def api_schema(live_server, db, owner, channel) -> Any:  # type: ignore[no-untyped-def]
    project_create(name="Fuzzed film", owner=owner)
    secret = token_create(
        owner=owner, name="schemathesis", project=None, can_write=True, expires_at=None
    ).secret
    schema = schemathesis.openapi.from_url(f"{live_server.url}/v1/openapi.json")
    schema.secret = secret  # type: ignore[attr-defined]
    return schema


OPERATIONS = [
    ("/videos", "POST"),
    ("/videos", "GET"),
    ("/videos/{video_id}", "GET"),
    ("/videos/{video_id}", "DELETE"),
    ("/videos/{video_id}/content", "GET"),
    ("/videos/{video_id}/remix", "POST"),
    ("/videos/edits", "POST"),
    ("/videos/extensions", "POST"),
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


# schemathesis's own pytest plugin does not run under pytest 9; its Python API is driven from
# hypothesis here instead, one test per operation.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_the_api_answers_as_documented(api_schema, path: str, method: str) -> None:  # type: ignore[no-untyped-def]
    operation = api_schema[path][method]
    headers = {"Authorization": f"Bearer {api_schema.secret}"}

    # Few examples and no shrinking: seconds of the suite, not hours; a failure still shows.
    @settings(
        max_examples=25,
        deadline=None,
        database=None,  # no .hypothesis/ directory left in the working tree
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def answers_as_documented(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    answers_as_documented()
