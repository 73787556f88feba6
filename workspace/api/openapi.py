"""The published OpenAPI document of Reelhouse's /v1: OpenAI's, limited to what is implemented.

``derive`` turns OpenAI's reference extract (workspace/providers/specs/, verbatim from OpenAI)
into the document served at /v1/openapi.json, kept as workspace/api/openapi.json so the app
needs no YAML parser at run time; tests/api/test_openapi.py fails when the two drift apart,
saying how to regenerate it.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

DOCUMENT = Path(__file__).with_name("openapi.json")
# (path, method) pairs Reelhouse implements; characters (OpenAI's, uploaded from a video) are not.
IMPLEMENTED = {
    ("/videos/{video_id}/remix", "post"),
    ("/videos/edits", "post"),
    ("/videos/extensions", "post"),
    ("/videos", "post"),
    ("/videos", "get"),
    ("/videos/{video_id}", "get"),
    ("/videos/{video_id}", "delete"),
    ("/videos/{video_id}/content", "get"),
}
# Properties of OpenAI's request bodies that Reelhouse refuses with a 400 naming them (a file_id,
# a remote image URL, an uploaded source video) stay documented: they are OpenAI's contract.
UNIMPLEMENTED_PROPERTIES: set[str] = set()
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
_ERRORS = {
    "400": "A parameter is invalid; error.param names it.",
    "401": "The API key is missing, wrong, revoked or expired.",
    "403": "The key is read-only, or the member may not do this in the project.",
    "404": "No such video among those the key may see.",
    "405": "The method is not allowed on this path.",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": (
            "Seconds until the request would pass: the key's request rate allows another, or the "
            "refusing budget resets (absent if it never does)."
        ),
        "schema": {"type": "integer", "minimum": 1},
    }
}
_TOO_MANY_REQUESTS = {
    "description": "The key sent more requests than its rate allows; see the x-ratelimit headers.",
    "headers": _RETRY_AFTER,
    "content": _ERROR,
}
_RATE_LIMITED = {
    "description": (
        "A budget or the member's queue cap refuses the video (the message names the budget "
        "and when it resets), or the key sent more requests than its rate allows."
    ),
    "headers": _RETRY_AFTER,
    "content": _ERROR,
}
_PROJECT_HEADER = {
    "name": "OpenAI-Project",
    "in": "header",
    "required": False,
    "description": (
        "The Reelhouse project (its number) when the key spans all of its member's projects."
    ),
    "schema": {"type": "string"},
}


def _referenced(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            _referenced(value, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, found)


def derive(reference: dict[str, Any]) -> dict[str, Any]:
    """The served document from OpenAI's reference extract."""
    paths: dict[str, Any] = {}
    for path, operations in reference["paths"].items():
        for method, operation in operations.items():
            if (path, method) not in IMPLEMENTED:
                continue
            operation = copy.deepcopy(operation)
            operation.pop("deprecated", None)
            operation["parameters"] = [*operation.get("parameters", []), _PROJECT_HEADER]
            responses = operation["responses"]
            for status, description in _ERRORS.items():
                responses[status] = {"description": description, "content": _ERROR}
            responses["429"] = _RATE_LIMITED if method == "post" else _TOO_MANY_REQUESTS
            if path.endswith("/content"):
                # Thumbnails and spritesheets are served as the provider made them.
                binary = {"schema": {"type": "string", "format": "binary"}}
                ok = responses["200"]["content"]
                ok.pop("application/json", None)
                for media in ("image/jpeg", "image/png"):
                    ok[media] = binary
            paths.setdefault(path, {})[method] = operation
    schemas = copy.deepcopy(reference["components"]["schemas"])
    for name in ("CreateVideoMultipartBody", "CreateVideoJsonBody"):
        for prop in UNIMPLEMENTED_PROPERTIES:
            schemas[name]["properties"].pop(prop, None)
    needed: set[str] = {"ErrorResponse"}
    _referenced(paths, needed)
    while True:  # schemas that the needed ones refer to, transitively
        more = set(needed)
        for name in needed:
            _referenced(schemas[name], more)
        if more == needed:
            break
        needed = more
    return {
        "openapi": reference["openapi"],
        "info": {
            "title": "Reelhouse Videos API",
            "version": "1.0.0",
            "description": (
                "OpenAI's Videos API as Reelhouse implements it, for the official SDKs: the "
                "member's API token is the key, and videos go through their budgets, the fair "
                "queue and their projects' galleries. Derived from OpenAI's document "
                f"({reference['info']['version']}), limited to what is implemented."
            ),
        },
        "servers": [{"url": "/v1"}],
        "security": [{"ApiKeyAuth": []}],
        "paths": paths,
        "components": {
            "schemas": {name: schemas[name] for name in sorted(needed)},
            "securitySchemes": {"ApiKeyAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


@cache
def _stored() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text())


def openapi_document(*, base_url: str) -> dict[str, Any]:
    """The served document, its server the caller's own base URL."""
    return {**_stored(), "servers": [{"url": base_url}]}
