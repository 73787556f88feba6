"""The Gemini API's Veo 3.1 surface (``https://generativelanguage.googleapis.com``), as
googleapis/python-genai v2.19.0 and the Veo guide describe it.

- Every call sends ``x-goog-api-key: <GEMINI_API_KEY>``; paths are under ``/v1beta``.
- ``create`` is ``POST /v1beta/models/{model}:predictLongRunning`` with
  ``instances[0] = {prompt}`` and ``parameters = {aspectRatio, resolution, durationSeconds}``;
  the answer is an operation. A first frame is ``instances[0].image`` and a last frame
  ``lastFrame`` (``{bytesBase64Encoded, mimeType}``), reference images
  ``referenceImages[] = {image, referenceType: "asset"}``; ``negativePrompt`` is a parameter.
- An **extension** sends ``instances[0].video = {uri}``, the file URI of the earlier Veo output:
  the adapter reads the parent operation (its name is the request's ``source_job_id``) for it.
  Veo adds 7 s per call at 720p; ``durationSeconds`` must be 8 with an extension.
- **Job ids** are the operation's name, ``models/{model}/operations/{id}``, which is also the
  path it is polled at (``GET /v1beta/{name}``) and names the model.
- Operations report no progress: ``done`` absent while running; then an ``error``
  (google.rpc.Status), or a ``response`` whose ``generatedSamples`` hold the video URI. A done
  operation with no samples was blocked by the safety filters (``raiMediaFilteredReasons``).
- ``download`` fetches ``files/{id}:download?alt=media`` with the key and follows its redirect
  by hand: the key goes only to URLs under the channel's base URL, never to the storage host.
  Generated files are kept two days; after that the download answers 403/404 (``expired``).
- No way exists to list Veo operations (``can_list`` False), nor to cancel or delete one.
- A 429 ``RESOURCE_EXHAUSTED`` carries its retry delay in a ``google.rpc.RetryInfo`` detail of
  the body (``"retryDelay": "12.7s"``); a per-day quota (``QuotaFailure`` ids with ``PerDay``)
  is treated as exhausted quota rather than a short wait.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any, BinaryIO

import httpx

from workspace.providers.adapters.base import (
    HTTPAdapter,
    InputImage,
    JobStatus,
    Operation,
    ProviderJob,
    VideoRequest,
    classify_status,
)
from workspace.providers.catalog import ModelSpec, size_parts
from workspace.providers.errors import CreateOutcome, ErrorClass, ProviderError
from workspace.providers.http import classify_file_response, retry_after_seconds
from workspace.providers.integrations.gemini.catalog import CATALOG

API_VERSION = "v1beta"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_SAFETY_WORDS = ("safety", "usage guideline", "responsible ai", "blocked", "prohibited")
# google.rpc.Code values inside a finished operation's ``error``.
_TRANSIENT_CODES = {4, 8, 10, 14}  # DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, UNAVAILABLE
_INVALID_CODES = {3, 9, 11}  # INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE
_AUTH_CODES = {7, 16}  # PERMISSION_DENIED, UNAUTHENTICATED
# "durationSeconds … must be 8 with 1080p, 4k, reference images or extension" (the Veo guide).
_EXTENSION_DURATION = 8


def image_field(image: InputImage) -> dict[str, str]:
    """Google's Image shape as the SDK sends it (inline bytes; the Agent Platform alike)."""
    return {
        "bytesBase64Encoded": base64.b64encode(image.content).decode(),
        "mimeType": image.content_type,
    }


def veo_image_fields(
    request: VideoRequest,
    spec: ModelSpec | None,
    unsupported: Callable[[str], ProviderError],
) -> dict[str, Any]:
    """A Veo instance's image fields (the Gemini API and the Agent Platform name them alike):
    the first frame ``image``, the last ``lastFrame`` and ``referenceImages``, each checked
    against the model's catalog entry (``unsupported`` builds the refusal)."""
    first, last = request.image("first_frame"), request.image("last_frame")
    references = request.images_for("reference")
    fields: dict[str, Any] = {}
    if first is not None:
        if spec is None or not spec.supports_input_reference:
            raise unsupported(f"start {request.model} from an image")
        fields["image"] = image_field(first)
    if last is not None:
        # "lastFrame … must be used together with image."
        if first is None or spec is None or not spec.supports_last_frame:
            raise unsupported(f"end {request.model} on a given frame")
        fields["lastFrame"] = image_field(last)
    if references:
        if spec is None or len(references) > spec.max_reference_images:
            raise unsupported(f"take {len(references)} reference images for {request.model}")
        fields["referenceImages"] = [
            {"image": image_field(reference), "referenceType": "asset"}
            for reference in references
        ]
    return fields


def parse_retry_delay(value: Any) -> float | None:
    """A protobuf Duration in JSON (``"12.7s"``) in seconds."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return float(match.group(1))
    return None


def _envelope(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def classify_response(response: httpx.Response) -> ProviderError:
    """Google's HTTP answers (ai.google.dev/gemini-api/docs/troubleshooting), classified once."""
    error = _envelope(response)
    status = response.status_code
    message = str(error.get("message") or "").strip() or (
        response.text.strip()[:300] or f"HTTP {status} {response.reason_phrase}"
    )
    status_word = str(error.get("status") or "") or None
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    reasons = {str(d.get("reason")) for d in details if d.get("@type") == _ERROR_INFO}
    quota_ids = [
        str(violation.get("quotaId") or "")
        for d in details
        if d.get("@type") == _QUOTA_FAILURE
        for violation in d.get("violations") or []
        if isinstance(violation, dict)
    ]
    retry_after = next(
        (
            delay
            for d in details
            if d.get("@type") == _RETRY_INFO
            and (delay := parse_retry_delay(d.get("retryDelay"))) is not None
        ),
        None,
    )
    if retry_after is None:
        retry_after = retry_after_seconds(response.headers)

    def failure(error_class: ErrorClass, *, hint: float | None = None) -> ProviderError:
        return ProviderError(error_class, message, code=status_word, retry_after=hint)

    if "API_KEY_INVALID" in reasons or status_word == "UNAUTHENTICATED" or status == 401:
        return failure(ErrorClass.AUTH)
    if status == 429:
        if any("PerDay" in quota_id for quota_id in quota_ids):
            # Daily quota: nothing helps before midnight Pacific; an admin has to look.
            return failure(ErrorClass.QUOTA_EXHAUSTED, hint=retry_after)
        return failure(ErrorClass.RATE_LIMITED, hint=retry_after)
    if status_word == "FAILED_PRECONDITION":
        # Billing not enabled, or no paid tier where the project is: Veo has no free tier.
        return failure(ErrorClass.QUOTA_EXHAUSTED)
    # A 404 is also what a retired model answers.
    error_class = classify_status(status)
    if error_class is ErrorClass.OVERLOADED:
        return failure(error_class, hint=retry_after)
    if error_class is ErrorClass.INVALID_REQUEST and any(
        word in message.lower() for word in _SAFETY_WORDS
    ):
        return failure(ErrorClass.MODERATION)
    return failure(error_class)


def classify_file(response: httpx.Response) -> ProviderError:
    """The file download: a refused key is still a key problem; otherwise the file host's rules."""
    error = _envelope(response)
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    if any(d.get("reason") == "API_KEY_INVALID" for d in details) or response.status_code == 401:
        return classify_response(response)
    if response.status_code == 429:
        return classify_response(response)
    return classify_file_response(response)


def classify_operation_error(error: dict[str, Any]) -> ProviderError:
    """A finished operation's ``error`` (google.rpc.Status)."""
    code = error.get("code")
    message = str(error.get("message") or "").strip()
    message = message or "Google reported the video generation as failed without a reason."
    label = f"rpc_{code}" if isinstance(code, int) else None
    if any(word in message.lower() for word in _SAFETY_WORDS):
        return ProviderError(ErrorClass.MODERATION, message, code=label)
    if code in _TRANSIENT_CODES:
        return ProviderError(ErrorClass.OVERLOADED, message, code=label)
    if code in _INVALID_CODES:
        return ProviderError(ErrorClass.INVALID_REQUEST, message, code=label)
    if code in _AUTH_CODES:
        return ProviderError(ErrorClass.AUTH, message, code=label)
    return ProviderError(ErrorClass.PROVIDER_FAILED, message, code=label)


def video_uri(body: dict[str, Any]) -> str | None:
    response = body.get("response")
    generated = response.get("generateVideoResponse") if isinstance(response, dict) else None
    samples = generated.get("generatedSamples") if isinstance(generated, dict) else None
    if not isinstance(samples, list) or not samples or not isinstance(samples[0], dict):
        return None
    video = samples[0].get("video")
    uri = video.get("uri") if isinstance(video, dict) else None
    return uri if isinstance(uri, str) and uri else None


def veo_operation_started(
    answer: Any, request: VideoRequest, *, name_ok: Callable[[str], bool] = bool
) -> ProviderJob:
    """The job a ``predictLongRunning`` answer started: its operation's name, queued."""
    name = answer.get("name") if isinstance(answer, dict) else None
    if not isinstance(name, str) or not name_ok(name):
        raise ProviderError(
            ErrorClass.PROVIDER_FAILED, "Google accepted the request but named no operation."
        )
    return ProviderJob(
        id=name,
        status=JobStatus.QUEUED,
        model=request.model,
        prompt=request.prompt,
        size=request.size,
        seconds=request.seconds,
        raw=answer,
    )


def parse_operation(body: Any) -> ProviderJob:
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise ProviderError(
            ErrorClass.PROVIDER_FAILED, "Google answered with something that is not an operation."
        )
    name: str = body["name"]
    model = name.split("/")[1] if name.startswith("models/") and name.count("/") >= 3 else ""
    job = ProviderJob(id=name, status=JobStatus.IN_PROGRESS, model=model, raw=body)
    if not body.get("done"):
        # No queued/running distinction and no progress on this surface.
        return job
    response = body.get("response")
    generated = response.get("generateVideoResponse") if isinstance(response, dict) else None
    return veo_operation_done(
        job,
        body,
        has_video=video_uri(body) is not None,
        filtered=generated.get("raiMediaFilteredReasons") if isinstance(generated, dict) else None,
    )


def veo_operation_done(
    job: ProviderJob, body: dict[str, Any], *, has_video: bool, filtered: Any
) -> ProviderJob:
    """A finished Veo operation: failed with its error, completed with its video, or, done
    without one, blocked by the safety filters (``filtered``: their reasons, as Google lists
    them; "you will not be charged")."""
    job.status = JobStatus.FAILED
    error = body.get("error")
    if isinstance(error, dict):
        job.error = classify_operation_error(error)
        return job
    if has_video:
        job.status, job.progress = JobStatus.COMPLETED, 100
        return job
    words = [str(r) for r in filtered if r] if isinstance(filtered, list) else []
    job.error = ProviderError(
        ErrorClass.MODERATION,
        " ".join(words) or "Google's safety filters blocked the video; none was returned.",
        code="rai_media_filtered",
    )
    return job


class GeminiVeoAdapter(HTTPAdapter):
    catalog = CATALOG
    classify = staticmethod(classify_response)
    provider_name = "Google"

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"x-goog-api-key": api_key}

    @staticmethod
    def normalise_base_url(base_url: str) -> str:
        # GOOGLE_GEMINI_BASE_URL is the host's root; the SDK adds the API version itself.
        base_url = base_url.rstrip("/")
        if base_url.endswith("/" + API_VERSION):
            base_url = base_url[: -len(API_VERSION) - 1]
        return base_url

    def create(self, request: VideoRequest) -> ProviderJob:
        spec = self.catalog.get(request.model)
        aspect_ratio, resolution = size_parts(request.size)
        instance: dict[str, Any] = {"prompt": request.prompt}
        parameters: dict[str, Any] = {
            "aspectRatio": aspect_ratio,
            "resolution": resolution,
            "durationSeconds": request.seconds,
        }
        if request.seed is not None:
            raise self._unsupported("take a seed (Vertex AI only)")
        if request.audio is not None:
            raise self._unsupported("switch Veo's sound off (Vertex AI only)")
        if request.characters:
            raise self._unsupported("use characters")
        parameters.update(self._model_options(request, {"negative_prompt": "negativePrompt"}))
        if request.operation is Operation.EXTEND:
            if spec is None or not spec.can_extend:
                raise self._unsupported(f"extend {request.model} videos")
            if request.images:
                raise self._unsupported("take images with an extension")
            instance["video"] = {"uri": self._source_video_uri(request)}
            parameters["durationSeconds"] = _EXTENSION_DURATION
        elif request.operation is not Operation.GENERATE:
            raise self._unsupported(f"{request.operation.value} a video")
        else:
            instance.update(self._images(request))
        response = self._http.request(
            "POST",
            f"{API_VERSION}/models/{request.model}:predictLongRunning",
            creates=True,
            json={"instances": [instance], "parameters": parameters},
        )
        return veo_operation_started(self._json(response), request)

    def _images(self, request: VideoRequest) -> dict[str, Any]:
        return veo_image_fields(request, self.catalog.get(request.model), self._unsupported)

    def _source_video_uri(self, request: VideoRequest) -> str:
        """The file URI of the Veo output an extension continues, from its operation."""
        if not request.source_job_id:
            raise ProviderError(ErrorClass.INVALID_REQUEST, "The video to extend is not named.")
        try:
            parent = self.retrieve(request.source_job_id)
        except ProviderError as error:
            # Only the parent was read: no job can have been created.
            error.create_outcome = CreateOutcome.NOT_CREATED
            raise
        uri = video_uri(parent.raw) if parent.status is JobStatus.COMPLETED else None
        if uri is None:
            raise ProviderError(
                ErrorClass.INVALID_REQUEST,
                "Google no longer has a finished video for the operation to extend.",
                create_outcome=CreateOutcome.NOT_CREATED,
            )
        return uri

    def retrieve(self, job_id: str) -> ProviderJob:
        response = self._http.request("GET", f"{API_VERSION}/{job_id.lstrip('/')}")
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
        uri = video_uri(job.raw)
        if uri is None:
            raise ProviderError(
                ErrorClass.NOT_FOUND, f"Operation {job_id} has no video to download yet."
            )
        return self._download_url(uri, destination=destination, classify=classify_file)
