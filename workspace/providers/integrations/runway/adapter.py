"""The Runway API (``https://api.dev.runwayml.com``), as runwayml/sdk-python v5.13.0 and
docs.dev.runwayml.com describe it.

- Every call sends ``Authorization: Bearer <RUNWAYML_API_SECRET>`` and the required
  ``X-Runway-Version: 2024-11-06``.
- ``create`` posts to ``/v1/text_to_video``, or with a first frame to ``/v1/image_to_video``
  (``promptImage``: a data URI of at most 5 MB, or ``[{uri, position}]`` with a last frame), and
  gets back a task id, which is the job id as is. ``seed``, ``audio`` and ``negativePrompt`` go
  on the wire only where the catalog says the model takes them.
- ``retrieve`` reads ``/v1/tasks/{id}``: PENDING and THROTTLED are queued, RUNNING has a 0-1
  ``progress`` (reported 0-100), SUCCEEDED has output URLs, FAILED a ``failureCode``.
- ``download`` reads the task again for a fresh output URL (they expire within 24-48 hours) and
  fetches it from Runway's CDN without the key.
- Runway has no endpoint that lists tasks, so ``list_recent`` cannot work (``can_list`` False).
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
    iso_timestamp,
)
from workspace.providers.errors import ErrorClass, ProviderError
from workspace.providers.http import classify_file_response, retry_after_seconds
from workspace.providers.integrations.runway.catalog import CATALOG

API_VERSION = "2024-11-06"
_STATUSES = {
    "PENDING": JobStatus.QUEUED,
    # Accepted, but waiting for the organisation's concurrency limit: not an error.
    "THROTTLED": JobStatus.QUEUED,
    "RUNNING": JobStatus.IN_PROGRESS,
    "SUCCEEDED": JobStatus.COMPLETED,
    "FAILED": JobStatus.FAILED,
    "CANCELLED": JobStatus.CANCELED,
}
# Statuses whose ``cost`` is final (the others carry only ``estimatedCost``).
_FINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
# A hostile or broken answer must not write an absurd figure into the ledger: no single task
# costs more than this ($100,000).
_COST_MAX_CREDITS = 10_000_000
# The insufficient-credit answer's shape is undocumented; its words are what is known.
_CREDIT_WORDS = ("enough credits", "insufficient credit", "credit balance", "spend limit")
# A data URI in promptImage may carry at most 5 MB [O: runwayml/skills rw-api-reference].
DATA_URI_MAX_BYTES = 5 * 1024 * 1024


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, str) and error.strip():
            return error.strip()
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"]).strip()
    text = response.text.strip()[:300]
    return text or f"HTTP {response.status_code} {response.reason_phrase}"


def classify_response(response: httpx.Response) -> ProviderError:
    """Runway's HTTP answers (docs.dev.runwayml.com/errors/errors), classified once."""
    message = _message(response)
    status = response.status_code
    retry_after = retry_after_seconds(response.headers)

    def error(error_class: ErrorClass) -> ProviderError:
        return ProviderError(error_class, message, retry_after=retry_after)

    if any(word in message.lower() for word in _CREDIT_WORDS) and status < 500:
        return error(ErrorClass.QUOTA_EXHAUSTED)
    # A 429 is also the daily generation cap on task creation: waiting is the remedy either
    # way. 502/503 are "shedding load", 504 "overloaded".
    return error(classify_status(status))


def classify_failure(code: str | None, failure: str | None) -> ProviderError:
    """A FAILED task's ``failureCode`` (docs.dev.runwayml.com/api-details/task-failures)."""
    code = code or ""
    message = failure or "Runway reported the task as failed without a reason."
    if code.startswith("SAFETY.") or code.startswith("INPUT_PREPROCESSING.SAFETY"):
        # "You should not retry these generations."
        return ProviderError(ErrorClass.MODERATION, message, code=code)
    if code.startswith("INTERNAL.BAD_OUTPUT"):
        # "You may retry these generations, but they are not likely to succeed."
        return ProviderError(ErrorClass.PROVIDER_FAILED, message, code=code)
    if code == "INPUT_PREPROCESSING.INTERNAL" or code == "INTERNAL" or code.startswith("INTERNAL."):
        # Runway's own trouble (e.g. moderation could not run): worth another try.
        return ProviderError(ErrorClass.OVERLOADED, message, code=code)
    if code.startswith("ASSET.") or code.startswith("INPUT_PREPROCESSING."):
        return ProviderError(ErrorClass.INVALID_REQUEST, message, code=code)
    return ProviderError(ErrorClass.PROVIDER_FAILED, message, code=code or None)


def parse_task(body: Any) -> ProviderJob:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise ProviderError(
            ErrorClass.PROVIDER_FAILED, "Runway answered with something that is not a task."
        )
    status_text = str(body.get("status") or "")
    status = _STATUSES.get(status_text)
    failure: ProviderError | None = None
    if status is None:
        # An unknown word is a failure, never "still running": no job waits forever on it.
        status = JobStatus.FAILED
        failure = ProviderError(
            ErrorClass.PROVIDER_FAILED, f"Runway reported an unknown task status {status_text!r}."
        )
    elif status is JobStatus.FAILED:
        code, text = body.get("failureCode"), body.get("failure")
        failure = classify_failure(
            code if isinstance(code, str) else None, text if isinstance(text, str) else None
        )
    elif status is JobStatus.CANCELED:
        # Reelhouse never cancels a sent task, so someone else did with the key. Runway keeps
        # the charge when the cancel found it RUNNING (SDK 5.24 ``tasks.delete``): a provider
        # failure, which Runway's billing policy counts unless ``cost`` says otherwise.
        failure = ProviderError(
            ErrorClass.PROVIDER_FAILED, "The task was canceled at Runway, outside Reelhouse."
        )
    elif status is JobStatus.COMPLETED and not _output_url(body):
        status = JobStatus.FAILED
        failure = ProviderError(
            ErrorClass.PROVIDER_FAILED, "Runway reported success but gave no output URL."
        )
    progress = 0
    if status is JobStatus.COMPLETED:
        progress = 100
    elif isinstance(body.get("progress"), int | float):
        progress = max(0, min(100, round(float(body["progress"]) * 100)))
    return ProviderJob(
        id=body["id"],
        status=status,
        progress=progress,
        created_at=iso_timestamp(body.get("createdAt")),
        error=failure,
        reported_cost_cents=_final_cost(body) if status_text in _FINAL else None,
        raw=body,
    )


def _final_cost(body: dict[str, Any]) -> int | None:
    """A finished task's ``cost.credits`` in cents (1 credit = $0.01), if it is a sane figure.

    SDK 5.24 types it as a whole number of credits, "Fully refunded tasks report 0". Anything
    else (missing, negative, fractional, absurd) is ignored: the list price then stands.
    """
    cost = body.get("cost")
    credits = cost.get("credits") if isinstance(cost, dict) else None
    if isinstance(credits, bool) or not isinstance(credits, int | float):
        return None
    if credits != int(credits) or not 0 <= credits <= _COST_MAX_CREDITS:
        return None
    return int(credits)


def _output_url(body: dict[str, Any]) -> str | None:
    output = body.get("output")
    if isinstance(output, list) and output and isinstance(output[0], str):
        return output[0]
    return None


class RunwayAdapter(HTTPAdapter):
    catalog = CATALOG
    classify = staticmethod(classify_response)
    provider_name = "Runway"

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}", "X-Runway-Version": API_VERSION}

    def create(self, request: VideoRequest) -> ProviderJob:
        body: dict[str, Any] = {
            "model": request.model,
            "promptText": request.prompt,
            # Runway names the output size as a pixel ratio: 1280x720 -> "1280:720".
            "ratio": request.size.replace("x", ":"),
            "duration": request.seconds,
        }
        body.update(self._options(request))
        endpoint = "v1/text_to_video"
        prompt_image = self._prompt_image(request)
        if prompt_image is not None:
            endpoint = "v1/image_to_video"
            body["promptImage"] = prompt_image
        response = self._http.request("POST", endpoint, creates=True, json=body)
        answer = self._json(response)
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
            raise ProviderError(
                ErrorClass.PROVIDER_FAILED, "Runway accepted the task but gave no task id."
            )
        return ProviderJob(
            id=answer["id"],
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
            request, {"audio": "audio", "seed": "seed", "negative_prompt": "negativePrompt"}
        )

    def _prompt_image(self, request: VideoRequest) -> str | list[dict[str, str]] | None:
        spec = self.catalog.get(request.model)
        first, last = request.image("first_frame"), request.image("last_frame")
        if request.images_for("reference"):
            raise self._unsupported("take reference images")
        if last is not None and (first is None or spec is None or not spec.supports_last_frame):
            raise self._unsupported(f"end {request.model} on a given frame")
        if first is None:
            return None
        if spec is None or not spec.supports_input_reference:
            raise self._unsupported(f"start {request.model} from an image")
        for frame in (first, last):
            if frame is not None and len(frame.content) > DATA_URI_MAX_BYTES:
                raise ProviderError(
                    ErrorClass.INVALID_REQUEST,
                    f"Runway takes images of at most 5 MB inline; this one is "
                    f"{len(frame.content) / 1024 / 1024:.1f} MB.",
                )
        if last is None:
            return first.data_uri()
        return [
            {"uri": first.data_uri(), "position": "first"},
            {"uri": last.data_uri(), "position": "last"},
        ]

    def retrieve(self, job_id: str) -> ProviderJob:
        response = self._http.request("GET", f"v1/tasks/{job_id}")
        return parse_task(self._json(response))

    def download(
        self,
        job_id: str,
        *,
        variant: str,
        destination: BinaryIO,
        retrieved: ProviderJob | None = None,
    ) -> str:
        # Output URLs expire; the task gives a fresh one each time it is read (the check that
        # saw it finish has just read it).
        job = self._job_to_download(job_id, variant=variant, retrieved=retrieved)
        url = _output_url(job.raw)
        if job.status is not JobStatus.COMPLETED or url is None:
            raise ProviderError(
                ErrorClass.NOT_FOUND, f"Runway task {job_id} has no output to download yet."
            )
        return self._download_url(url, destination=destination, classify=classify_file_response)
