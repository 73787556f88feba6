"""Veo on the Gemini Enterprise Agent Platform (formerly Vertex AI), under ``/vertex``, as
google-genai 3.6.1 speaks it in Agent Platform mode and the reference (§1.1, §5) describes it.

Simulated:

- ``POST /vertex/token``: Google's OAuth token endpoint for service accounts (RFC 7523:
  ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``). The assertion
  must be an RS256 JWT whose ``aud`` is Google's token endpoint (as google-auth signs it), with
  ``iss``, the cloud-platform ``scope`` and an ``exp`` at most an hour after ``iat``; the
  signature is **not** verified (the simulator has no way to know the account's public key).
  The answer is ``{access_token, expires_in: 3599, token_type: "Bearer"}``; a refused account
  is 400 ``invalid_grant``. The service account's ``client_email`` is the "key" ``api_keys``
  lists.
- ``POST /vertex/{v1|v1beta1}/projects/{p}/locations/{l}/publishers/google/models/{m}:
  predictLongRunning`` with ``Authorization: Bearer <token>``, and express mode's
  ``…/publishers/google/models/{m}:predictLongRunning`` with ``x-goog-api-key``. The request is
  checked like the Gemini API's (gemini.py) but takes the Agent Platform's parameters too:
  ``seed`` (0 to 4294967295), ``generateAudio`` (the silent price when false), ``sampleCount``
  1 to 4 (billed per video) and ``storageUri``.
- ``POST /vertex/{v}/{model resource}:fetchPredictOperation`` with ``{"operationName"}``: the
  operation; once done, ``response.videos[]`` carries each video inline as
  ``bytesBase64Encoded`` (or, when the create named a ``storageUri``, a ``gcsUri`` in that
  bucket, which nothing here serves), or ``raiMediaFilteredReasons`` when blocked.

Errors use the google.rpc envelope: a missing or unknown token is 401 ``UNAUTHENTICATED``, a
known account the config no longer lists 403 ``PERMISSION_DENIED``. A token lives until the
simulator is reset. Assumptions: docs/provider-assumptions.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
from typing import Any, Final
from urllib.parse import parse_qs

from workspace.simulator.core import CallKind, RateVerdict, SimRequest, SimResponse
from workspace.simulator.media import MediaError
from workspace.simulator.protocols.gemini import (
    OPERATION_ERRORS,
    PIXELS,
    RAI_REASON,
    GeminiVeoProtocol,
    Invalid,
    bad,
    google_error,
    random_id,
)

PREFIX: Final = "/vertex"
MODELS: Final[dict[str, dict[str, Any]]] = {
    "veo-3.1-generate-001": {"resolutions": ("720p", "1080p", "4k"), "references": True,
                             "extends": False,
                             "cents": {"720p": 40, "1080p": 40, "4k": 60},
                             "silent_cents": {"720p": 20, "1080p": 20, "4k": 40}},
    "veo-3.1-fast-generate-001": {"resolutions": ("720p", "1080p", "4k"), "references": True,
                                  "extends": False,
                                  "cents": {"720p": 10, "1080p": 12, "4k": 30},
                                  "silent_cents": {"720p": 8, "1080p": 10, "4k": 25}},
    "veo-3.1-lite-generate-001": {"resolutions": ("720p", "1080p"), "references": False,
                                  "extends": False,
                                  "cents": {"720p": 5, "1080p": 8},
                                  "silent_cents": {"720p": 3, "1080p": 5}},
}
SEED_MAX: Final = 4294967295
TOKEN_SECONDS: Final = 3599
SCOPE: Final = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth 2.63 signs every service-account assertion for Google's endpoint, whatever
# ``token_uri`` the key file names (``service_account._make_authorization_grant_assertion``).
GOOGLE_TOKEN_AUDIENCE: Final = "https://oauth2.googleapis.com/token"  # noqa: S105
_VERSION = r"(?P<version>v1|v1beta1)"
_MODEL_RESOURCE = (r"(?P<resource>(?:projects/(?P<project>[^/:]+)/locations/(?P<location>[^/:]+)/)?"
                   r"publishers/google/models/(?P<model>[^/:]+))")
_CREATE_PATH = re.compile(rf"^{PREFIX}/{_VERSION}/{_MODEL_RESOURCE}:predictLongRunning$")
_FETCH_PATH = re.compile(rf"^{PREFIX}/{_VERSION}/{_MODEL_RESOURCE}:fetchPredictOperation$")
_TOKEN_PATH = f"{PREFIX}/token"
_RESPONSE_TYPE: Final = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"


def _b64url_json(part: str) -> Any:
    padded = part + "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode()))


def _oauth_error(code: str, description: str) -> SimResponse:
    return SimResponse.json(400, {"error": code, "error_description": description})


class VertexVeoProtocol(GeminiVeoProtocol):
    prefix = PREFIX
    models = MODELS
    body_fields = ("instances", "parameters", "labels")
    parameter_fields = ("aspectRatio", "resolution", "durationSeconds", "negativePrompt",
                        "personGeneration", "sampleCount", "enhancePrompt", "seed",
                        "generateAudio", "storageUri", "compressionQuality")
    refused_parameters = ()
    max_samples = 4

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.book.protocol = "vertex"
        # access token -> the service account (client_email) it was issued to
        self._tokens: dict[str, str] = {}
        # Which kind of call this thread is answering: ``unauthorized`` words it accordingly.
        self._call = threading.local()

    # ---- core hooks -------------------------------------------------------------------------

    def classify(self, request: SimRequest) -> tuple[CallKind | None, str | None]:
        self._call.token = request.path == _TOKEN_PATH
        self._call.bearer = False
        if request.method != "POST":
            return None, None
        if _CREATE_PATH.match(request.path):
            return "create", None
        if _FETCH_PATH.match(request.path):
            return "status", None
        return None, None

    def api_key(self, request: SimRequest) -> str | None:
        if request.path == _TOKEN_PATH:
            return self._assertion_issuer(request)
        authorization = request.header("authorization") or ""
        if authorization.startswith("Bearer "):
            self._call.bearer = True
            with self.ctx.lock:
                return self._tokens.get(authorization[len("Bearer "):].strip())
        key = (request.header("x-goog-api-key") or "").strip()
        return key or None

    def unauthorized(self, key: str | None) -> SimResponse:
        if getattr(self._call, "token", False):
            return _oauth_error("invalid_grant", "Invalid JWT Signature." if key else
                                "Invalid JWT: the assertion is malformed or expired.")
        if key is None:
            return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication "
                                "credentials. Expected OAuth 2 access token, login cookie or "
                                "other valid authentication credential.", details=[{
                                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                    "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED"
                                    if not getattr(self._call, "bearer", False)
                                    else "ACCESS_TOKEN_EXPIRED",
                                    "domain": "googleapis.com"}])
        if getattr(self._call, "bearer", False):
            return google_error(403, "PERMISSION_DENIED", "Permission 'aiplatform.endpoints."
                                "predict' denied on resource (or it may not exist).", details=[{
                                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                    "reason": "IAM_PERMISSION_DENIED",
                                    "domain": "aiplatform.googleapis.com"}])
        return google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid "
                            "API key.", details=[{
                                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                "reason": "API_KEY_INVALID", "domain": "googleapis.com"}])

    def rate_limited(self, verdict: RateVerdict, retry_after: int) -> SimResponse:
        if getattr(self._call, "token", False):
            return SimResponse.json(429, {"error": "rate_limit_exceeded",
                                          "error_description": "Too many token requests."},
                                    {"retry-after": str(retry_after)})
        # "Regional online prediction requests per base model per minute" (50 for Veo 3.1 GA).
        return google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for aiplatform."
                            "googleapis.com/online_prediction_requests_per_base_model with base "
                            "model: veo. Please submit a quota increase request.", details=[
                                {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                 "violations": [{"quotaId": "OnlinePredictionRequestsPerMinute"
                                                            "PerProjectPerRegionPerBaseModel",
                                                 "quotaValue": str(verdict.limit)}]},
                                {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                 "retryDelay": f"{retry_after}s"}])

    def reset(self) -> None:
        super().reset()
        self.revoke_tokens()

    def revoke_tokens(self) -> None:
        """Forget every access token issued (what an expired or revoked token looks like to
        the client: 401 on its next call)."""
        with self.ctx.lock:
            self._tokens = {}

    @property
    def tokens_issued(self) -> int:
        """Access tokens currently valid."""
        with self.ctx.lock:
            return len(self._tokens)

    def handle(self, request: SimRequest) -> SimResponse:
        if request.path == _TOKEN_PATH and request.method == "POST":
            return self._issue_token(request)
        if request.method == "POST" and (match := _CREATE_PATH.match(request.path)):
            return self._create_operation(match, request)
        if request.method == "POST" and (match := _FETCH_PATH.match(request.path)):
            return self._fetch(match, request)
        return google_error(404, "NOT_FOUND", f"Requested entity was not found: "
                            f"{request.method} {request.path[len(PREFIX):]}")

    # ---- the token endpoint -----------------------------------------------------------------

    def _assertion_issuer(self, request: SimRequest) -> str | None:
        """The service account a well-formed, current assertion for this endpoint names."""
        try:
            form = parse_qs((request.body or b"").decode(), strict_parsing=True)
        except (ValueError, UnicodeDecodeError):
            return None
        if form.get("grant_type") != [JWT_BEARER] or len(form.get("assertion", [])) != 1:
            return None
        parts = form["assertion"][0].split(".")
        if len(parts) != 3 or not parts[2]:
            return None
        try:
            header, claims = _b64url_json(parts[0]), _b64url_json(parts[1])
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            return None
        now = time.time()
        if not (isinstance(claims, dict) and isinstance(claims.get("iss"), str)
                and claims.get("aud") == GOOGLE_TOKEN_AUDIENCE
                and SCOPE in str(claims.get("scope") or "").split()
                and isinstance(claims.get("iat"), int) and isinstance(claims.get("exp"), int)
                and 0 < claims["exp"] - claims["iat"] <= 3600
                and claims["iat"] <= now + 300 and claims["exp"] > now):
            return None
        issuer: str = claims["iss"]
        return issuer

    def _issue_token(self, request: SimRequest) -> SimResponse:
        account = self._assertion_issuer(request)
        if account is None:  # the core already refused it; kept for safety
            return _oauth_error("invalid_grant", "Invalid JWT.")
        token = "ya29.sim-" + secrets.token_urlsafe(32)
        with self.ctx.lock:
            self._tokens[token] = account
        return SimResponse.json(200, {"access_token": token, "expires_in": TOKEN_SECONDS,
                                      "token_type": "Bearer"})

    # ---- create and poll --------------------------------------------------------------------

    def _create_operation(self, match: re.Match[str], request: SimRequest) -> SimResponse:
        model = match["model"]
        spec = self.models.get(model)
        if spec is None:
            return google_error(404, "NOT_FOUND", f"Publisher Model `{match['resource']}` "
                                "was not found or your project does not have access to it.")
        try:
            values = self._parse(model, spec, request)
            parameters = values["parameters"]
            seed = parameters.get("seed")
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                                     or not 0 <= seed <= SEED_MAX):
                raise Invalid(bad(f"seed must be an integer from 0 to "
                                                  f"{SEED_MAX}.", "parameters.seed"))
            audio = parameters.get("generateAudio", True)
            if not isinstance(audio, bool):
                raise Invalid(bad("generateAudio must be a boolean.",
                                                  "parameters.generateAudio"))
            storage = parameters.get("storageUri")
            if storage is not None and not (isinstance(storage, str)
                                            and storage.startswith("gs://")):
                raise Invalid(bad("storageUri must be a gs:// URI.",
                                                  "parameters.storageUri"))
        except Invalid as invalid:
            return invalid.response
        if self.ctx.config.insufficient_quota:
            self.ctx.inc("quota_rejected_429")
            return google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for aiplatform."
                                "googleapis.com/online_prediction_requests_per_base_model.",
                                details=[{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                          "violations": [{"quotaId": "OnlinePredictionRequests"
                                                          "PerDayPerProjectPerBaseModel"}]}])
        outcome, faults = self.book.decide(request.seq, values["prompt"])
        name = f"{match['resource']}/operations/{random_id(19)}"
        prices = spec["cents"] if audio else spec["silent_cents"]
        samples = values["samples"]
        job = self.book.create(
            job_id=name,
            model=model,
            prompt=values["prompt"],
            size=PIXELS[(values["aspect_ratio"], values["resolution"])],
            seconds=values["seconds"],
            # Each of the sampleCount videos is billed.
            cents_per_second=prices[values["resolution"]] * samples,
            outcome=outcome,
            input_reference=values["image"],
            log_extra={"resolution": values["resolution"],
                       "aspect_ratio": values["aspect_ratio"],
                       "reference_images": values["references"], "images": values["images"],
                       "negative_prompt": values["negative_prompt"], "seed": seed,
                       "audio": audio, "samples": samples, "storage_uri": storage,
                       "api_version": match["version"],
                       "express": match["project"] is None},
            extra={"samples": samples, "storage_uri": storage},
        )
        response = SimResponse.json(200, {"name": name})
        response.created_job_id = job.id
        response.forced_faults = faults
        return response

    def _fetch(self, match: re.Match[str], request: SimRequest) -> SimResponse:
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            body = None
        name = body.get("operationName") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.startswith(match["resource"] + "/operations/"):
            return bad("operationName must name an operation of the model in the "
                                "URL.", "operationName")
        with self.ctx.lock:
            job = self.book.get(name)
            if job is None:
                return google_error(404, "NOT_FOUND", "Operation not found.")
            phase, _ = self.book.observe(job)
            answer: dict[str, Any] = {"name": name}
            if phase in ("queued", "running"):
                return SimResponse.json(200, answer)
            answer["done"] = True
            outcome, size, seconds = job.outcome, job.size, job.seconds
            samples, storage = job.extra["samples"], job.extra["storage_uri"]
            expired = self.book.expired(job)
        if outcome in ("processing_error", "internal_error"):
            answer["error"] = dict(OPERATION_ERRORS[outcome])
            return SimResponse.json(200, answer)
        if outcome == "moderation":
            answer["response"] = {"@type": _RESPONSE_TYPE, "raiMediaFilteredCount": 1,
                                  "raiMediaFilteredReasons": [RAI_REASON]}
            return SimResponse.json(200, answer)
        if storage is not None:
            videos = [{"gcsUri": f"{storage.rstrip('/')}/{name.rsplit('/', 1)[-1]}/"
                                 f"sample_{index}.mp4", "mimeType": "video/mp4"}
                      for index in range(samples)]
        elif expired:
            # Inline results are not kept once their retention ends ([ours]).
            return google_error(404, "NOT_FOUND", "The operation's result is no longer "
                                "available.")
        else:
            try:
                data = self.media.get("video", size, seconds)
            except MediaError as exc:
                return google_error(500, "INTERNAL", f"The simulator could not render: {exc}")
            encoded = base64.b64encode(data).decode()
            videos = [{"bytesBase64Encoded": encoded, "mimeType": "video/mp4"}
                      for _ in range(samples)]
            self.ctx.count_call("download", "video")
        answer["response"] = {"@type": _RESPONSE_TYPE, "raiMediaFilteredCount": 0,
                              "videos": videos}
        return SimResponse.json(200, answer)
