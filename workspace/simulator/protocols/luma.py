"""The simulated Luma Agents API, mounted at ``/luma/v1`` (the spec's ``simulator_path``, which
is the official base URL's ``/v1``), as lumalabs/luma-agents-python 0.5.0 and
docs.agents.lumalabs.ai describe it.

Simulated: ``POST /v1/generations`` (``type: video``, model ``ray-3.2``; answered 201 with the
generation) and ``GET /v1/generations/{id}``, with ``Authorization: Bearer``. States are
``queued``, ``processing``, ``completed`` (``output: [{"type": "video", "url"}]``, a signed link
on the simulator's ``/cdn/``) and ``failed`` (``failure_code``, ``failure_reason``). Errors are
``{"detail": "..."}`` with Luma's documented status codes (400, 401, 402, 404, 422, 429 with
``Retry-After``, 502, 503); every answer carries ``X-API-Version``. ``video.start_frame`` and
``end_frame`` images are decoded and checked; a ``start_frame`` naming an earlier generation
extends it (rendered as the stitched clip, billed for the added seconds). Image generations and
video edits/reframes are refused: Reelhouse never sends them. Where the docs are silent, the
choices are listed in docs/provider-assumptions.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from typing import Any, Final

from workspace.simulator.core import (
    CallKind,
    RateVerdict,
    SimContext,
    SimRequest,
    SimResponse,
    SimulatedAPI,
)
from workspace.simulator.media import MediaCache
from workspace.simulator.protocols.common import (
    JobBook,
    MediaHost,
    SimJob,
    iso_time,
    request_origin,
)
from workspace.simulator.protocols.inputs import ImageProblem, SeenImage, check_image

API_VERSION: Final = "2026-04-01"
PROMPT_MAX: Final = 6000
# "413 Input media exceeds size limit" (the older guide says 50 MB).
MEDIA_MAX_BYTES: Final = 50 * 1024 * 1024
MODELS: Final = ("uni-1", "uni-1-max", "ray-3.2")
TYPES: Final = ("image", "image_edit", "video", "video_edit", "video_reframe", "layering")
VIDEO_ASPECT_RATIOS: Final = ("9:16", "3:4", "1:1", "4:3", "16:9", "21:9")
RESOLUTIONS: Final = ("360p", "540p", "720p", "1080p")
DURATIONS: Final = {"5s": 5, "10s": 10}
# US cents per second the simulator bills: Luma's 5-second SDR prices over five where one was
# found (720p, 1080p), placeholders below that (the catalog does not offer them).
CENTS_PER_SECOND: Final = {"360p": 2, "540p": 4, "720p": 6, "1080p": 24}
# An extension's limits are not documented; these are ours (docs/provider-assumptions.md).
EXTEND_MAX_TOTAL_SECONDS: Final = 30
_TOP_FIELDS: Final = (
    "prompt",
    "aspect_ratio",
    "image_ref",
    "model",
    "output_format",
    "source",
    "style",
    "type",
    "user_id",
    "video",
    "web_search",
)
_VIDEO_FIELDS: Final = (
    "duration",
    "edit",
    "end_frame",
    "exr_export",
    "hdr",
    "loop",
    "resolution",
    "source_position",
    "start_frame",
    "keyframes",
    "keyframe_indexes",
)
_REF_FIELDS: Final = ("data", "generation_id", "media_type", "url")

FAILURES: Final[dict[str, tuple[str, str]]] = {
    "moderation": ("content_moderated", "The prompt or input image violated content guidelines."),
    "processing_error": ("generation_failed", "Internal model error during generation."),
    "internal_error": ("output_not_found", "The generated output could not be retrieved."),
}
_STATE: Final[dict[str, str]] = {
    "queued": "queued",
    "running": "processing",
    "completed": "completed",
    "failed": "failed",
}

_CREATE_PATH = re.compile(r"^/luma/v1/generations$")
_GENERATION_PATH = re.compile(r"^/luma/v1/generations/(?P<id>[^/]+)$")


def detail_response(status: int, detail: str, headers: dict[str, str] | None = None) -> SimResponse:
    """Luma's error envelope: ``detail`` says what went wrong; the status code is the class."""
    return SimResponse.json(
        status, {"detail": detail}, {"x-api-version": API_VERSION, **(headers or {})}
    )


def pixel_size(aspect_ratio: str, resolution: str) -> str:
    """The rendered clip's pixels: the resolution names the short side (``16:9``, ``720p`` ->
    ``1280x720``; ``9:16`` -> ``720x1280``)."""
    short = int(resolution.removesuffix("p"))
    a, b = (int(part) for part in aspect_ratio.split(":"))
    long = round(short * max(a, b) / min(a, b) / 2) * 2
    return f"{long}x{short}" if a >= b else f"{short}x{long}"


def _total_seconds(job: SimJob) -> int:
    return int(job.extra.get("output_seconds", job.seconds))


class _Invalid(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SimulatedLumaAPI(SimulatedAPI):
    prefix = "/luma/v1"
    request_id_header = "x-request-id"

    def __init__(self, ctx: SimContext, media: MediaCache, cdn: MediaHost) -> None:
        super().__init__(ctx)
        self.media = media
        self.cdn = cdn
        self.book = JobBook(ctx, "luma")

    # ---- core hooks -------------------------------------------------------------------------

    def classify(self, request: SimRequest) -> tuple[CallKind | None, str | None]:
        if request.method == "POST" and _CREATE_PATH.match(request.path):
            return "create", None
        if request.method == "GET" and _GENERATION_PATH.match(request.path):
            return "status", None
        return None, None

    def api_key(self, request: SimRequest) -> str | None:
        scheme, _, token = (request.header("authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    def unauthorized(self, key: str | None) -> SimResponse:
        if key is None:
            return detail_response(
                401, "Missing API key. Send it as 'Authorization: Bearer <key>'."
            )
        return detail_response(401, "Invalid API key.")

    def rate_limited(self, verdict: RateVerdict, retry_after: int) -> SimResponse:
        return detail_response(
            429,
            "Rate limit exceeded: too many generation requests in the last 60 seconds.",
            {"retry-after": str(retry_after)},
        )

    def server_error(self, overloaded: bool) -> SimResponse:
        if overloaded:
            return detail_response(
                503, "Service temporarily unavailable. Retry with backoff.", {"retry-after": "1"}
            )
        return detail_response(502, "Upstream service unavailable.")

    def rate_headers(self, verdict: RateVerdict) -> dict[str, str]:
        return {"x-ratelimit-limit": str(verdict.limit)}

    def sweep(self) -> None:
        self.book.sweep()

    def reset(self) -> None:
        self.book.reset()

    def handle(self, request: SimRequest) -> SimResponse:
        if _CREATE_PATH.match(request.path):
            if request.method == "POST":
                return self._create(request)
            return detail_response(405, "Method Not Allowed")
        if match := _GENERATION_PATH.match(request.path):
            if request.method == "GET":
                return self._retrieve(match["id"], request)
            return detail_response(405, "Method Not Allowed")
        return detail_response(404, "Not Found")

    # ---- endpoints --------------------------------------------------------------------------

    def _create(self, request: SimRequest) -> SimResponse:
        ctx = self.ctx
        try:
            params = self._parse(request)
        except _Invalid as invalid:
            return detail_response(invalid.status, invalid.message)
        if ctx.config.insufficient_quota:
            ctx.inc("quota_rejected_429")
            return detail_response(
                402, "Insufficient balance. Add funds to your account at platform.lumalabs.ai."
            )
        outcome, faults = self.book.decide(request.seq, params["prompt"])
        log_extra: dict[str, Any] = {
            "aspect_ratio": params["aspect_ratio"],
            "resolution": params["resolution"],
            "type": "video",
            "images": params["images"],
        }
        extra: dict[str, Any] = {}
        source: SimJob | None = params["source"]
        if source is not None:
            # Billed for the seconds it adds; it plays the whole stitched clip (ours).
            extra["output_seconds"] = _total_seconds(source) + params["seconds"]
            log_extra.update({"operation": "extend", "source_id": source.id,
                              "output_seconds": extra["output_seconds"]})
        job = self.book.create(
            job_id=str(uuid.uuid4()),
            model=params["model"],
            prompt=params["prompt"],
            size=pixel_size(params["aspect_ratio"], params["resolution"]),
            seconds=params["seconds"],
            cents_per_second=CENTS_PER_SECOND[params["resolution"]],
            outcome=outcome,
            input_reference=params["start_frame"],
            log_extra=log_extra,
            extra=extra,
        )
        with ctx.lock:
            body = self._generation(job, "queued", request)
        # X-RateLimit-Limit is added by the core whenever a limit is set (rate_headers).
        response = SimResponse.json(201, body, {"x-api-version": API_VERSION})
        response.created_job_id = job.id
        response.forced_faults = faults
        return response

    def _parse(self, request: SimRequest) -> dict[str, Any]:
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise _Invalid(400, "The request body must be JSON (Content-Type: application/json).")
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise _Invalid(400, "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise _Invalid(400, "The request body must be a JSON object.")
        for name in body:
            if name not in _TOP_FIELDS:
                raise _Invalid(400, f"Unknown field '{name}'.")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not 1 <= len(prompt) <= PROMPT_MAX:
            raise _Invalid(400, f"prompt must be a string of 1 to {PROMPT_MAX} characters.")
        kind = body.get("type", "image")
        if kind not in TYPES:
            raise _Invalid(400, f"type must be one of {', '.join(TYPES)}.")
        model = body.get("model")
        if model is not None and model not in MODELS:
            raise _Invalid(400, f"model must be one of {', '.join(MODELS)}.")
        if kind != "video":
            raise _Invalid(
                422,
                f"type '{kind}' is not available in this simulator; it "
                "generates videos (type 'video') only.",
            )
        if model != "ray-3.2":
            raise _Invalid(422, f"Model {model!r} cannot make type 'video'; use 'ray-3.2'.")
        aspect_ratio = body.get("aspect_ratio") or "16:9"
        if aspect_ratio not in VIDEO_ASPECT_RATIOS:
            raise _Invalid(
                422,
                f"aspect_ratio {aspect_ratio!r} is not supported for ray-3.2 "
                f"video; use one of {', '.join(VIDEO_ASPECT_RATIOS)}.",
            )
        video = body.get("video") or {}
        if not isinstance(video, dict):
            raise _Invalid(400, "video must be an object.")
        for name in video:
            if name not in _VIDEO_FIELDS:
                raise _Invalid(400, f"Unknown field 'video.{name}'.")
        resolution = video.get("resolution") or "720p"
        if resolution not in RESOLUTIONS:
            raise _Invalid(400, f"video.resolution must be one of {', '.join(RESOLUTIONS)}.")
        duration = video.get("duration") or "5s"
        if duration not in DURATIONS:
            raise _Invalid(400, f"video.duration must be one of {', '.join(DURATIONS)}.")
        for flag in ("loop", "hdr", "exr_export"):
            if video.get(flag) is not None and not isinstance(video[flag], bool):
                raise _Invalid(400, f"video.{flag} must be a boolean.")
        frames = [name for name in ("start_frame", "end_frame") if video.get(name) is not None]
        images: list[dict[str, Any]] = []
        source: SimJob | None = None
        for name in frames:
            seen = self._check_ref(f"video.{name}", video[name])
            if seen is not None:
                images.append(seen.log("first_frame" if name == "start_frame" else "last_frame"))
            elif video[name].get("generation_id"):
                if name != "start_frame" or len(frames) > 1:
                    raise _Invalid(422, "The simulator extends a video forwards only: "
                                   "generation_id in video.start_frame, with no end_frame.")
                source = self._source(video[name]["generation_id"], aspect_ratio, resolution)
        if duration == "10s" and (frames or video.get("loop") or video.get("hdr")):
            raise _Invalid(
                422, "10s videos are text-to-video only: no start_frame, end_frame, loop or hdr."
            )
        if source is not None and _total_seconds(source) + DURATIONS[duration] > (
                EXTEND_MAX_TOTAL_SECONDS):
            raise _Invalid(422, f"An extended video may be at most {EXTEND_MAX_TOTAL_SECONDS}s "
                           "long.")
        if video.get("hdr") and resolution not in ("720p", "1080p"):
            raise _Invalid(422, "hdr requires a resolution of 720p or 1080p.")
        if video.get("exr_export") and not video.get("hdr"):
            raise _Invalid(422, "exr_export requires hdr=true.")
        return {
            "model": model,
            "prompt": prompt,
            "aspect_ratio": aspect_ratio,
            "resolution": resolution,
            "seconds": DURATIONS[duration],
            "start_frame": bool(images),
            "images": images,
            "source": source,
        }

    def _source(self, generation_id: object, aspect_ratio: str, resolution: str) -> SimJob:
        """The earlier video generation an extension continues."""
        with self.ctx.lock:
            job = self.book.get(generation_id) if isinstance(generation_id, str) else None
            phase = self.book.observe(job)[0] if job is not None else None
            if job is None or phase != "completed" or self.book.expired(job):
                raise _Invalid(422, "video.start_frame.generation_id must name a completed "
                               "video generation of yours.")
            if job.size != pixel_size(aspect_ratio, resolution):
                raise _Invalid(422, "An extension keeps the aspect_ratio and resolution of the "
                               "video it extends.")
        return job

    @staticmethod
    def _check_ref(where: str, ref: object) -> SeenImage | None:
        if not isinstance(ref, dict):
            raise _Invalid(400, f"{where} must be an object.")
        for name in ref:
            if name not in _REF_FIELDS:
                raise _Invalid(400, f"Unknown field '{where}.{name}'.")
        given = [name for name in ("url", "data", "generation_id") if ref.get(name)]
        if len(given) != 1:
            raise _Invalid(400, f"{where}: provide exactly one of url, data or generation_id.")
        if given == ["data"]:
            media_type = ref.get("media_type")
            if not isinstance(media_type, str) or not media_type.startswith("image/"):
                raise _Invalid(
                    400, f"{where}.media_type is required with data and must be an image type."
                )
            data = ref["data"]
            if not isinstance(data, str):
                raise _Invalid(422, f"{where}.data is not valid base64.")
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise _Invalid(422, f"{where}.data is not valid base64.") from None
            if len(raw) > MEDIA_MAX_BYTES:
                raise _Invalid(413, f"{where} exceeds the 50 MB size limit.")
            try:
                return check_image(raw, media_type, max_bytes=MEDIA_MAX_BYTES)
            except ImageProblem as problem:
                raise _Invalid(422, f"{where}: {problem}.") from None
        elif given == ["url"]:
            url = ref["url"]
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise _Invalid(422, f"{where}.url must be a publicly accessible URL.")
        return None

    def _retrieve(self, generation_id: str, request: SimRequest) -> SimResponse:
        with self.ctx.lock:
            job = self.book.get(generation_id)
            if job is None:
                return detail_response(404, "Generation not found.")
            phase, _ = self.book.observe(job)
            body = self._generation(job, phase, request)
        return SimResponse.json(200, body, {"x-api-version": API_VERSION})

    def _generation(self, job: SimJob, phase: str, request: SimRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": job.id,
            "created_at": iso_time(job.created_wall, digits=6),
            "model": job.model,
            "state": _STATE[phase],
            "type": "video",
            "failure_code": None,
            "failure_reason": None,
            "output": None,
        }
        if phase == "completed":
            link = self.cdn.link(self.book, job, request_origin(request), f"{job.id}.mp4")
            body["output"] = [{"type": "video", "url": link}]
        elif phase == "failed":
            body["failure_code"], body["failure_reason"] = FAILURES[job.outcome]
        return body
