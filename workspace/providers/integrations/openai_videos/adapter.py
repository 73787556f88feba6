"""The OpenAI Videos protocol (``/v1/videos``), as in the official OpenAPI excerpt.

OpenAI itself shut this API down on 2026-09-24, but gateways still serve the same protocol, so
the adapter speaks it to whatever ``base_url`` the channel names.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from workspace.providers.adapters.base import (
    HTTPAdapter,
    JobStatus,
    Operation,
    ProviderCharacter,
    ProviderJob,
    VideoRequest,
    classify_status,
)
from workspace.providers.errors import ErrorClass, ProviderError
from workspace.providers.http import retry_after_seconds
from workspace.providers.integrations.openai_videos.catalog import CATALOG

# Billing and quota failures share HTTP 429 with rate limits; no retry fixes these.
_QUOTA_CODES = {
    "insufficient_quota",
    "credit_balance_exhausted",
    "organization_spend_limit_exceeded",
    "project_spend_limit_exceeded",
    "organization_usage_limit_exceeded",
    "billing_hard_limit_reached",
}
_MODERATION_CODES = {"moderation_blocked", "content_policy_violation", "content_filter"}
_STATUSES = {
    "queued": JobStatus.QUEUED,
    "in_progress": JobStatus.IN_PROGRESS,
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
}
# Reconciliation pages back through the provider's list at most this far (100 jobs a page).
MAX_LIST_PAGES = 20


def _error_fields(response: httpx.Response) -> tuple[str, str | None, str | None]:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "").strip()
        code = error.get("code")
        kind = error.get("type")
        return (
            message or f"HTTP {response.status_code}",
            str(code) if code else None,
            str(kind) if kind else None,
        )
    text = response.text.strip()[:300]
    return (text or f"HTTP {response.status_code} {response.reason_phrase}", None, None)


def classify_response(response: httpx.Response) -> ProviderError:
    message, code, kind = _error_fields(response)
    status = response.status_code
    retry_after = retry_after_seconds(response.headers)

    def error(error_class: ErrorClass) -> ProviderError:
        return ProviderError(error_class, message, code=code, retry_after=retry_after)

    if status == 429 and (code in _QUOTA_CODES or kind in _QUOTA_CODES):
        return error(ErrorClass.QUOTA_EXHAUSTED)
    if status == 404 and (code == "video_expired" or "expired" in message.lower()):
        return error(ErrorClass.EXPIRED)
    error_class = classify_status(status)
    if error_class is ErrorClass.INVALID_REQUEST and code in _MODERATION_CODES:
        return error(ErrorClass.MODERATION)
    return error(error_class)


def classify_job_failure(error: dict[str, Any] | None) -> ProviderError:
    code = str(error.get("code") or "") if error else ""
    message = str(error.get("message") or "") if error else ""
    message = message or "The provider reported the job as failed without a reason."
    if code in _MODERATION_CODES:
        return ProviderError(ErrorClass.MODERATION, message, code=code)
    if code in ("processing_error", "server_error", "server_is_overloaded"):
        # "We're under heavy load": the job failed for the provider's reasons, not the prompt's.
        return ProviderError(ErrorClass.OVERLOADED, message, code=code)
    return ProviderError(ErrorClass.PROVIDER_FAILED, message, code=code or None)


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    return None


def parse_video(body: Any) -> ProviderJob:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise ProviderError(
            ErrorClass.PROVIDER_FAILED, "The provider answered with something that is not a video."
        )
    status_text = str(body.get("status") or "")
    # Statuses outside the spec (the guide mentions "expired") are treated as failures, never
    # as "still running", so a job cannot wait forever on a word we do not know.
    status = _STATUSES.get(status_text, JobStatus.FAILED)
    failure = None
    if status is JobStatus.FAILED:
        if status_text == "expired":
            failure = ProviderError(ErrorClass.EXPIRED, "The provider expired this job.")
        elif status_text not in _STATUSES:
            failure = ProviderError(
                ErrorClass.PROVIDER_FAILED,
                f"The provider reported an unknown status {status_text!r}.",
            )
        else:
            raw_error = body.get("error")
            failure = classify_job_failure(raw_error if isinstance(raw_error, dict) else None)
    try:
        seconds: int | None = int(str(body.get("seconds")))
    except ValueError:
        seconds = None
    progress = body.get("progress")
    return ProviderJob(
        id=body["id"],
        status=status,
        progress=max(0, min(100, int(progress))) if isinstance(progress, int | float) else 0,
        model=str(body.get("model") or ""),
        prompt=body.get("prompt") if isinstance(body.get("prompt"), str) else None,
        size=str(body.get("size") or ""),
        seconds=seconds,
        created_at=_timestamp(body.get("created_at")),
        finished_at=_timestamp(body.get("completed_at")),
        expires_at=_timestamp(body.get("expires_at")),
        error=failure,
        raw=body,
        source_id=_text(body.get("remixed_from_video_id")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_character(body: Any) -> ProviderCharacter:
    # The spec lets ``id`` and ``name`` be null; a character without an id cannot be used.
    if not isinstance(body, dict) or not _text(body.get("id")):
        raise ProviderError(
            ErrorClass.PROVIDER_FAILED, "The provider answered with something that is not a "
            "character (no id)."
        )
    return ProviderCharacter(
        id=body["id"],
        name=_text(body.get("name")) or "",
        created_at=_timestamp(body.get("created_at")),
    )


def _video_content_type(data: bytes) -> str:
    """What the character's clip is, by its bytes (our stored file, judged when it was saved)."""
    if data[4:8] == b"ftyp":
        return "video/quicktime" if data[8:10] == b"qt" else "video/mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return "application/octet-stream"


class OpenAIVideosAdapter(HTTPAdapter):
    catalog = CATALOG
    classify = staticmethod(classify_response)
    can_list = True
    variants = ("video", "thumbnail", "spritesheet")
    provider_name = "OpenAI Videos"

    def create(self, request: VideoRequest) -> ProviderJob:
        self._refuse_what_cannot_travel(request)
        if request.operation is Operation.GENERATE:
            response = self._create_new(request)
        else:
            source = request.source_job_id
            if not source:
                raise ProviderError(
                    ErrorClass.INVALID_REQUEST,
                    f"An {request.operation.value} needs the provider's id of the video it "
                    "changes; none was given.",
                )
            if request.operation is Operation.EDIT:
                # The guide: with a video id "the API infers the model from the source video".
                body: dict[str, Any] = {"video": {"id": source}, "prompt": request.prompt}
                response = self._http.request("POST", "videos/edits", creates=True, json=body)
            elif request.operation is Operation.REMIX:
                response = self._http.request(
                    "POST",
                    f"videos/{quote(source, safe='')}/remix",
                    creates=True,
                    json={"prompt": request.prompt},
                )
            else:
                # ``seconds`` is the segment added; the finished video reports the stitched total.
                body = {
                    "video": {"id": source},
                    "prompt": request.prompt,
                    "seconds": str(request.seconds),
                }
                response = self._http.request(
                    "POST", "videos/extensions", creates=True, json=body
                )
        return self._with_poll_hint(parse_video(self._json(response)), response)

    def _create_new(self, request: VideoRequest) -> httpx.Response:
        fields: dict[str, Any] = {
            "model": request.model,
            "prompt": request.prompt,
            "size": request.size,
            "seconds": str(request.seconds),  # a string enum in the spec
        }
        first = request.image("first_frame")
        if first is None:
            if request.characters:
                # Guide only, not in the spec or the SDK (docs/provider-assumptions.md).
                fields["characters"] = [{"id": c} for c in request.characters]
            # The spec accepts JSON as well as multipart; JSON needs no boundary games.
            return self._http.request("POST", "videos", creates=True, json=fields)
        # The first frame travels as a file upload (already fitted to ``size``, as the API
        # requires); the characters then use the SDK's form encoding of a list of objects.
        data: dict[str, Any] = dict(fields)
        if request.characters:
            data["characters[][id]"] = list(request.characters)
        return self._http.request(
            "POST",
            "videos",
            creates=True,
            data=data,
            files={"input_reference": (first.filename, first.content, first.content_type)},
        )

    def _refuse_what_cannot_travel(self, request: VideoRequest) -> None:
        """The protocol's limits, checked before anything is sent (the catalog checks first)."""
        if request.image("last_frame") is not None:
            raise self._unsupported("end a video on a given frame")
        if request.images_for("reference"):
            raise self._unsupported("take reference images")
        if request.seed is not None:
            raise self._unsupported("take a seed")
        if request.negative_prompt:
            raise self._unsupported("take a negative prompt")
        if request.audio is False:
            raise self._unsupported("make a silent video")
        if len(request.characters) > 2:
            raise self._unsupported("put more than two characters in one video")
        if request.operation is not Operation.GENERATE:
            if request.images:
                raise self._unsupported(f"take images with an {request.operation.value}")
            if request.characters:
                raise self._unsupported(f"take characters with an {request.operation.value}")

    def create_character(self, *, name: str, video: bytes, filename: str) -> ProviderCharacter:
        """Make a named character from a short clip (multipart, as the spec requires)."""
        response = self._http.request(
            "POST",
            "videos/characters",
            creates=True,
            data={"name": name},
            files={"video": (filename, video, _video_content_type(video))},
        )
        return parse_character(self._json(response))

    def retrieve_character(self, character_id: str) -> ProviderCharacter:
        response = self._http.request("GET", f"videos/characters/{quote(character_id, safe='')}")
        return parse_character(self._json(response))

    def retrieve(self, job_id: str) -> ProviderJob:
        response = self._http.request("GET", f"videos/{job_id}")
        return self._with_poll_hint(parse_video(self._json(response)), response)

    def list_recent(self, *, limit: int = 100, since: datetime | None = None) -> list[ProviderJob]:
        """The newest jobs first: one page of ``limit``, or with ``since`` every page back to
        the first job created before that time (bounded, so a huge history cannot stall us)."""
        jobs: list[ProviderJob] = []
        params: dict[str, Any] = {"limit": min(limit, 100), "order": "desc"}
        for _ in range(MAX_LIST_PAGES):
            body = self._json(self._http.request("GET", "videos", params=params))
            items = body.get("data") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise ProviderError(ErrorClass.PROVIDER_FAILED, "The provider's list had no data.")
            page = [parse_video(item) for item in items]
            jobs.extend(page)
            oldest = page[-1].created_at if page else None
            if since is None or not body.get("has_more") or not page:
                break
            if oldest is not None and oldest < since:
                break
            params["after"] = body.get("last_id") or page[-1].id
        return jobs

    def download(
        self,
        job_id: str,
        *,
        variant: str,
        destination: BinaryIO,
        retrieved: ProviderJob | None = None,
    ) -> str:
        return self._download(
            f"videos/{job_id}/content", params={"variant": variant}, destination=destination
        )

    @staticmethod
    def _with_poll_hint(job: ProviderJob, response: httpx.Response) -> ProviderJob:
        hint = response.headers.get("openai-poll-after-ms")
        if hint is not None:
            with contextlib.suppress(ValueError):
                job.poll_after = max(0.0, float(hint) / 1000)
        return job
