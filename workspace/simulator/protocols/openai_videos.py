"""The OpenAI Videos protocol (``/v1/videos``), faithful to the OpenAPI excerpt in
``workspace/providers/specs/openai-videos-openapi.yaml``.

Simulated: create (multipart and JSON, with ``input_reference`` and the guide's
``characters``), retrieve, list, delete, content download, remix, edits, extensions and
characters (create and retrieve). Where the spec is silent the choices are written down in
``docs/simulator.md`` and ``docs/provider-assumptions.md``.
"""

from __future__ import annotations

import json
import re
import secrets
import struct
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from typing import Any, Final

from workspace.simulator.core import (
    CallKind,
    RateVerdict,
    SimContext,
    SimRequest,
    SimResponse,
    SimulatedAPI,
    format_duration,
    mask_secret,
)
from workspace.simulator.media import CONTENT_TYPES, VARIANTS, MediaCache, MediaError
from workspace.simulator.protocols.common import JobBook, MediaHost, SimJob, single

MODELS: Final = (
    "sora-2",
    "sora-2-pro",
    "sora-2-2025-10-06",
    "sora-2-pro-2025-10-06",
    "sora-2-2025-12-08",
)
SIZES: Final = ("720x1280", "1280x720", "1024x1792", "1792x1024")
PRO_ONLY_SIZES: Final = ("1024x1792", "1792x1024")
SECONDS: Final = ("4", "8", "12")
REFERENCE_TYPES: Final = ("image/jpeg", "image/png", "image/webp")
CREATE_FIELDS: Final = ("prompt", "model", "seconds", "size", "input_reference", "characters")
EDIT_FIELDS: Final = ("prompt", "video")
EXTEND_FIELDS: Final = ("prompt", "video", "seconds")
REMIX_FIELDS: Final = ("prompt",)
CHARACTER_FIELDS: Final = ("name", "video")
# The guide: "A single video can be extended up to six times, for a maximum total length of
# 120 seconds", and "A video can include up to two characters".
MAX_TOTAL_SECONDS: Final = 120
MAX_EXTENSIONS: Final = 6
MAX_CHARACTERS: Final = 2
CHARACTER_NAME_MAX: Final = 80
PROMPT_MAX: Final = 32000
IMAGE_URL_MAX: Final = 20971520
LIST_DEFAULT_LIMIT: Final = 20
LIST_MAX_LIMIT: Final = 100

POLL_HINT_MIN_MS: Final = 1000
POLL_HINT_MAX_MS: Final = 20000

# The error object of a failed video per outcome. When each failure strikes (moderation before
# any work starts, the others half-way, as a crashed render would) is the common machinery's.
FAILURES: Final[dict[str, tuple[str, str]]] = {
    "moderation": ("moderation_blocked", "Your request was blocked by our moderation system."),
    "processing_error": ("processing_error", "We're under heavy load, please try again later."),
    "internal_error": ("internal_error", "Video generation failed because of an internal error. "
                                         "Please try again."),
}
# OpenAI's statuses for the common phases (there is no cancel, so no "canceled").
_STATUS: Final[dict[str, str]] = {
    "queued": "queued",
    "running": "in_progress",
    "completed": "completed",
    "failed": "failed",
}

_VIDEO_PATH = re.compile(r"^/v1/videos/(?P<id>[^/]+)$")
_REMIX_PATH = re.compile(r"^/v1/videos/(?P<id>[^/]+)/remix$")
_CHARACTER_PATH = re.compile(r"^/v1/videos/characters/(?P<id>[^/]+)$")
_EDITS_PATH: Final = "/v1/videos/edits"
_EXTENSIONS_PATH: Final = "/v1/videos/extensions"
_CHARACTERS_PATH: Final = "/v1/videos/characters"
# A multipart field name the SDK's form encoding nests: video[id], characters[][id].
_NESTED = re.compile(r"(?P<base>\w+)(?P<keys>(?:\[\w*\])+)")
_CONTENT_PATH = re.compile(r"^/v1/videos/(?P<id>[^/]+)/content$")


def cents_per_second(model: str, size: str) -> int:
    """Published list prices; dated snapshots bill like their alias."""
    if model.startswith("sora-2-pro"):
        return 50 if size in PRO_ONLY_SIZES else 30
    return 10


def _quote_list(values: tuple[str, ...] | list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "an unsupported value"


def error_response(status: int, message: str, *, param: str | None = None,
                   code: str | None = None, type_: str = "invalid_request_error",
                   headers: dict[str, str] | None = None) -> SimResponse:
    """OpenAI's error envelope; all four keys are always present (the spec requires them)."""
    envelope = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return SimResponse.json(status, envelope, headers)


class _Answer(Exception):
    """An answer other than 400 decided while validating (a 404 for a source), sent as is."""

    def __init__(self, response: SimResponse) -> None:
        super().__init__(response.status)
        self.response = response


class _Invalid(Exception):
    """A 400 raised while validating a request, turned into the envelope at the top."""

    def __init__(self, message: str, param: str | None, code: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


@dataclass
class _Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def _header_params(header_name: str, value: str) -> Message:
    message = Message()
    message[header_name] = value
    return message


def parse_multipart(body: bytes, content_type: str) -> list[_Part]:
    """A strict multipart/form-data parser (the stdlib ``cgi`` module is gone in 3.13)."""
    boundary = _header_params("content-type", content_type).get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise _Invalid("Invalid multipart/form-data body: the Content-Type has no boundary.",
                       None, "invalid_multipart")
    delimiter = b"--" + boundary.encode("latin-1")
    sections = body.split(delimiter)
    if len(sections) < 2 or not sections[-1].startswith(b"--"):
        raise _Invalid("Invalid multipart/form-data body: the closing boundary is missing.",
                       None, "invalid_multipart")
    parts: list[_Part] = []
    for section in sections[1:-1]:
        if not section.startswith(b"\r\n") or not section.endswith(b"\r\n"):
            raise _Invalid("Invalid multipart/form-data body: malformed part.", None,
                           "invalid_multipart")
        head, separator, data = section[2:-2].partition(b"\r\n\r\n")
        if not separator:
            raise _Invalid("Invalid multipart/form-data body: a part has no header end.", None,
                           "invalid_multipart")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        disposition = _header_params("content-disposition",
                                     headers.get("content-disposition", ""))
        field_name = disposition.get_param("name", header="content-disposition")
        filename = disposition.get_param("filename", header="content-disposition")
        if not isinstance(field_name, str) or not field_name:
            raise _Invalid("Invalid multipart/form-data body: a part has no field name.", None,
                           "invalid_multipart")
        parts.append(_Part(
            name=field_name,
            filename=filename if isinstance(filename, str) else None,
            content_type=headers.get("content-type"),
            data=data,
        ))
    return parts


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, JPEG or WebP from its header bytes; None if unrecognised."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        index = 2
        while index + 9 < len(data):
            if data[index] != 0xFF:
                index += 1
                continue
            marker = data[index + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                index += 1 if marker == 0xFF else 2
                continue
            (length,) = struct.unpack(">H", data[index + 2:index + 4])
            # SOFn frames carry the dimensions; C4 (DHT), C8 and CC (DAC) are not frames.
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[index + 5:index + 9])
                return int(width), int(height)
            index += 2 + length
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            width, height = struct.unpack("<HH", data[26:30])
            return int(width) & 0x3FFF, int(height) & 0x3FFF
        if chunk == b"VP8L" and data[20] == 0x2F:
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            width = int.from_bytes(data[24:27], "little") + 1
            height = int.from_bytes(data[27:30], "little") + 1
            return width, height
    return None


def looks_like_video(data: bytes) -> bool:
    """MP4/MOV (an ISO base media ``ftyp`` box) or WebM/Matroska (EBML), judged by the bytes."""
    return data[4:8] == b"ftyp" or data.startswith(b"\x1a\x45\xdf\xa3")


def _put_nested(values: dict[str, object], name: str, base: str, keys: list[str],
                text: str) -> None:
    """Store ``base[k]`` as an object and ``base[][k]`` / ``base[0][k]`` as a list of them."""
    conflict = _Invalid(f"Invalid '{name}': it does not fit the other '{base}' fields.", base,
                        "invalid_value")
    duplicate = _Invalid(f"Duplicate parameter: '{name}'.", name, "duplicate_parameter")
    listed = keys[0] == "" or keys[0].isdigit()
    container = values.setdefault(base, [] if listed else {})
    if len(keys) > 2 or (not listed and len(keys) > 1):
        raise _Invalid(f"Invalid '{name}': nested too deeply.", base, "invalid_value")
    if not listed:
        if not isinstance(container, dict):
            raise conflict
        if keys[0] in container:
            raise duplicate
        container[keys[0]] = text
        return
    if not isinstance(container, list):
        raise conflict
    if len(keys) == 1:
        container.append(text)
        return
    if keys[0] == "":
        # The brackets format has no index: a key seen again starts the next object.
        if not container or not isinstance(container[-1], dict) or keys[1] in container[-1]:
            container.append({})
        item = container[-1]
    else:
        index = int(keys[0])
        if index > 100:
            raise _Invalid(f"Invalid '{name}': index too large.", base, "invalid_value")
        while len(container) <= index:
            container.append({})
        item = container[index]
    if not isinstance(item, dict):
        raise conflict
    if keys[1] in item:
        raise duplicate
    item[keys[1]] = text


@dataclass
class _CreateParams:
    prompt: str
    model: str
    seconds: int
    size: str
    has_reference: bool
    characters: list[str]


@dataclass
class _Character:
    id: str
    name: str
    created_at: int
    key: str | None


class OpenAIVideosProtocol(SimulatedAPI):
    prefix = "/v1"
    request_id_header = "x-request-id"
    processing_time_header = "openai-processing-ms"

    def __init__(self, ctx: SimContext, media: MediaCache, cdn: MediaHost | None = None) -> None:
        # ``cdn`` goes unused: this API serves its files itself (/v1/videos/{id}/content).
        super().__init__(ctx)
        self.media = media
        self.book = JobBook(ctx, "openai_videos",
                            error_codes={outcome: code for outcome, (code, _) in FAILURES.items()})
        # Characters by id; each belongs to the key that made it, like its videos.
        self.characters: dict[str, _Character] = {}

    # ---- core hooks -------------------------------------------------------------------------

    def classify(self, request: SimRequest) -> tuple[CallKind | None, str | None]:
        path, method = request.path, request.method
        if path == "/v1/videos":
            if method == "POST":
                return "create", None
            if method == "GET":
                return "list", None
        elif path in (_EDITS_PATH, _EXTENSIONS_PATH, _CHARACTERS_PATH) or _REMIX_PATH.match(path):
            # Characters count as creates too: a POST that makes something at the provider.
            return ("create", None) if method == "POST" else (None, None)
        elif _CHARACTER_PATH.match(path):
            return ("status", None) if method == "GET" else (None, None)
        elif _CONTENT_PATH.match(path):
            if method == "GET":
                variant = single(request, "variant") or "video"
                return "download", variant if variant in VARIANTS else None
        elif _VIDEO_PATH.match(path):
            if method == "GET":
                return "status", None
            if method == "DELETE":
                return "delete", None
        return None, None

    def api_key(self, request: SimRequest) -> str | None:
        header = request.header("authorization") or ""
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    def unauthorized(self, key: str | None) -> SimResponse:
        if key is None:
            message = ("You didn't provide an API key. You need to provide your API key in an "
                       "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                       "YOUR_KEY).")
        else:
            message = (f"Incorrect API key provided: {mask_secret(key)}. You can find your API "
                       "key at https://platform.openai.com/account/api-keys.")
        return error_response(401, message, code="invalid_api_key")

    def rate_limited(self, verdict: RateVerdict, retry_after: int) -> SimResponse:
        wait = format_duration(self.ctx.clock.to_real(verdict.next_slot_in))
        message = (f"Rate limit reached for requests per min (RPM) in organization org-simulator:"
                   f" Limit {verdict.limit}, Used {verdict.limit}, Requested 1. Please try again "
                   f"in {wait}. Visit https://platform.openai.com/account/rate-limits to learn "
                   "more.")
        return error_response(429, message, type_="requests", code="rate_limit_exceeded",
                              headers={"retry-after": str(retry_after)})

    def server_error(self, overloaded: bool) -> SimResponse:
        if overloaded:
            return error_response(
                503, "The engine is currently overloaded, please try again later.",
                type_="server_error", code="server_is_overloaded", headers={"retry-after": "1"})
        return error_response(
            500, "The server had an error while processing your request. Sorry about that!",
            type_="server_error", code=None)

    def rate_headers(self, verdict: RateVerdict) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(verdict.limit),
            "x-ratelimit-remaining-requests": str(verdict.remaining),
            "x-ratelimit-reset-requests": format_duration(
                self.ctx.clock.to_real(verdict.next_slot_in)),
        }

    def sweep(self) -> None:
        self.book.sweep()

    def reset(self) -> None:
        self.book.reset()
        with self.ctx.lock:
            self.characters = {}

    def handle(self, request: SimRequest) -> SimResponse:
        path, method = request.path, request.method
        try:
            if path == "/v1/videos":
                if method == "POST":
                    return self._create(request)
                if method == "GET":
                    return self._list(request)
            elif path == _EDITS_PATH:
                if method == "POST":
                    return self._edit(request)
            elif path == _EXTENSIONS_PATH:
                if method == "POST":
                    return self._extend(request)
            elif path == _CHARACTERS_PATH:
                if method == "POST":
                    return self._create_character(request)
            elif match := _CHARACTER_PATH.match(path):
                if method == "GET":
                    return self._retrieve_character(match["id"], request)
            elif match := _REMIX_PATH.match(path):
                if method == "POST":
                    return self._remix(match["id"], request)
            elif match := _CONTENT_PATH.match(path):
                if method == "GET":
                    return self._content(match["id"], request)
            elif match := _VIDEO_PATH.match(path):
                if method == "GET":
                    return self._retrieve(match["id"])
                if method == "DELETE":
                    return self._delete(match["id"])
        except _Invalid as invalid:
            return error_response(400, invalid.message, param=invalid.param, code=invalid.code)
        except _Answer as answer:
            return answer.response
        return self.invalid_url(request)

    def invalid_url(self, request: SimRequest) -> SimResponse:
        return error_response(404, f"Invalid URL ({request.method} {request.path})")

    # ---- job state --------------------------------------------------------------------------

    def _observe(self, job: SimJob, now: float) -> tuple[str, int]:
        """The job's status and whole-percent progress at ``now``; callers hold ``ctx.lock``.

        The book commits the terminal transition (counters, billing, the create log) once, for
        whichever reader comes first after the terminal moment: a poll, a list, a sweep.
        """
        phase, _ = self.book.observe(job, now)
        if phase == "completed":
            return "completed", 100
        # A failed job stays at the progress it had when it failed.
        return _STATUS[phase], job.percent_at(min(now - job.created_sim, job.end_sim))

    def _video_object(self, job: SimJob, status: str, progress: int) -> dict[str, Any]:
        error = None
        if status == "failed":
            code, message = FAILURES[job.outcome]
            error = {"code": code, "message": message}
        finished = job.finished_wall if status in ("completed", "failed") else None
        expires = job.expires_wall if status == "completed" else None
        return {
            "id": job.id,
            "object": "video",
            "model": job.model,
            "status": status,
            "progress": progress,
            "created_at": int(job.created_wall),
            "completed_at": int(finished) if finished is not None else None,
            "expires_at": int(expires) if expires is not None else None,
            "prompt": job.prompt,
            "size": job.size,
            "seconds": str(job.seconds),
            "remixed_from_video_id": job.extra.get("remixed_from"),
            "error": error,
        }

    def _poll_hint(self, job: SimJob, now: float) -> dict[str, str]:
        # Based on the expected completion, not the failure moment, so the hint leaks nothing.
        remaining = max(0.0, job.render_sim - (now - job.created_sim))
        hint = self.ctx.clock.to_real(remaining) * 1000 / 4
        return {"openai-poll-after-ms": str(int(min(POLL_HINT_MAX_MS,
                                                    max(POLL_HINT_MIN_MS, hint))))}

    # ---- endpoints --------------------------------------------------------------------------

    def _retrieve(self, video_id: str) -> SimResponse:
        with self.ctx.lock:
            job = self.book.get(video_id)
            if job is None:
                return _not_found(video_id)
            now = self.ctx.clock.now()
            status, progress = self._observe(job, now)
            body = self._video_object(job, status, progress)
            headers = self._poll_hint(job, now) if status in ("queued", "in_progress") else {}
        return SimResponse.json(200, body, headers)

    def _delete(self, video_id: str) -> SimResponse:
        with self.ctx.lock:
            job = self.book.get(video_id)
            if job is None:
                return _not_found(video_id)
            status, _ = self._observe(job, self.ctx.clock.now())
            if status not in ("completed", "failed"):
                return error_response(
                    400,
                    f"Video '{video_id}' is {status} and cannot be deleted yet; only completed "
                    "or failed videos can be deleted (there is no cancel).",
                    param="video_id", code="invalid_video_status")
            self.book.delete(job)
        return SimResponse.json(200, {"id": video_id, "object": "video.deleted", "deleted": True})

    def _list(self, request: SimRequest) -> SimResponse:
        limit_text = single(request, "limit")
        limit = LIST_DEFAULT_LIMIT
        if limit_text is not None:
            try:
                limit = int(limit_text)
            except ValueError:
                raise _Invalid(f"Invalid 'limit': expected an integer between 0 and "
                               f"{LIST_MAX_LIMIT}, got '{limit_text}'.", "limit",
                               "invalid_type") from None
            if not 0 <= limit <= LIST_MAX_LIMIT:
                raise _Invalid(f"Invalid 'limit': {limit} is out of range; expected an integer "
                               f"between 0 and {LIST_MAX_LIMIT}.", "limit", "invalid_value")
        order = single(request, "order") or "desc"
        if order not in ("asc", "desc"):
            raise _Invalid(f"Invalid value for 'order': '{order}'. Supported values are: "
                           "'asc' and 'desc'.", "order", "invalid_value")
        after = single(request, "after")
        with self.ctx.lock:
            # Creation order is the timestamp order, with ties broken by arrival.
            jobs = list(self.book.jobs.values())
            if order == "desc":
                jobs.reverse()
            if after:
                cursor = self.book.jobs.get(after)
                if cursor is None:
                    raise _Invalid(f"Invalid 'after': no video with id '{after}'.", "after",
                                   "invalid_value")
                # A deleted cursor still marks its place, so paging survives deletes.
                jobs = jobs[jobs.index(cursor) + 1:]
            visible = [job for job in jobs if not job.deleted]
            page = visible[:limit]
            now = self.ctx.clock.now()
            data = [self._video_object(job, *self._observe(job, now)) for job in page]
        body = {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(visible) > len(page),
        }
        return SimResponse.json(200, body)

    def _content(self, video_id: str, request: SimRequest) -> SimResponse:
        variant = single(request, "variant") or "video"
        if variant not in VARIANTS:
            raise _Invalid(f"Invalid value for 'variant': '{variant}'. Supported values are: "
                           f"{_quote_list(VARIANTS)}.", "variant", "invalid_value")
        with self.ctx.lock:
            job = self.book.get(video_id)
            if job is None:
                return _not_found(video_id)
            now = self.ctx.clock.now()
            status, _ = self._observe(job, now)
            if status == "failed":
                return error_response(
                    404, f"Video '{video_id}' failed and has no content to download.",
                    param="video_id", code="video_failed")
            if status != "completed":
                return error_response(
                    404, f"Video '{video_id}' is not ready: its status is '{status}'. Content "
                    "can be downloaded once the status is 'completed'.",
                    param="video_id", code="video_not_ready")
            if self.book.expired(job, now):
                stamp = datetime.fromtimestamp(job.expires_wall or time.time(), tz=UTC)
                return error_response(
                    404, f"The content for video '{video_id}' expired at "
                    f"{stamp.isoformat(timespec='seconds')} and is no longer available.",
                    param="video_id", code="video_expired")
            size, seconds = job.size, job.seconds
        try:
            # Rendering may take a moment the first time; never hold the global lock for it.
            data = self.media.get(variant, size, seconds)
        except MediaError as exc:
            return error_response(500, f"The simulator could not render the {variant}: {exc}",
                                  type_="server_error", code="server_error")
        return SimResponse(status=200, body=data, content_type=CONTENT_TYPES[variant])

    # ---- create -----------------------------------------------------------------------------

    def _quota_refusal(self) -> SimResponse | None:
        if not self.ctx.config.insufficient_quota:
            return None
        self.ctx.inc("quota_rejected_429")
        return error_response(
            429, "You exceeded your current quota, please check your plan and billing "
            "details. For more information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors.",
            type_="insufficient_quota", code="credit_balance_exhausted")

    def _create(self, request: SimRequest) -> SimResponse:
        if refusal := self._quota_refusal():
            return refusal
        params = self._parse_create(request)
        return self._start_job(
            request, prompt=params.prompt, model=params.model, size=params.size,
            seconds=params.seconds, operation="generate",
            input_reference=params.has_reference, characters=params.characters)

    def _start_job(self, request: SimRequest, *, prompt: str, model: str, size: str,
                   seconds: int, operation: str, billed_seconds: int | None = None,
                   source: SimJob | None = None, input_reference: bool = False,
                   characters: list[str] | None = None) -> SimResponse:
        """Create a job of any kind; the fault switches and prompt triggers apply alike."""
        ctx = self.ctx
        outcome, faults = self.book.decide(request.seq, prompt)
        extra: dict[str, Any] = {"key": self.api_key(request), "operation": operation}
        if source is not None:
            extra["source_id"] = source.id
            if operation == "remix":
                extra["remixed_from"] = source.id
            # How many extensions this video is made of, for the guide's "up to six times".
            extra["extensions"] = source.extra.get("extensions", 0) + (
                1 if operation == "extend" else 0)
        job = self.book.create(
            job_id="video_" + secrets.token_hex(24),
            model=model,
            prompt=prompt,
            size=size,
            seconds=seconds,
            billed_seconds=billed_seconds,
            cents_per_second=cents_per_second(model, size),
            outcome=outcome,
            input_reference=input_reference,
            log_extra={"operation": operation, "source_id": source.id if source else None,
                       "characters": list(characters or [])},
            extra=extra,
        )
        with ctx.lock:
            # A create always answers "queued", even when render_seconds is 0.
            body = self._video_object(job, "queued", 0)
            headers = self._poll_hint(job, job.created_sim)
        response = SimResponse.json(200, body, headers)
        response.created_job_id = job.id
        response.forced_faults = faults
        return response

    @staticmethod
    def _read_body(request: SimRequest, *, files: tuple[str, ...] = (),
                   multipart_only: bool = False) -> tuple[dict[str, object], dict[str, _Part]]:
        """The body's fields (JSON or multipart, objects nested) and its file uploads."""
        content_type = request.header("content-type") or ""
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type == "application/json" and not multipart_only:
            try:
                parsed = json.loads(request.body or b"null")
            except (ValueError, UnicodeDecodeError):
                raise _Invalid(
                    "We could not parse the JSON body of your request. (HINT: This likely means "
                    "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                    "payload, but what was sent was not valid JSON.)", None, None) from None
            if not isinstance(parsed, dict):
                raise _Invalid("The request body must be a JSON object.", None, "invalid_type")
            return parsed, {}
        if media_type == "multipart/form-data":
            return OpenAIVideosProtocol._multipart_values(request.body, content_type, files)
        expected = ("'multipart/form-data'" if multipart_only
                    else "'multipart/form-data' or 'application/json'")
        raise _Invalid(f"Unsupported Content-Type '{media_type or '(none)'}'. Send {expected}.",
                       None, "unsupported_content_type")

    @staticmethod
    def _check_fields(values: dict[str, object], uploads: dict[str, _Part],
                      allowed: tuple[str, ...]) -> None:
        for name in [*values, *uploads]:
            if name not in allowed:
                raise _Invalid(f"Unknown parameter: '{name}'.", name, "unknown_parameter")

    @staticmethod
    def _prompt(values: dict[str, object]) -> str:
        prompt = values.get("prompt")
        if "prompt" not in values:
            raise _Invalid("Missing required parameter: 'prompt'.", "prompt",
                           "missing_required_parameter")
        if not isinstance(prompt, str):
            raise _Invalid(f"Invalid type for 'prompt': expected a string, but got "
                           f"{_json_type(prompt)} instead.", "prompt", "invalid_type")
        if not prompt:
            raise _Invalid("Invalid 'prompt': empty string. Expected a string with minimum "
                           "length 1, but got an empty string instead.", "prompt", "empty_string")
        if len(prompt) > PROMPT_MAX:
            raise _Invalid(f"Invalid 'prompt': string too long. Expected a string with maximum "
                           f"length {PROMPT_MAX}, but got a string with length {len(prompt)} "
                           "instead.", "prompt", "string_above_max_length")
        return prompt

    def _parse_create(self, request: SimRequest) -> _CreateParams:
        values, uploads = self._read_body(request, files=("input_reference",))
        self._check_fields(values, uploads, CREATE_FIELDS)
        prompt = self._prompt(values)

        model = self._enum(values, "model", MODELS, "sora-2")
        seconds = self._enum(values, "seconds", SECONDS, "4")
        size = self._enum(values, "size", SIZES, "720x1280")
        if size in PRO_ONLY_SIZES and not model.startswith("sora-2-pro"):
            raise _Invalid(
                f"Invalid value for 'size': '{size}' is not supported by model '{model}'. "
                f"'{model}' supports {_quote_list(['720x1280', '1280x720'])}; "
                f"{_quote_list(list(PRO_ONLY_SIZES))} require 'sora-2-pro'.", "size",
                "invalid_value")

        has_reference = False
        upload = uploads.get("input_reference")
        if upload is not None:
            self._check_upload(upload, size)
            has_reference = True
        elif values.get("input_reference") is not None:
            self._check_reference_object(values["input_reference"])
            has_reference = True
        characters = self._characters(self.api_key(request), values.get("characters"))
        return _CreateParams(prompt=prompt, model=model, seconds=int(seconds), size=size,
                             has_reference=has_reference, characters=characters)

    @staticmethod
    def _enum(values: dict[str, object], name: str, allowed: tuple[str, ...], default: str,
              ) -> str:
        value = values.get(name)
        if value is None:  # absent or JSON null: the documented default
            return default
        if not isinstance(value, str):
            raise _Invalid(f"Invalid type for '{name}': expected one of {_quote_list(allowed)}, "
                           f"but got {_json_type(value)} instead.", name, "invalid_type")
        if value not in allowed:
            raise _Invalid(f"Invalid value for '{name}': '{value}'. Supported values are: "
                           f"{_quote_list(allowed)}.", name, "invalid_value")
        return value

    @staticmethod
    def _multipart_values(body: bytes, content_type: str, files: tuple[str, ...] = (),
                          ) -> tuple[dict[str, object], dict[str, _Part]]:
        values: dict[str, object] = {}
        uploads: dict[str, _Part] = {}
        for part in parse_multipart(body, content_type):
            if part.name in values or part.name in uploads:
                raise _Invalid(f"Duplicate parameter: '{part.name}'.", part.name,
                               "duplicate_parameter")
            if part.name in files and part.filename is not None:
                uploads[part.name] = part
                continue
            try:
                text = part.data.decode("utf-8")
            except UnicodeDecodeError:
                raise _Invalid(f"Invalid '{part.name}': the value is not valid UTF-8 text.",
                               part.name, "invalid_value") from None
            # The SDK's form encoding writes an object field as input_reference[image_url] or
            # video[id], and a list of objects as characters[][id].
            nested = _NESTED.fullmatch(part.name)
            if nested:
                keys = re.findall(r"\[(\w*)\]", nested["keys"])
                _put_nested(values, part.name, nested["base"], keys, text)
            elif part.name == "input_reference":
                raise _Invalid("Invalid 'input_reference': expected a file upload (image/jpeg, "
                               "image/png or image/webp) or an object with 'image_url' or "
                               "'file_id'.", "input_reference", "invalid_type")
            elif part.name in files:
                raise _Invalid(f"Invalid '{part.name}': expected a file upload or an object "
                               "with 'id'.", part.name, "invalid_type")
            else:
                values[part.name] = text
        for name in uploads:
            if name in values:
                raise _Invalid(f"Invalid '{name}': send either a file or an object, not both.",
                               name, "invalid_value")
        return values, uploads

    def _check_upload(self, upload: _Part, size: str) -> None:
        mimetype = (upload.content_type or "application/octet-stream").split(";")[0]
        mimetype = mimetype.strip().lower()
        if mimetype not in REFERENCE_TYPES:
            raise _Invalid(
                f"Invalid file 'input_reference': unsupported mimetype ('{mimetype}'). Supported "
                f"file formats are {_quote_list(REFERENCE_TYPES)}.", "input_reference",
                "unsupported_file")
        if not self.ctx.config.reference_size_check:
            return
        dimensions = image_dimensions(upload.data)
        if dimensions is None:
            raise _Invalid("Invalid file 'input_reference': the image could not be decoded.",
                           "input_reference", "invalid_image")
        width, height = (int(side) for side in size.split("x"))
        if dimensions != (width, height):
            raise _Invalid(
                f"Invalid 'input_reference': the image is {dimensions[0]}x{dimensions[1]} but "
                f"must match the requested size {size} (inpaint image must match the requested "
                "width and height).", "input_reference", "invalid_image_size")

    @staticmethod
    def _check_reference_object(reference: object) -> None:
        if not isinstance(reference, dict):
            raise _Invalid(f"Invalid type for 'input_reference': expected an object with "
                           f"'image_url' or 'file_id', but got {_json_type(reference)} instead.",
                           "input_reference", "invalid_type")
        for key in reference:
            if key not in ("image_url", "file_id"):
                raise _Invalid(f"Unknown parameter: 'input_reference.{key}'.",
                               f"input_reference.{key}", "unknown_parameter")
        given = [key for key in ("image_url", "file_id") if reference.get(key) is not None]
        if len(given) != 1:
            raise _Invalid("Invalid 'input_reference': provide exactly one of 'image_url' or "
                           "'file_id'.", "input_reference", "invalid_value")
        key = given[0]
        value = reference[key]
        param = f"input_reference.{key}"
        if not isinstance(value, str) or not value:
            raise _Invalid(f"Invalid type for '{param}': expected a non-empty string, but got "
                           f"{_json_type(value)} instead.", param, "invalid_type")
        if key == "image_url":
            if len(value) > IMAGE_URL_MAX:
                raise _Invalid(f"Invalid '{param}': string too long (maximum {IMAGE_URL_MAX}).",
                               param, "string_above_max_length")
            if not re.match(r"^(https?://\S+|data:image/(jpeg|png|webp);base64,)", value):
                raise _Invalid(f"Invalid '{param}': expected a fully qualified http(s) URL or a "
                               "base64 data URL of an image/jpeg, image/png or image/webp.",
                               param, "invalid_url")


    # ---- changing a finished video ----------------------------------------------------------

    def _source(self, request: SimRequest, values: dict[str, object],
                uploads: dict[str, _Part], verb: str) -> SimJob:
        """The completed video of this key that ``video`` names, or the refusal."""
        if "video" in uploads:
            raise _Invalid(f"Invalid 'video': uploading a video to {verb} is only available to "
                           "eligible customers; refer to a completed video by its id "
                           "({'id': 'video_...'}).", "video", "unsupported_video_upload")
        if values.get("video") is None:
            raise _Invalid("Missing required parameter: 'video'.", "video",
                           "missing_required_parameter")
        reference = values["video"]
        if not isinstance(reference, dict):
            raise _Invalid(f"Invalid type for 'video': expected an object with 'id', but got "
                           f"{_json_type(reference)} instead.", "video", "invalid_type")
        for key in reference:
            if key != "id":
                raise _Invalid(f"Unknown parameter: 'video.{key}'.", f"video.{key}",
                               "unknown_parameter")
        video_id = reference.get("id")
        if not isinstance(video_id, str) or not video_id:
            raise _Invalid(f"Invalid type for 'video.id': expected a non-empty string, but got "
                           f"{_json_type(video_id)} instead.", "video.id", "invalid_type")
        return self._source_job(request, video_id, verb)

    def _source_job(self, request: SimRequest, video_id: str, verb: str) -> SimJob:
        with self.ctx.lock:
            job = self.book.get(video_id)
            # Another key's (project's) video is as unknown as one that never existed.
            if job is None or job.extra.get("key") != self.api_key(request):
                raise _Answer(_not_found(video_id))
            now = self.ctx.clock.now()
            status, _ = self._observe(job, now)
            if status != "completed":
                raise _Invalid(f"Video '{video_id}' is {status}; only a completed video can be "
                               f"used to {verb}.", "video", "invalid_video_status")
            if self.book.expired(job, now):
                stamp = datetime.fromtimestamp(job.expires_wall or time.time(), tz=UTC)
                raise _Answer(error_response(
                    404, f"Video '{video_id}' expired at {stamp.isoformat(timespec='seconds')} "
                    f"and can no longer be used to {verb}.", param="video",
                    code="video_expired"))
            return job

    def _edit(self, request: SimRequest) -> SimResponse:
        if refusal := self._quota_refusal():
            return refusal
        values, uploads = self._read_body(request, files=("video",))
        self._check_fields(values, uploads, EDIT_FIELDS)
        prompt = self._prompt(values)
        source = self._source(request, values, uploads, "edit")
        # The guide: "the API infers the model from the source video"; it keeps size and length.
        return self._start_job(request, prompt=prompt, model=source.model, size=source.size,
                               seconds=source.seconds, operation="edit", source=source)

    def _remix(self, video_id: str, request: SimRequest) -> SimResponse:
        if refusal := self._quota_refusal():
            return refusal
        values, uploads = self._read_body(request)
        self._check_fields(values, uploads, REMIX_FIELDS)
        prompt = self._prompt(values)
        source = self._source_job(request, video_id, "remix")
        return self._start_job(request, prompt=prompt, model=source.model, size=source.size,
                               seconds=source.seconds, operation="remix", source=source)

    def _extend(self, request: SimRequest) -> SimResponse:
        if refusal := self._quota_refusal():
            return refusal
        values, uploads = self._read_body(request, files=("video",))
        for name in ("characters", "input_reference"):
            if name in values or name in uploads:
                raise _Invalid(f"Invalid '{name}': extensions don't support characters or "
                               "image references.", name, "unsupported_parameter")
        self._check_fields(values, uploads, EXTEND_FIELDS)
        prompt = self._prompt(values)
        if values.get("seconds") is None:
            raise _Invalid("Missing required parameter: 'seconds'.", "seconds",
                           "missing_required_parameter")
        added = int(self._enum(values, "seconds", SECONDS, "4"))
        source = self._source(request, values, uploads, "extend")
        if source.extra.get("extensions", 0) >= MAX_EXTENSIONS:
            raise _Invalid(f"Video '{source.id}' has already been extended {MAX_EXTENSIONS} "
                           "times, the most a single video can be.", "video",
                           "extension_limit_reached")
        total = source.seconds + added
        if total > MAX_TOTAL_SECONDS:
            raise _Invalid(f"Invalid 'seconds': extending the {source.seconds}-second video "
                           f"'{source.id}' by {added} seconds would make it {total} seconds "
                           f"long; a video can be extended to at most {MAX_TOTAL_SECONDS} "
                           "seconds.", "seconds", "invalid_value")
        # The result is the stitched video ("seconds": the total); only the segment is made.
        return self._start_job(request, prompt=prompt, model=source.model, size=source.size,
                               seconds=total, billed_seconds=added, operation="extend",
                               source=source)

    # ---- characters -------------------------------------------------------------------------

    def _characters(self, key: str | None, value: object) -> list[str]:
        """The guide's ``characters: [{"id": ...}]`` on create: at most two, all this key's."""
        if value is None:
            return []
        if not isinstance(value, list):
            raise _Invalid(f"Invalid type for 'characters': expected an array of objects with "
                           f"'id', but got {_json_type(value)} instead.", "characters",
                           "invalid_type")
        if len(value) > MAX_CHARACTERS:
            raise _Invalid(f"Invalid 'characters': a video can include at most "
                           f"{MAX_CHARACTERS} characters, but {len(value)} were given.",
                           "characters", "array_above_max_length")
        ids: list[str] = []
        for index, item in enumerate(value):
            param = f"characters[{index}]"
            if not isinstance(item, dict) or set(item) != {"id"}:
                raise _Invalid(f"Invalid '{param}': expected an object with exactly 'id'.",
                               param, "invalid_type")
            character_id = item["id"]
            if not isinstance(character_id, str) or not character_id:
                raise _Invalid(f"Invalid type for '{param}.id': expected a non-empty string, "
                               f"but got {_json_type(character_id)} instead.", f"{param}.id",
                               "invalid_type")
            with self.ctx.lock:
                character = self.characters.get(character_id)
            if character is None or character.key != key:
                raise _Invalid(f"Invalid '{param}.id': no character with id "
                               f"'{character_id}'.", f"{param}.id", "character_not_found")
            if character_id in ids:
                raise _Invalid(f"Invalid 'characters': '{character_id}' is given twice.",
                               "characters", "invalid_value")
            ids.append(character_id)
        return ids

    def _create_character(self, request: SimRequest) -> SimResponse:
        values, uploads = self._read_body(request, files=("video",), multipart_only=True)
        self._check_fields(values, uploads, CHARACTER_FIELDS)
        name = values.get("name")
        if "name" not in values:
            raise _Invalid("Missing required parameter: 'name'.", "name",
                           "missing_required_parameter")
        if not isinstance(name, str) or not name.strip():
            raise _Invalid("Invalid 'name': empty string. Expected a string with minimum "
                           "length 1, but got an empty string instead.", "name", "empty_string")
        if len(name) > CHARACTER_NAME_MAX:
            raise _Invalid(f"Invalid 'name': string too long. Expected a string with maximum "
                           f"length {CHARACTER_NAME_MAX}, but got a string with length "
                           f"{len(name)} instead.", "name", "string_above_max_length")
        upload = uploads.get("video")
        if upload is None:
            raise _Invalid("Missing required parameter: 'video'.", "video",
                           "missing_required_parameter")
        if not looks_like_video(upload.data):
            raise _Invalid("Invalid file 'video': the file is not a video. Upload a short MP4, "
                           "MOV or WebM clip.", "video", "invalid_video")
        ctx = self.ctx
        # Moderation refuses at once here: there is no job to fail later.
        if "[moderation]" in name.lower() or ctx.dice.hit(ctx.config.moderation_rate,
                                                          request.seq, "moderation"):
            raise _Invalid("Your request was blocked by our moderation system.", "video",
                           "moderation_blocked")
        character = _Character(id="char_" + secrets.token_hex(16), name=name,
                               created_at=int(time.time()), key=self.api_key(request))
        with ctx.lock:
            self.characters[character.id] = character
        return SimResponse.json(200, _character_object(character))

    def _retrieve_character(self, character_id: str, request: SimRequest) -> SimResponse:
        with self.ctx.lock:
            character = self.characters.get(character_id)
        if character is None or character.key != self.api_key(request):
            return error_response(404, f"Character with id '{character_id}' not found.",
                                  param="character_id", code="character_not_found")
        return SimResponse.json(200, _character_object(character))


def _character_object(character: _Character) -> dict[str, Any]:
    return {"id": character.id, "name": character.name, "created_at": character.created_at}


def _not_found(video_id: str) -> SimResponse:
    return error_response(404, f"Video with id '{video_id}' not found.", param="video_id",
                          code="video_not_found")

