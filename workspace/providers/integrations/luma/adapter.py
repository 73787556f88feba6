"""The Luma Agents API (``https://agents.lumalabs.ai/v1``), as lumalabs/luma-agents-python 0.5.0
and docs.agents.lumalabs.ai describe it. This is the surface Luma's own docs point new code to;
the older Dream Machine API (``api.lumalabs.ai/dream-machine/v1``, SDK ``lumaai``) is not used.

- Every call sends ``Authorization: Bearer <LUMA_AGENTS_API_KEY>``; the base URL includes ``/v1``
  (``LUMA_BASE_URL`` in the SDK).
- ``create`` posts ``{"model": "ray-3.2", "type": "video", "prompt", "aspect_ratio",
  "video": {"resolution", "duration"}}`` to ``/generations``; the answer is the generation,
  whose ``id`` is the job id. A first and last frame go in ``video.start_frame``/``end_frame`` as
  ``{"data": <base64>, "media_type"}``; an extension names the earlier generation there
  (``{"generation_id"}``).
- ``retrieve`` reads ``/generations/{id}``: ``queued``, ``processing``, ``completed`` (with
  ``output[].url``, presigned for one hour) or ``failed`` (with ``failure_code`` and
  ``failure_reason``). Luma reports no progress.
- ``download`` takes the presigned URL from the generation the poll just read (or reads it again)
  and fetches it without the key.
- The API has only those two endpoints: no list (``can_list`` False, inherited).
"""

from __future__ import annotations

import base64
from typing import Any, BinaryIO

import httpx

from workspace.providers.adapters.base import (
    HTTPAdapter,
    JobStatus,
    Operation,
    ProviderJob,
    VideoRequest,
    classify_status,
    iso_timestamp,
)
from workspace.providers.catalog import size_parts
from workspace.providers.errors import CreateOutcome, ErrorClass, ProviderError
from workspace.providers.http import classify_file_response, retry_after_seconds
from workspace.providers.integrations.luma.catalog import CATALOG

_STATES = {
    "queued": JobStatus.QUEUED,
    "processing": JobStatus.IN_PROGRESS,
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
}
# docs.agents.lumalabs.ai/guides/error-handling, "Asynchronous failures". Luma calls
# generation_failed and output_not_found retryable ("retry same request"): its own trouble.
_FAILURES = {
    "content_moderated": ErrorClass.MODERATION,
    "generation_failed": ErrorClass.OVERLOADED,
    "output_not_found": ErrorClass.OVERLOADED,
    "rate_limited": ErrorClass.RATE_LIMITED,
    "budget_exhausted": ErrorClass.QUOTA_EXHAUSTED,
    "image_too_large": ErrorClass.INVALID_REQUEST,
    "unsupported_format": ErrorClass.INVALID_REQUEST,
    "corrupt_input": ErrorClass.INVALID_REQUEST,
    "invalid_request": ErrorClass.INVALID_REQUEST,
}


def _message(response: httpx.Response) -> str:
    """Luma's ``detail``: a sentence, or (unconfirmed) a validation list of ``{loc, msg}``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str) and detail.strip():
        return detail.strip()[:500]
    if isinstance(detail, list):
        parts = [
            str(item.get("msg")) for item in detail if isinstance(item, dict) and item.get("msg")
        ]
        if parts:
            return "; ".join(parts)[:500]
    text = response.text.strip()[:300]
    return text or f"HTTP {response.status_code} {response.reason_phrase}"


def classify_response(response: httpx.Response) -> ProviderError:
    """Luma's HTTP answers (docs.agents.lumalabs.ai/guides/error-handling), classified once."""
    message = _message(response)
    status = response.status_code
    # 402 is Luma's "insufficient balance". Of the rest, 403 is a suspended or deactivated client
    # (auth: an admin has to act, as for a bad key); 413 and 422 (media too large, rejected
    # combination, bad media) are invalid requests; 429 carries Retry-After; 502/503 say "retry
    # with backoff".
    error_class = ErrorClass.QUOTA_EXHAUSTED if status == 402 else classify_status(status)
    return ProviderError(error_class, message, retry_after=retry_after_seconds(response.headers))


def classify_failure(code: str | None, reason: str | None) -> ProviderError:
    """A failed generation's ``failure_code``; an unknown code is a plain provider failure."""
    message = reason or "Luma reported the generation as failed without a reason."
    return ProviderError(
        _FAILURES.get(code or "", ErrorClass.PROVIDER_FAILED), message, code=code or None
    )


def _video_url(body: dict[str, Any]) -> str | None:
    """The first output that is a video (an EXR export may sit beside it)."""
    output = body.get("output")
    if not isinstance(output, list):
        return None
    for item in output:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not item["url"]:
            continue
        if str(item.get("type") or "video").startswith("video"):
            return str(item["url"])
    return None


def parse_generation(body: Any) -> ProviderJob:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
        raise ProviderError(
            ErrorClass.PROVIDER_FAILED, "Luma answered with something that is not a generation."
        )
    state = str(body.get("state") or "")
    status = _STATES.get(state)
    failure: ProviderError | None = None
    if status is None:
        # An unknown word is a failure, never "still running": no job waits forever on it.
        status = JobStatus.FAILED
        failure = ProviderError(
            ErrorClass.PROVIDER_FAILED, f"Luma reported an unknown generation state {state!r}."
        )
    elif status is JobStatus.FAILED:
        code, reason = body.get("failure_code"), body.get("failure_reason")
        failure = classify_failure(
            code if isinstance(code, str) else None, reason if isinstance(reason, str) else None
        )
    elif status is JobStatus.COMPLETED and _video_url(body) is None:
        status = JobStatus.FAILED
        failure = ProviderError(
            ErrorClass.PROVIDER_FAILED, "Luma reported success but gave no video URL."
        )
    model = body.get("model")
    return ProviderJob(
        id=body["id"],
        status=status,
        progress=100 if status is JobStatus.COMPLETED else 0,
        model=model if isinstance(model, str) else "",
        created_at=iso_timestamp(body.get("created_at")),
        error=failure,
        raw=body,
    )


class LumaAdapter(HTTPAdapter):
    catalog = CATALOG
    classify = staticmethod(classify_response)
    provider_name = "Luma"

    def create(self, request: VideoRequest) -> ProviderJob:
        aspect_ratio, resolution = size_parts(request.size)
        video: dict[str, Any] = {"resolution": resolution, "duration": f"{request.seconds}s"}
        video.update(self._frames(request))
        body = {
            "model": request.model,
            "type": "video",
            "prompt": request.prompt,
            "aspect_ratio": aspect_ratio,
            "video": video,
        }
        response = self._http.request("POST", "generations", creates=True, json=body)
        try:
            job = parse_generation(self._json(response))
        except ProviderError as error:
            # Luma said yes (2xx) but not to what: a paid generation may exist all the same.
            error.create_outcome = CreateOutcome.AMBIGUOUS
            raise
        job.model = job.model or request.model
        job.prompt, job.size, job.seconds = request.prompt, request.size, request.seconds
        return job

    def _frames(self, request: VideoRequest) -> dict[str, Any]:
        """``start_frame``/``end_frame`` as ``ImageRef``s: inline images, or for an extension the
        earlier generation's id ("generation_id … on video.start_frame / video.end_frame for
        video extension", luma-agents ImageRefParam)."""
        spec = self.catalog.get(request.model)
        if request.audio is not None or request.seed is not None or request.negative_prompt:
            raise self._unsupported(f"take sound, seed or negative prompt for {request.model}")
        if request.characters:
            raise self._unsupported("use characters")
        if request.images_for("reference"):
            raise self._unsupported(f"take reference images for {request.model}")
        first, last = request.image("first_frame"), request.image("last_frame")
        if request.operation is Operation.EXTEND:
            if spec is None or not spec.can_extend or not request.source_job_id:
                raise self._unsupported(f"extend {request.model} videos")
            if request.images:
                raise self._unsupported("take images with an extension")
            return {"start_frame": {"generation_id": request.source_job_id}}
        if request.operation is not Operation.GENERATE:
            raise self._unsupported(f"{request.operation.value} a video")
        frames: dict[str, Any] = {}
        for name, image, allowed in (
            ("start_frame", first, spec is not None and spec.supports_input_reference),
            ("end_frame", last, spec is not None and spec.supports_last_frame),
        ):
            if image is None:
                continue
            if not allowed:
                raise self._unsupported(f"take a {name.replace('_', ' ')} for {request.model}")
            frames[name] = {
                "data": base64.b64encode(image.content).decode(),
                "media_type": image.content_type,
            }
        if frames and spec is not None:
            lengths = spec.seconds_with_images.get("first_frame")
            if lengths and request.seconds not in lengths:
                raise self._unsupported(f"make {request.seconds}-second clips from frames")
        return frames

    def retrieve(self, job_id: str) -> ProviderJob:
        response = self._http.request("GET", f"generations/{job_id}")
        return parse_generation(self._json(response))

    def download(
        self,
        job_id: str,
        *,
        variant: str,
        destination: BinaryIO,
        retrieved: ProviderJob | None = None,
    ) -> str:
        # Output URLs are presigned for an hour; the generation gives a fresh one each time it is
        # read, and the check that saw it finish has just read it.
        job = self._job_to_download(job_id, variant=variant, retrieved=retrieved)
        url = _video_url(job.raw)
        if job.status is not JobStatus.COMPLETED or url is None:
            raise ProviderError(
                ErrorClass.NOT_FOUND, f"Luma generation {job_id} has no video to download yet."
            )
        return self._download_url(url, destination=destination, classify=classify_file_response)
