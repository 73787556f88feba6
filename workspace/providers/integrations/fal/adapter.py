"""The fal.ai queue (``https://queue.fal.run``), as fal-ai/fal's ``fal_client`` and fal.ai/docs
describe it, for the Veo 3.1 endpoints in the catalog.

- Every call sends ``Authorization: Key <FAL_KEY>`` (a ``key_id:key_secret`` pair works as is).
- ``create`` submits ``POST /{endpoint_id}`` with the model's own input JSON; a first frame goes
  to the model's ``…/image-to-video`` endpoint as ``image_url`` (a data URI). ``generate_audio``,
  ``seed`` and ``negative_prompt`` are sent only where the catalog says the model takes them.
- **Job ids** are ``{endpoint_id}/requests/{request_id}``, e.g.
  ``fal-ai/veo3.1/requests/5f0e…``: the endpoint gives the model back and the request id the
  queue's URLs. Status and result live under the *app* (``owner/alias``, never an endpoint's
  sub-path such as ``…/image-to-video``, exactly as the SDK's ``from_request_id`` builds them):
  ``/{owner}/{alias}/requests/{request_id}[/status]``.
- ``retrieve`` reads the status (IN_QUEUE / IN_PROGRESS / COMPLETED; no percentage). A
  COMPLETED request that reports an ``error`` failed; otherwise its result is read, and a result
  that is an error answer (422 ``content_policy_violation``, …) is the job's failure.
- ``download`` reads the result for ``video.url`` and fetches it from fal's CDN without the key.
- The queue API cannot list requests (``can_list`` False).
"""

from __future__ import annotations

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
from workspace.providers.errors import ErrorClass, ProviderError
from workspace.providers.http import classify_file_response, retry_after_seconds
from workspace.providers.integrations.fal.catalog import CATALOG

# App namespaces whose ids have three parts before the endpoint path (fal_client AppId).
_NAMESPACES = ("workflows", "comfy")
# fal's infrastructure errors (X-Fal-Error-Type): the request never ran to completion.
_TRANSIENT_TYPES = ("runner_", "request_timeout", "startup_timeout")
_CANCELED_TYPES = ("request_cancelled", "request_canceled", "cancelled", "canceled")
# An account below its balance threshold is locked (status code undocumented).
_LOCK_WORDS = ("locked", "exhausted balance", "insufficient", "top up", "billing")


# The endpoint variant that takes a first frame, under each model's own endpoint id.
IMAGE_TO_VIDEO = "/image-to-video"


def model_of(endpoint_id: str) -> str:
    """The catalog model an endpoint belongs to (``…/image-to-video`` is a variant of it)."""
    return endpoint_id.removesuffix(IMAGE_TO_VIDEO)


def job_id_for(endpoint_id: str, request_id: str) -> str:
    return f"{endpoint_id}/requests/{request_id}"


def split_job_id(job_id: str, default_endpoint: str) -> tuple[str, str]:
    """(endpoint id, request id); a bare request id is taken to belong to the default model."""
    endpoint, separator, request_id = job_id.rpartition("/requests/")
    if not separator or not endpoint or not request_id:
        return default_endpoint, job_id
    return endpoint, request_id


def app_path(endpoint_id: str) -> str:
    """``fal-ai/veo3.1/fast`` -> ``fal-ai/veo3.1``."""
    parts = endpoint_id.split("/")
    keep = 3 if parts[0] in _NAMESPACES else 2
    return "/".join(parts[:keep])


def _fields(response: httpx.Response) -> tuple[str, list[str], str | None, str | None]:
    """(message, typed error types, infrastructure error_type, cancel-style ``status``)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    types: list[str] = []
    message = ""
    error_type = response.headers.get("x-fal-error-type")
    status_word = None
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str):
            message = detail.strip()
        elif isinstance(detail, list):
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    if isinstance(item.get("type"), str):
                        types.append(item["type"])
                    loc = item.get("loc")
                    where = ".".join(str(p) for p in loc[1:]) if isinstance(loc, list) else ""
                    text = str(item.get("msg") or "").strip()
                    parts.append(f"{where}: {text}" if where and text else text)
            message = "; ".join(p for p in parts if p)
        if isinstance(body.get("error_type"), str):
            error_type = body["error_type"]
        if isinstance(body.get("status"), str):
            status_word = body["status"]
    if not message:
        message = status_word or response.text.strip()[:300]
    return (
        message or f"HTTP {response.status_code} {response.reason_phrase}",
        types,
        error_type,
        status_word,
    )


def classify_response(response: httpx.Response) -> ProviderError:
    """fal's HTTP answers (fal.ai/docs/model-apis/errors, request-errors), classified once."""
    message, types, error_type, status_word = _fields(response)
    status = response.status_code
    code = (types[0] if types else None) or error_type or status_word

    def error(error_class: ErrorClass) -> ProviderError:
        return ProviderError(
            error_class, message, code=code, retry_after=retry_after_seconds(response.headers)
        )

    if "content_policy_violation" in types or error_type == "content_policy_violation":
        return error(ErrorClass.MODERATION)
    if status == 402 or (status == 403 and any(w in message.lower() for w in _LOCK_WORDS)):
        return error(ErrorClass.QUOTA_EXHAUSTED)
    return error(classify_status(status))


def classify_request_error(error_type: str | None, message: str | None) -> ProviderError:
    """A COMPLETED request that reports ``error``/``error_type`` in its status."""
    kind = error_type or ""
    text = message or "fal reported the request as failed without a reason."
    if kind == "content_policy_violation":
        return ProviderError(ErrorClass.MODERATION, text, code=kind)
    if kind.startswith(_TRANSIENT_TYPES):
        return ProviderError(ErrorClass.OVERLOADED, text, code=kind)
    return ProviderError(ErrorClass.PROVIDER_FAILED, text, code=kind or None)


def _video_url(result: Any) -> str | None:
    video = result.get("video") if isinstance(result, dict) else None
    url = video.get("url") if isinstance(video, dict) else None
    return url if isinstance(url, str) and url else None


class FalQueueAdapter(HTTPAdapter):
    catalog = CATALOG
    classify = staticmethod(classify_response)
    provider_name = "fal"

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"Authorization": f"Key {api_key}"}

    @staticmethod
    def normalise_base_url(base_url: str) -> str:
        # FAL_QUEUE_RUN_HOST, the SDK's own variable, holds a bare host such as queue.fal.run.
        return base_url if "://" in base_url else "https://" + base_url

    def _request_path(self, job_id: str) -> tuple[str, str]:
        endpoint, request_id = split_job_id(job_id, CATALOG.default.id)
        return endpoint, f"{app_path(endpoint)}/requests/{request_id}"

    def create(self, request: VideoRequest) -> ProviderJob:
        aspect_ratio, resolution = size_parts(request.size)
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "aspect_ratio": aspect_ratio,
            "resolution": resolution,
            "duration": f"{request.seconds}s",  # a string enum: "4s", "6s", "8s"
        }
        body.update(self._options(request))
        endpoint = request.model
        first = self._first_frame(request)
        if first is not None:
            endpoint = request.model + IMAGE_TO_VIDEO
            body["image_url"] = first
        response = self._http.request("POST", endpoint, creates=True, json=body)
        answer = self._json(response)
        request_id = answer.get("request_id") if isinstance(answer, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise ProviderError(
                ErrorClass.PROVIDER_FAILED, "fal accepted the request but gave no request id."
            )
        return ProviderJob(
            id=job_id_for(endpoint, request_id),
            status=JobStatus.QUEUED,
            model=request.model,
            prompt=request.prompt,
            size=request.size,
            seconds=request.seconds,
            raw=answer,
        )

    def _options(self, request: VideoRequest) -> dict[str, Any]:
        if request.operation is not Operation.GENERATE:
            raise self._unsupported(f"{request.operation.value} a video")
        if request.characters:
            raise self._unsupported("use characters")
        return self._model_options(
            request,
            {"audio": "generate_audio", "seed": "seed", "negative_prompt": "negative_prompt"},
        )

    def _first_frame(self, request: VideoRequest) -> str | None:
        spec = self.catalog.get(request.model)
        if request.image("last_frame") is not None:
            raise self._unsupported(f"end {request.model} on a given frame")
        if request.images_for("reference"):
            raise self._unsupported(f"take reference images for {request.model}")
        first = request.image("first_frame")
        if first is None:
            return None
        if spec is None or not spec.supports_input_reference:
            raise self._unsupported(f"start {request.model} from an image")
        return first.data_uri()

    def retrieve(self, job_id: str) -> ProviderJob:
        endpoint, path = self._request_path(job_id)
        response = self._http.request("GET", f"{path}/status", params={"logs": "0"})
        body = self._json(response)
        if not isinstance(body, dict):
            raise ProviderError(ErrorClass.PROVIDER_FAILED, "fal's status was not an object.")
        job = ProviderJob(id=job_id, status=JobStatus.QUEUED, model=model_of(endpoint), raw=body)
        status = body.get("status")
        if status == "IN_QUEUE":
            return job
        if status == "IN_PROGRESS":
            job.status = JobStatus.IN_PROGRESS
            return job
        if status != "COMPLETED":
            job.status = JobStatus.FAILED
            job.error = ProviderError(
                ErrorClass.PROVIDER_FAILED, f"fal reported an unknown request status {status!r}."
            )
            return job
        error_type = body.get("error_type")
        error_text = body.get("error")
        if error_type in _CANCELED_TYPES:
            job.status = JobStatus.CANCELED
            return job
        if error_text or error_type:
            job.status = JobStatus.FAILED
            job.error = classify_request_error(
                error_type if isinstance(error_type, str) else None,
                error_text if isinstance(error_text, str) else None,
            )
            return job
        try:
            result = self._result(path)
        except ProviderError as error:
            if error.http_status is not None and error.http_status < 500:
                # The request finished and its result is an error answer: the job failed.
                job.status = JobStatus.FAILED
                job.error = error
                return job
            raise
        job.raw = {**body, "result": result}
        if _video_url(result) is None:
            job.status = JobStatus.FAILED
            job.error = ProviderError(
                ErrorClass.PROVIDER_FAILED, "fal finished the request but returned no video."
            )
            return job
        job.status, job.progress = JobStatus.COMPLETED, 100
        return job

    def _result(self, path: str) -> Any:
        return self._json(self._http.request("GET", path))

    def download(
        self,
        job_id: str,
        *,
        variant: str,
        destination: BinaryIO,
        retrieved: ProviderJob | None = None,
    ) -> str:
        self._check_variant(variant)
        _, path = self._request_path(job_id)
        url = _video_url(self._result(path))
        if url is None:
            raise ProviderError(ErrorClass.PROVIDER_FAILED, "fal's result has no video URL.")
        return self._download_url(url, destination=destination, classify=classify_file_response)
