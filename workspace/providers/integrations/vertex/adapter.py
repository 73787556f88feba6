"""Veo on Google's Gemini Enterprise Agent Platform (formerly Vertex AI), as google-genai 3.6.1
speaks it in its "Agent Platform mode" (``vertexai=True``) and the reference (§1.1, §5) records.

- **Auth**: the channel's key is a service account's JSON key file. The adapter signs an RS256
  JWT with it and exchanges it at the token endpoint for a bearer token (credentials.py),
  cached until shortly before it expires and fetched again once when the API answers 401. The
  token endpoint is Google's (``https://oauth2.googleapis.com/token``) when the base URL is a
  ``*.googleapis.com`` host, otherwise ``{base URL}/token`` (the simulator, or a proxy that
  serves both); never the ``token_uri`` the JSON names. A key that is not JSON is an
  express-mode API key, sent as ``x-goog-api-key`` to the paths without a project.
- **Create**: ``POST v1/projects/{project}/locations/{location}/publishers/google/models/
  {model}:predictLongRunning`` (express: ``v1/publishers/google/models/{model}:…``) with
  ``instances[0] = {prompt, image?, lastFrame?, referenceImages?}`` and ``parameters =
  {aspectRatio, resolution, durationSeconds, sampleCount: 1, generateAudio, seed?,
  negativePrompt?}``. The project is the key file's ``project_id``; the location is read from
  the host (``us-central1-aiplatform.googleapis.com``; ``aiplatform.googleapis.com`` is
  ``global``; any other host: ``us-central1``).
- **Poll**: ``POST v1/{model resource}:fetchPredictOperation`` with ``{"operationName"}``; the
  job id is the operation's full name, which names the model.
- **Output**: no ``storageUri`` is sent, so Google returns the video inline as
  ``response.videos[].bytesBase64Encoded``; ``download`` writes those bytes. An answer that only
  names a ``gs://`` object (a project whose policy forces a bucket) is refused: reading Cloud
  Storage would send the token to another host.
- No cancel, delete or list is used (the SDK has none for Veo operations).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, BinaryIO

import httpx

from workspace.providers.adapters.base import (
    HTTPAdapter,
    JobStatus,
    Operation,
    ProviderJob,
    VideoRequest,
    classify_status,
)
from workspace.providers.catalog import size_parts
from workspace.providers.errors import CreateOutcome, ErrorClass, ProviderError
from workspace.providers.http import ProviderHTTP, retry_after_seconds
from workspace.providers.integrations.gemini.adapter import (
    classify_response as classify_google_response,
)
from workspace.providers.integrations.gemini.adapter import (
    veo_image_fields,
    veo_operation_done,
    veo_operation_started,
)
from workspace.providers.integrations.vertex.catalog import CATALOG
from workspace.providers.integrations.vertex.credentials import (
    GOOGLE_TOKEN_URI,
    JWT_BEARER,
    TOKENS,
    ServiceAccount,
    clock,
    is_service_account_json,
    parse_service_account,
    signed_assertion,
)

API_VERSION = "v1"
DEFAULT_LOCATION = "us-central1"
_REGIONAL_HOST = re.compile(r"^(?P<location>[a-z0-9-]+)-aiplatform\.googleapis\.com$")
_OPERATION_NAME = re.compile(
    r"^(?P<resource>(?:projects/[^/:?#]+/locations/[^/:?#]+/)?publishers/google/models/"
    r"(?P<model>[^/:?#]+))/operations/[^/:?#]+$"
)
_BARE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Token answers are small; a bigger one is not a token.
_TOKEN_SECONDS_MAX = 24 * 3600


def location_for(base_url: str) -> str:
    host = httpx.URL(base_url).host
    if host == "aiplatform.googleapis.com":
        return "global"
    match = _REGIONAL_HOST.match(host)
    return match["location"] if match else DEFAULT_LOCATION


def token_uri_for(base_url: str) -> str:
    """Where the assertion goes: Google's endpoint for Google's hosts, the base URL's own
    ``/token`` for anything else (never a host the key file names)."""
    if httpx.URL(base_url).host.endswith(".googleapis.com"):
        return GOOGLE_TOKEN_URI
    return base_url.rstrip("/") + "/token"


def classify_token_response(response: httpx.Response) -> ProviderError:
    """Google's OAuth endpoint answers ``{"error", "error_description"}`` (RFC 6749 §5.2)."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    code = body.get("error") if isinstance(body.get("error"), str) else ""
    words = body.get("error_description") if isinstance(body.get("error_description"), str) else ""
    message = "Google refused the service account's token request" + (
        f": {code}{' (' + words + ')' if words else ''}" if code else f" ({status})."
    )
    if status == 429 or status >= 500:
        return ProviderError(
            classify_status(status), message, retry_after=retry_after_seconds(response.headers)
        )
    # invalid_grant (bad signature, deleted key, clock skew), invalid_client, unauthorized_client:
    # only an admin with a new key file can fix them.
    return ProviderError(ErrorClass.AUTH, message, code=code or None)


def classify_response(response: httpx.Response) -> ProviderError:
    """The API's answers use the same google.rpc envelope as the Gemini API."""
    return classify_google_response(response)


def _videos(body: dict[str, Any]) -> list[dict[str, Any]]:
    response = body.get("response")
    videos = response.get("videos") if isinstance(response, dict) else None
    return [v for v in videos if isinstance(v, dict)] if isinstance(videos, list) else []


def parse_operation(body: Any) -> ProviderJob:
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise ProviderError(
            ErrorClass.PROVIDER_FAILED, "Google answered with something that is not an operation."
        )
    name: str = body["name"]
    match = _OPERATION_NAME.match(name)
    if match is None:
        raise ProviderError(
            ErrorClass.PROVIDER_FAILED, "Google named an operation this adapter cannot poll."
        )
    job = ProviderJob(id=name, status=JobStatus.IN_PROGRESS, model=match["model"], raw=body)
    if not body.get("done"):
        return job
    response = body.get("response")
    return veo_operation_done(
        job,
        body,
        has_video=bool(_videos(body)),
        filtered=response.get("raiMediaFilteredReasons") if isinstance(response, dict) else None,
    )


class VertexVeoAdapter(HTTPAdapter):
    catalog = CATALOG
    classify = staticmethod(classify_response)
    provider_name = "Google"
    # A finished operation carries the video itself, base64 in the JSON (no bucket is named):
    # room for a long 4k clip, and a file that big is still refused below before decoding.
    max_answer_bytes = 256 * 1024**2
    max_download_bytes = max_answer_bytes // 4 * 3

    def __init__(self, *, base_url: str, api_key: str, **options: Any) -> None:
        super().__init__(base_url=base_url, api_key=api_key, **options)
        base = self.normalise_base_url(base_url)
        self._account: ServiceAccount | None = None
        self._oauth: ProviderHTTP | None = None
        self._prefix = f"{API_VERSION}/"
        self._key_problem: ProviderError | None = None
        self._token_uri = self._token_path = ""
        if is_service_account_json(api_key):
            # A malformed key file fails the first call (auth), not the adapter's construction.
            try:
                self._account = parse_service_account(api_key)
            except ProviderError as problem:
                self._key_problem = problem
            else:
                self._prefix += (
                    f"projects/{self._account.project_id}/locations/{location_for(base)}/"
                )
            self._token_uri = token_uri_for(base)
            # ProviderHTTP joins paths under its base: the endpoint's folder, then its name.
            token_base, _, self._token_path = self._token_uri.rpartition("/")
            self._oauth = ProviderHTTP(
                base_url=token_base,
                headers={"User-Agent": "Reelhouse/0.1"},
                secret=api_key,
                classify=classify_token_response,
                connect_timeout=options["connect_timeout"],
                read_timeout=options["read_timeout"],
                transport=options.get("transport"),
            )

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        # A service account's token is added per call (``_authorize``); a plain key is express
        # mode's API key.
        return {} if is_service_account_json(api_key) else {"x-goog-api-key": api_key}

    @staticmethod
    def key_problem(key: str) -> str | None:
        if not is_service_account_json(key):
            return HTTPAdapter.key_problem(key)
        try:
            parse_service_account(key)
        except ProviderError as problem:
            return problem.message
        return None

    @staticmethod
    def key_label(key: str) -> str | None:
        # A key file's ends are braces; its key id is what Google's console lists.
        if not is_service_account_json(key):
            return None
        try:
            key_id = parse_service_account(key).private_key_id
        except ProviderError:
            return None
        return f"key {key_id[:4]}…{key_id[-4:]}" if len(key_id) >= 12 else "key ••••"

    @staticmethod
    def normalise_base_url(base_url: str) -> str:
        base_url = base_url.rstrip("/")
        if base_url.endswith("/" + API_VERSION):
            base_url = base_url[: -len(API_VERSION) - 1]
        return base_url

    def close(self) -> None:
        super().close()
        if self._oauth is not None:
            self._oauth.close()

    # ---- credentials ------------------------------------------------------------------------

    def _cache_key(self) -> tuple[str, str, str]:
        assert self._account is not None
        return (self._token_uri, self._account.client_email, self._account.fingerprint)

    def _authorize(self) -> str | None:
        """Make sure the API client carries a live bearer token; the token, or None in express
        mode."""
        if self._oauth is None:
            return None
        if self._account is None:
            assert self._key_problem is not None
            self._key_problem.create_outcome = CreateOutcome.NOT_CREATED
            raise self._key_problem
        now = clock()
        token = TOKENS.get(self._cache_key(), now=now)
        if token is None:
            token, expires_in = self._fetch_token(now)
            TOKENS.put(self._cache_key(), token, expires_at=now + expires_in)
        self._http.authorize({"Authorization": f"Bearer {token}"}, secret=token)
        return token

    def _fetch_token(self, now: float) -> tuple[str, float]:
        assert self._oauth is not None and self._account is not None
        assertion = signed_assertion(self._account, now=now)
        try:
            response = self._oauth.request(
                "POST", self._token_path, data={"grant_type": JWT_BEARER, "assertion": assertion}
            )
        except ProviderError as error:
            # Nothing was sent to the API: a create that stops here created nothing.
            error.create_outcome = CreateOutcome.NOT_CREATED
            raise
        body = self._json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        expires_in = body.get("expires_in") if isinstance(body, dict) else None
        if (
            not isinstance(token, str)
            or not token
            or len(token) > 4096
            or not isinstance(expires_in, int | float)
            or isinstance(expires_in, bool)
            or not 0 < expires_in <= _TOKEN_SECONDS_MAX
        ):
            raise ProviderError(
                ErrorClass.PROVIDER_FAILED, "Google's token endpoint answered without a token."
            )
        return token, float(expires_in)

    def _call(
        self, method: str, path: str, *, json: Any, creates: bool = False
    ) -> httpx.Response:
        """One API call with a live token; a 401 (a revoked or expired token) fetches a new
        token and tries once more: a 401 means nothing was created."""
        token = self._authorize()
        try:
            return self._http.request(method, path, json=json, creates=creates)
        except ProviderError as error:
            if token is None or error.http_status != 401:
                raise
        TOKENS.forget(self._cache_key(), token)
        self._authorize()
        return self._http.request(method, path, json=json, creates=creates)

    # ---- the protocol -----------------------------------------------------------------------

    def create(self, request: VideoRequest) -> ProviderJob:
        if request.operation is not Operation.GENERATE:
            raise self._unsupported(f"{request.operation.value} a video")
        if request.characters:
            raise self._unsupported("use characters")
        aspect_ratio, resolution = size_parts(request.size)
        instance: dict[str, Any] = {"prompt": request.prompt, **self._images(request)}
        parameters: dict[str, Any] = {
            "aspectRatio": aspect_ratio,
            "resolution": resolution,
            "durationSeconds": request.seconds,
            # One generation is one video; sampleCount up to 4 would bill four.
            "sampleCount": 1,
            # Veo 3 models need it said; on unless the member switched sound off.
            "generateAudio": True,
        }
        parameters.update(
            self._model_options(
                request,
                {"audio": "generateAudio", "seed": "seed", "negative_prompt": "negativePrompt"},
            )
        )
        response = self._call(
            "POST",
            f"{self._prefix}publishers/google/models/{request.model}:predictLongRunning",
            json={"instances": [instance], "parameters": parameters},
            creates=True,
        )
        return veo_operation_started(
            self._json(response), request, name_ok=lambda name: bool(_OPERATION_NAME.match(name))
        )

    def _images(self, request: VideoRequest) -> dict[str, Any]:
        return veo_image_fields(request, self.catalog.get(request.model), self._unsupported)

    def retrieve(self, job_id: str) -> ProviderJob:
        if _BARE_ID.match(job_id):
            # A bare id (the admin's key check) is asked of the first model: a real call.
            job_id = (f"{self._prefix.removeprefix(API_VERSION + '/')}publishers/google/models/"
                      f"{self.catalog.models[0].id}/operations/{job_id}")
        match = _OPERATION_NAME.match(job_id)
        if match is None:
            raise ProviderError(ErrorClass.NOT_FOUND, f"{job_id!r} is not an operation name.")
        response = self._call(
            "POST",
            f"{API_VERSION}/{match['resource']}:fetchPredictOperation",
            json={"operationName": job_id},
        )
        return parse_operation(self._json(response))

    def download(
        self,
        job_id: str,
        *,
        variant: str,
        destination: BinaryIO,
        retrieved: ProviderJob | None = None,
    ) -> str:
        job = self._job_to_download(job_id, variant=variant, retrieved=retrieved)
        videos = _videos(job.raw)
        if not videos:
            raise ProviderError(
                ErrorClass.NOT_FOUND, f"Operation {job_id} has no video to download yet."
            )
        video = videos[0]
        encoded = video.get("bytesBase64Encoded")
        if not isinstance(encoded, str) or not encoded:
            where = "a Cloud Storage bucket" if video.get("gcsUri") else "no place named"
            raise ProviderError(
                ErrorClass.PROVIDER_FAILED,
                f"Google put the video in {where} instead of answering with its bytes; "
                "Reelhouse asks for inline bytes and does not read buckets.",
            )
        # Four base64 characters carry three bytes: refused before decoding when too big.
        if len(encoded) // 4 * 3 > self.max_download_bytes:
            raise ProviderError(
                ErrorClass.PROVIDER_FAILED,
                f"Google sent more than {self.max_download_bytes} bytes for one file; "
                "nothing was stored.",
            )
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ProviderError(
                ErrorClass.PROVIDER_FAILED, "Google's video bytes were not valid base64."
            ) from None
        destination.write(content)
        mime = video.get("mimeType")
        return mime if isinstance(mime, str) and mime.startswith("video/") else "video/mp4"
