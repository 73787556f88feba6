"""The Gemini API's Veo 3.1 surface (``/v1beta/...`` under ``/gemini``), as googleapis/python-genai
v2.19.0 and the Veo guide describe it.

Simulated: ``POST /v1beta/models/{model}:predictLongRunning`` returns an operation;
``GET /v1beta/models/{model}/operations/{id}`` polls it (no progress; ``done`` and either a
``response`` or an ``error``); the video is ``GET /v1beta/files/{id}:download?alt=media`` with the
key, answered by a redirect to a signed link on the simulator's ``/cdn/`` (which must be fetched
without the key). Safety blocks finish ``done`` with no ``generatedSamples``. Auth is the
``x-goog-api-key`` header (or ``?key=``). Inline images (``image``, ``lastFrame``,
``referenceImages``) are decoded and checked; ``video {uri}`` extends an earlier output by 7 s
(rendered as the stitched clip, billed for the 7 s). There is no cancel or delete. Errors use
Google's ``{"error": {"code", "message", "status", "details"}}`` envelope; a 429 carries its retry
delay in a ``google.rpc.RetryInfo`` detail, not in a header. Assumptions:
docs/provider-assumptions.md.
"""

from __future__ import annotations

import json
import re
import secrets
import string
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
    request_origin,
    single,
)
from workspace.simulator.protocols.inputs import ImageProblem, check_image, decode_base64

# model -> resolutions and US cents per second by resolution (audio is always on).
MODELS: Final[dict[str, dict[str, Any]]] = {
    "veo-3.1-generate-preview": {"resolutions": ("720p", "1080p", "4k"), "references": True,
                                 "extends": True,
                                 "cents": {"720p": 40, "1080p": 40, "4k": 60}},
    "veo-3.1-fast-generate-preview": {"resolutions": ("720p", "1080p", "4k"), "references": True,
                                      "extends": True,
                                      "cents": {"720p": 10, "1080p": 12, "4k": 30}},
    "veo-3.1-lite-generate-preview": {"resolutions": ("720p", "1080p"), "references": False,
                                      "extends": False,
                                      "cents": {"720p": 5, "1080p": 8}},
}
# Inline images: the Gemini API's 20 MB request limit is the only bound found; ours per image.
IMAGE_MAX_BYTES: Final = 20 * 1024 * 1024
# "The video grows by 7 s per call … the input must be a Veo output of at most 141 s at 720p;
# the result is at most 148 s" (the Veo guide).
EXTEND_SECONDS: Final = 7
EXTEND_INPUT_MAX_SECONDS: Final = 141
_FILE_URI = re.compile(r"(?:^|/)files/(?P<id>[^/:?]+)(?::download)?(?:\?.*)?$")
PIXELS: Final[dict[tuple[str, str], str]] = {
    ("16:9", "720p"): "1280x720", ("9:16", "720p"): "720x1280",
    ("16:9", "1080p"): "1920x1080", ("9:16", "1080p"): "1080x1920",
    ("16:9", "4k"): "3840x2160", ("9:16", "4k"): "2160x3840",
}
_INSTANCE_FIELDS: Final = ("prompt", "image", "lastFrame", "referenceImages", "video")
_PARAMETER_FIELDS: Final = ("aspectRatio", "resolution", "durationSeconds", "negativePrompt",
                            "personGeneration", "sampleCount", "enhancePrompt")
# Rejected by the SDK in Gemini-API mode: "only supported in Gemini Enterprise Agent Platform".
_VERTEX_ONLY: Final = ("seed", "generateAudio", "fps", "outputGcsUri", "pubsubTopic", "labels",
                       "compressionQuality", "mask", "resizeMode", "storageUri")
_RESPONSE_TYPE: Final = ("type.googleapis.com/google.ai.generativelanguage.v1beta."
                         "PredictLongRunningResponse")
# Terminal failures other than safety blocks: google.rpc.Status inside the operation.
OPERATION_ERRORS: Final[dict[str, dict[str, Any]]] = {
    "processing_error": {"code": 14, "message": "The service is currently unavailable due to "
                         "high load. Please try again later."},
    "internal_error": {"code": 13, "message": "Video generation failed because of an internal "
                       "error."},
}
RAI_REASON: Final = ("Your prompt could not be processed because it may violate our usage "
                      "guidelines.")

_CREATE_PATH = re.compile(r"^/gemini/v1beta/models/(?P<model>[^/:]+):predictLongRunning$")
_OPERATION_PATH = re.compile(r"^/gemini/v1beta/(?P<name>models/[^/:]+/operations/[^/:]+)$")
_FILE_PATH = re.compile(r"^/gemini/v1beta/files/(?P<id>[^/:]+):download$")


def google_error(code: int, status: str, message: str, *,
                 details: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> SimResponse:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return SimResponse.json(code, {"error": error}, headers)


def bad(message: str, field_name: str) -> SimResponse:
    return google_error(400, "INVALID_ARGUMENT", message, details=[{
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": field_name, "description": message}]}])


class Invalid(Exception):
    def __init__(self, response: SimResponse) -> None:
        super().__init__("invalid")
        self.response = response


def random_id(length: int = 12) -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


class GeminiVeoProtocol(SimulatedAPI):
    prefix = "/gemini"
    request_id_header = "x-request-id"
    # What ``_parse`` accepts; the Agent Platform's protocol (vertex.py) widens them.
    models: dict[str, dict[str, Any]] = MODELS
    body_fields: tuple[str, ...] = ("instances", "parameters", "webhookConfig")
    parameter_fields: tuple[str, ...] = _PARAMETER_FIELDS
    refused_parameters: tuple[str, ...] = _VERTEX_ONLY
    max_samples = 1

    def __init__(self, ctx: SimContext, media: MediaCache, cdn: MediaHost) -> None:
        super().__init__(ctx)
        self.media = media
        self.cdn = cdn
        self.book = JobBook(ctx, "gemini")
        self._files: dict[str, str] = {}  # file id -> operation name

    # ---- core hooks -------------------------------------------------------------------------

    def classify(self, request: SimRequest) -> tuple[CallKind | None, str | None]:
        if _CREATE_PATH.match(request.path) and request.method == "POST":
            return "create", None
        if _OPERATION_PATH.match(request.path) and request.method == "GET":
            return "status", None
        if _FILE_PATH.match(request.path) and request.method == "GET":
            return "download", "video"
        return None, None

    def api_key(self, request: SimRequest) -> str | None:
        key = (request.header("x-goog-api-key") or single(request, "key") or "").strip()
        return key or None

    def unauthorized(self, key: str | None) -> SimResponse:
        if key is None:
            return google_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered "
                                "callers (callers without established identity). Please use API "
                                "Key or other form of API consumer identity to call this API.")
        return google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid "
                            "API key.", details=[{
                                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                "reason": "API_KEY_INVALID",
                                "domain": "googleapis.com",
                                "metadata": {"service": "generativelanguage.googleapis.com"}}])

    def rate_limited(self, verdict: RateVerdict, retry_after: int) -> SimResponse:
        return google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check "
                            "quota).", details=[
                                {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                 "violations": [{
                                     "quotaMetric": "generativelanguage.googleapis.com/"
                                                    "predict_long_running_requests",
                                     "quotaId": "PredictLongRunningRequestsPerMinutePerProject"
                                                "PerModel",
                                     "quotaValue": str(verdict.limit)}]},
                                {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                 "retryDelay": f"{retry_after}s"}])

    def server_error(self, overloaded: bool) -> SimResponse:
        if overloaded:
            return google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again "
                                "later.")
        return google_error(500, "INTERNAL", "An internal error has occurred. Please retry or "
                            "report in https://developers.generativeai.google/guide/"
                            "troubleshooting")

    def rate_headers(self, verdict: RateVerdict) -> dict[str, str]:
        return {}

    def sweep(self) -> None:
        self.book.sweep()

    def reset(self) -> None:
        with self.ctx.lock:
            self.book.reset()
            self._files = {}

    def handle(self, request: SimRequest) -> SimResponse:
        if (match := _CREATE_PATH.match(request.path)) and request.method == "POST":
            return self._create(match["model"], request)
        if (match := _OPERATION_PATH.match(request.path)) and request.method == "GET":
            return self._operation(match["name"], request)
        if (match := _FILE_PATH.match(request.path)) and request.method == "GET":
            return self._download(match["id"], request)
        return google_error(404, "NOT_FOUND", f"Requested entity was not found: "
                            f"{request.method} {request.path[len('/gemini'):]}")

    # ---- create -----------------------------------------------------------------------------

    def _create(self, model: str, request: SimRequest) -> SimResponse:
        spec = self.models.get(model)
        if spec is None:
            return google_error(404, "NOT_FOUND", f"models/{model} is not found for API version "
                                "v1beta, or is not supported for predictLongRunning. Call "
                                "ListModels to see the list of available models and their "
                                "supported methods.")
        ctx = self.ctx
        if ctx.config.insufficient_quota:
            ctx.inc("quota_rejected_429")
            return google_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, "
                                "please check your plan and billing details.", details=[{
                                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                    "violations": [{
                                        "quotaMetric": "generativelanguage.googleapis.com/"
                                                       "predict_long_running_requests",
                                        "quotaId": "PredictLongRunningRequestsPerDayPerProject"
                                                   "PerModel"}]}])
        try:
            values = self._parse(model, spec, request)
        except Invalid as invalid:
            return invalid.response
        outcome, faults = self.book.decide(request.seq, values["prompt"])
        name = f"models/{model}/operations/{random_id()}"
        source: SimJob | None = values["source"]
        extra: dict[str, Any] = {}
        log_extra: dict[str, Any] = {"resolution": values["resolution"],
                                     "aspect_ratio": values["aspect_ratio"],
                                     "reference_images": values["references"],
                                     "images": values["images"],
                                     "negative_prompt": values["negative_prompt"]}
        seconds = values["seconds"]
        if source is not None:
            # Billed for the seconds it adds; it plays the whole stitched clip.
            seconds = EXTEND_SECONDS
            extra["output_seconds"] = self._total_seconds(source) + EXTEND_SECONDS
            log_extra.update({"operation": "extend", "source_id": source.id,
                              "output_seconds": extra["output_seconds"]})
        job = self.book.create(
            job_id=name,
            model=model,
            prompt=values["prompt"],
            size=PIXELS[(values["aspect_ratio"], values["resolution"])],
            seconds=seconds,
            cents_per_second=spec["cents"][values["resolution"]],
            outcome=outcome,
            input_reference=values["image"],
            log_extra=log_extra,
            extra=extra,
        )
        response = SimResponse.json(200, {"name": name})
        response.created_job_id = job.id
        response.forced_faults = faults
        return response

    def _parse(self, model: str, spec: dict[str, Any], request: SimRequest) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise Invalid(google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload "
                                        "received.")) from None
        if not isinstance(body, dict):
            raise Invalid(bad("The request body must be a JSON object.", "body"))
        for name in body:
            if name not in self.body_fields:
                raise Invalid(bad(f'Invalid JSON payload received. Unknown name "{name}": '
                                    "Cannot find field.", name))
        instances = body.get("instances")
        if not isinstance(instances, list) or len(instances) != 1 or not isinstance(
                instances[0], dict):
            raise Invalid(bad("instances must hold exactly one instance.", "instances"))
        instance = instances[0]
        for name in instance:
            if name not in _INSTANCE_FIELDS:
                raise Invalid(bad(f"`{name}` isn't supported by this model.",
                                    f"instances[0].{name}"))
        prompt = instance.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise Invalid(bad("A text prompt is required.", "instances[0].prompt"))
        has_image = instance.get("image") is not None
        images: list[dict[str, Any]] = []
        for name, role in (("image", "first_frame"), ("lastFrame", "last_frame")):
            if instance.get(name) is not None:
                images.append(self._check_image(instance[name], f"instances[0].{name}", role))
        if instance.get("lastFrame") is not None and not has_image:
            raise Invalid(bad("lastFrame must be used together with image.",
                                "instances[0].lastFrame"))
        references = instance.get("referenceImages") or []
        if not isinstance(references, list) or len(references) > 3:
            raise Invalid(bad("referenceImages takes at most 3 images.",
                                "instances[0].referenceImages"))
        if references and not spec["references"]:
            raise Invalid(bad(f"referenceImages isn't supported by {model}.",
                                "instances[0].referenceImages"))
        for index, reference in enumerate(references):
            if not isinstance(reference, dict) or reference.get("referenceType") != "asset":
                raise Invalid(bad("Each reference image needs referenceType 'asset'.",
                                    f"instances[0].referenceImages[{index}]"))
            for key in reference:
                if key not in ("image", "referenceType"):
                    raise Invalid(bad(f'Unknown name "{key}": Cannot find field.',
                                        f"instances[0].referenceImages[{index}].{key}"))
            images.append(self._check_image(reference.get("image"),
                                            f"instances[0].referenceImages[{index}].image",
                                            "reference"))
        source = None
        if instance.get("video") is not None:
            if has_image or references:
                raise Invalid(bad("video cannot be combined with image, lastFrame or "
                                    "referenceImages.", "instances[0].video"))
            if not spec["extends"]:
                raise Invalid(bad(f"Video extension isn't supported by {model}.",
                                    "instances[0].video"))
            source = self._source_video(instance["video"])

        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise Invalid(bad("parameters must be an object.", "parameters"))
        for name in parameters:
            if name in self.refused_parameters:
                raise Invalid(bad(f"`{name}` isn't supported by the Gemini API; it is only "
                                    "supported on Vertex AI.", f"parameters.{name}"))
            if name not in self.parameter_fields:
                raise Invalid(bad(f"`{name}` isn't supported by this model.",
                                    f"parameters.{name}"))
        aspect = parameters.get("aspectRatio", "16:9")
        if aspect not in ("16:9", "9:16"):
            raise Invalid(bad(f"Unsupported aspect ratio: {aspect}. Supported: 16:9, 9:16.",
                                "parameters.aspectRatio"))
        resolution = parameters.get("resolution", "720p")
        if resolution not in spec["resolutions"]:
            raise Invalid(bad(f"Unsupported resolution: {resolution}. {model} supports "
                                f"{', '.join(spec['resolutions'])}.", "parameters.resolution"))
        duration = parameters.get("durationSeconds", 8)
        try:
            seconds = int(str(duration))
        except ValueError:
            seconds = 0
        if isinstance(duration, bool) or seconds not in (4, 6, 8):
            raise Invalid(bad(f"Unsupported duration: {duration}. Supported: 4, 6, 8.",
                                "parameters.durationSeconds"))
        if seconds != 8 and (resolution in ("1080p", "4k") or references or source):
            why = ("reference images" if references else "video extension" if source
                   else resolution)
            raise Invalid(bad(f"Duration must be 8 seconds with {why}.",
                                "parameters.durationSeconds"))
        people = parameters.get("personGeneration")
        allowed_people = ("allow_adult",) if (has_image or references) else ("allow_all",)
        if people is not None and people not in allowed_people:
            raise Invalid(bad(f"personGeneration {people!r} is not allowed here; use "
                                f"{allowed_people[0]!r}.", "parameters.personGeneration"))
        count = parameters.get("sampleCount", 1)
        if isinstance(count, bool) or count not in range(1, self.max_samples + 1):
            raise Invalid(bad(f"sampleCount must be from 1 to {self.max_samples}.",
                                "parameters.sampleCount"))
        negative = parameters.get("negativePrompt")
        if negative is not None and not isinstance(negative, str):
            raise Invalid(bad("negativePrompt must be a string.", "parameters.negativePrompt"))
        if source is not None:
            if resolution != "720p" or source.size != PIXELS[(aspect, "720p")]:
                raise Invalid(bad("Video extension is supported at 720p only, in the aspect "
                                    "ratio of the video it extends.", "parameters.resolution"))
            if self._total_seconds(source) > EXTEND_INPUT_MAX_SECONDS:
                raise Invalid(bad(f"The input video must be at most "
                                    f"{EXTEND_INPUT_MAX_SECONDS} seconds long to be extended.",
                                    "instances[0].video"))
            # Referencing a video for extension resets its two-day retention.
            source.expires_sim = self.ctx.clock.now() + self.ctx.config.content_ttl_seconds
            source.expires_wall = self.ctx.clock.wall_at(source.expires_sim)
        return {"prompt": prompt, "aspect_ratio": aspect, "resolution": resolution,
                "seconds": seconds, "image": has_image, "references": len(references),
                "images": images, "source": source, "negative_prompt": negative,
                "samples": count, "parameters": parameters}

    @staticmethod
    def _total_seconds(job: SimJob) -> int:
        return int(job.extra.get("output_seconds", job.seconds))

    def _source_video(self, video: object) -> SimJob:
        """The earlier Veo output a ``video {uri}`` names (it must still be stored)."""
        where = "instances[0].video"
        if not isinstance(video, dict):
            raise Invalid(bad("video must be an object with a uri.", where))
        for key in video:
            if key not in ("uri", "mimeType"):
                raise Invalid(bad(f"`{key}` isn't supported for video in the Gemini API; "
                                    "pass the uri of a generated video.", f"{where}.{key}"))
        uri = video.get("uri")
        match = _FILE_URI.search(uri) if isinstance(uri, str) else None
        with self.ctx.lock:
            name = self._files.get(match["id"]) if match else None
            job = self.book.get(name) if name else None
            if job is None or self.book.expired(job):
                raise Invalid(google_error(404, "NOT_FOUND", "The video to extend was not "
                                            "found; generated videos are kept for two days."))
        return job

    @staticmethod
    def _check_image(image: object, where: str, role: str) -> dict[str, Any]:
        if not isinstance(image, dict):
            raise Invalid(bad("An image must be an object with bytesBase64Encoded and "
                                "mimeType.", where))
        if image.get("gcsUri") is not None:
            raise Invalid(bad("gcsUri is not supported in the Gemini API.", where))
        for key in image:
            if key not in ("bytesBase64Encoded", "mimeType"):
                raise Invalid(bad(f'Unknown name "{key}": Cannot find field.',
                                    f"{where}.{key}"))
        data, mime = image.get("bytesBase64Encoded"), image.get("mimeType")
        if not isinstance(data, str) or not data:
            raise Invalid(bad("bytesBase64Encoded is required.", where))
        if mime not in ("image/png", "image/jpeg", "image/webp"):
            raise Invalid(bad(f"Unsupported mimeType {mime!r}.", where))
        try:
            seen = check_image(decode_base64(data), mime, max_bytes=IMAGE_MAX_BYTES)
        except ImageProblem as problem:
            raise Invalid(bad(f"Unable to process input image: {problem}.", where)) from None
        return seen.log(role)

    # ---- poll and download ------------------------------------------------------------------

    def _operation(self, name: str, request: SimRequest) -> SimResponse:
        with self.ctx.lock:
            job = self.book.get(name)
            if job is None:
                return google_error(404, "NOT_FOUND", "Requested entity was not found.")
            phase, _ = self.book.observe(job)
            body: dict[str, Any] = {"name": name}
            if phase in ("queued", "running"):
                return SimResponse.json(200, body)
            body["done"] = True
            if job.outcome in OPERATION_ERRORS:
                body["error"] = dict(OPERATION_ERRORS[job.outcome])
            elif job.outcome == "moderation":
                body["response"] = {"@type": _RESPONSE_TYPE, "generateVideoResponse": {
                    "raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [RAI_REASON]}}
            else:
                file_id = self._file_id(job)
                uri = (f"{request_origin(request)}/gemini/v1beta/files/{file_id}:download"
                       "?alt=media")
                body["response"] = {"@type": _RESPONSE_TYPE, "generateVideoResponse": {
                    "generatedSamples": [{"video": {"uri": uri}}]}}
        return SimResponse.json(200, body)

    def _file_id(self, job: SimJob) -> str:
        file_id: str | None = job.extra.get("file_id")
        if file_id is None:
            file_id = random_id()
            job.extra["file_id"] = file_id
            self._files[file_id] = job.id
        return file_id

    def _download(self, file_id: str, request: SimRequest) -> SimResponse:
        if single(request, "alt") != "media":
            return bad("Only alt=media downloads are simulated.", "alt")
        with self.ctx.lock:
            name = self._files.get(file_id)
            job = self.book.get(name) if name else None
            # Generated files are deleted when their retention ends.
            if job is None or self.book.expired(job):
                return google_error(404, "NOT_FOUND", "Requested entity was not found.")
            # google-genai follows this redirect with x-goog-api-key still attached (its httpx
            # client drops only Authorization across origins); Google's real target is assumed to
            # accept that, the SDK being Google's own. Reelhouse's adapter never sends it (its
            # tests assert credentialed_requests == 0).
            link = self.cdn.link(self.book, job, request_origin(request), f"{file_id}.mp4",
                                 keys_tolerated=True)
        return SimResponse(status=302, body=b"", content_type="text/html; charset=UTF-8",
                           headers={"location": link})
