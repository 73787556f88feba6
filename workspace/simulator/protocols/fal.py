"""The fal.ai queue (``queue.fal.run``, here under ``/fal``), as fal-ai/fal's ``fal_client`` and
fal.ai/docs describe it, serving the Veo 3.1 endpoints.

Simulated: submit ``POST /{endpoint_id}``; ``GET /{owner}/{alias}/requests/{id}/status``
(``IN_QUEUE`` / ``IN_PROGRESS`` / ``COMPLETED``); the result ``GET /{owner}/{alias}/requests/{id}``;
cancel ``PUT …/cancel``. Status, result and cancel URLs use only ``owner/alias``, never the
endpoint's sub-path, as the SDK builds them. The ``…/image-to-video`` endpoints decode the
``image_url`` data URI. Auth is ``Authorization: Key <FAL_KEY>``. Outputs
are signed links on the simulator's ``/cdn/``. Assumptions: docs/provider-assumptions.md.
"""

from __future__ import annotations

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
    request_origin,
    single,
)
from workspace.simulator.protocols.inputs import ImageProblem, check_data_uri

# endpoint id -> (model family, image-to-video?, resolutions, cents with audio, cents silent)
ENDPOINTS: Final[dict[str, dict[str, Any]]] = {
    "fal-ai/veo3.1": {"model": "fal-ai/veo3.1", "i2v": False,
                      "resolutions": ("720p", "1080p", "4k"),
                      "cents": {"720p": (40, 20), "1080p": (40, 20), "4k": (60, 40)}},
    "fal-ai/veo3.1/image-to-video": {"model": "fal-ai/veo3.1", "i2v": True,
                                     "resolutions": ("720p", "1080p", "4k"),
                                     "cents": {"720p": (40, 20), "1080p": (40, 20),
                                               "4k": (60, 40)}},
    "fal-ai/veo3.1/fast": {"model": "fal-ai/veo3.1/fast", "i2v": False,
                           "resolutions": ("720p", "1080p"),
                           "cents": {"720p": (15, 10), "1080p": (15, 10)}},
    "fal-ai/veo3.1/fast/image-to-video": {"model": "fal-ai/veo3.1/fast", "i2v": True,
                                          "resolutions": ("720p", "1080p"),
                                          "cents": {"720p": (15, 10), "1080p": (15, 10)}},
}
DURATIONS: Final = ("4s", "6s", "8s")
# fal's limit on an inline (data URI) file input is not published; this one is ours.
DATA_URI_MAX_BYTES: Final = 10 * 1024 * 1024
ASPECT_RATIOS: Final = ("16:9", "9:16")
_FIELDS: Final = ("prompt", "aspect_ratio", "duration", "resolution", "generate_audio",
                  "negative_prompt", "seed", "auto_fix", "safety_tolerance", "image_url")
_PIXELS: Final[dict[tuple[str, str], str]] = {
    ("16:9", "720p"): "1280x720", ("9:16", "720p"): "720x1280",
    ("16:9", "1080p"): "1920x1080", ("9:16", "1080p"): "1080x1920",
    ("16:9", "4k"): "3840x2160", ("9:16", "4k"): "2160x3840",
}

# Terminal failures: (HTTP status of the result, body, extra headers, status error_type).
_POLICY_MESSAGE: Final = ("The content could not be processed because it contained material "
                          "flagged by a content checker.")
_REQUEST_PATH = re.compile(
    r"^/fal/(?P<app>(?:workflows/|comfy/)?[^/]+/[^/]+)/requests/(?P<id>[^/]+)"
    r"(?P<tail>/status|/cancel)?$")


def detail_error(status: int, detail: Any, *, error_type: str | None = None,
                 headers: dict[str, str] | None = None) -> SimResponse:
    body: dict[str, Any] = {"detail": detail}
    extra = dict(headers or {})
    if error_type is not None:
        body["error_type"] = error_type
        extra["x-fal-error-type"] = error_type
    return SimResponse.json(status, body, extra)


def _validation(loc: str, message: str, kind: str, value: Any = None) -> SimResponse:
    item: dict[str, Any] = {"loc": ["body", loc], "msg": message, "type": kind}
    if value is not None:
        item["input"] = value
    return detail_error(422, [item], headers={"x-fal-retryable": "false"})


class _Invalid(Exception):
    def __init__(self, response: SimResponse) -> None:
        super().__init__("invalid")
        self.response = response


def app_of(endpoint_id: str) -> str:
    """``fal-ai/veo3.1/fast`` -> ``fal-ai/veo3.1`` (namespaced ids keep their namespace)."""
    parts = endpoint_id.split("/")
    keep = 3 if parts[0] in ("workflows", "comfy") else 2
    return "/".join(parts[:keep])


class FalQueueProtocol(SimulatedAPI):
    prefix = "/fal"
    request_id_header = "x-fal-request-id"

    def __init__(self, ctx: SimContext, media: MediaCache, cdn: MediaHost) -> None:
        super().__init__(ctx)
        self.media = media
        self.cdn = cdn
        self.book = JobBook(ctx, "fal")

    # ---- core hooks -------------------------------------------------------------------------

    def classify(self, request: SimRequest) -> tuple[CallKind | None, str | None]:
        if match := _REQUEST_PATH.match(request.path):
            if match["tail"] == "/cancel" and request.method == "PUT":
                return "delete", None
            if request.method == "GET":
                return "status", None
            return None, None
        if request.method == "POST":
            return "create", None
        return None, None

    def api_key(self, request: SimRequest) -> str | None:
        scheme, _, token = (request.header("authorization") or "").strip().partition(" ")
        if scheme.lower() != "key" or not token.strip():
            return None
        return token.strip()

    def unauthorized(self, key: str | None) -> SimResponse:
        if key is None:
            return detail_error(401, "Missing credentials: send 'Authorization: Key <FAL_KEY>'.")
        return detail_error(401, "Invalid API key.")

    def rate_limited(self, verdict: RateVerdict, retry_after: int) -> SimResponse:
        return detail_error(429, "Too many requests, please slow down.",
                            headers={"retry-after": str(retry_after)})

    def server_error(self, overloaded: bool) -> SimResponse:
        if overloaded:
            return detail_error(503, "No runner could be scheduled for the request.",
                                error_type="runner_scheduling_failure",
                                headers={"retry-after": "1"})
        return detail_error(500, "Internal Server Error")

    def rate_headers(self, verdict: RateVerdict) -> dict[str, str]:
        return {}

    def sweep(self) -> None:
        self.book.sweep()

    def reset(self) -> None:
        self.book.reset()

    def handle(self, request: SimRequest) -> SimResponse:
        if match := _REQUEST_PATH.match(request.path):
            tail = match["tail"]
            if tail == "/cancel":
                if request.method == "PUT":
                    return self._cancel(match["app"], match["id"])
            elif request.method == "GET":
                if tail == "/status":
                    return self._status(match["app"], match["id"], request)
                return self._result(match["app"], match["id"], request)
            return detail_error(405, "Method Not Allowed")
        if request.method == "POST":
            return self._submit(request)
        return detail_error(404, "Not Found")

    # ---- endpoints --------------------------------------------------------------------------

    def _urls(self, origin: str, app: str, request_id: str) -> dict[str, str]:
        base = f"{origin}/fal/{app}/requests/{request_id}"
        return {"response_url": base, "status_url": base + "/status",
                "cancel_url": base + "/cancel"}

    def _submit(self, request: SimRequest) -> SimResponse:
        endpoint_id = request.path[len("/fal/"):].strip("/")
        endpoint = ENDPOINTS.get(endpoint_id)
        if endpoint is None:
            return detail_error(404, f"Application '{endpoint_id}' not found.")
        ctx = self.ctx
        if ctx.config.insufficient_quota:
            ctx.inc("quota_rejected_429")
            return detail_error(403, "User is locked. Reason: Exhausted balance. Top up your "
                                "balance at fal.ai/dashboard/billing.")
        try:
            values = self._parse(endpoint, request)
        except _Invalid as invalid:
            return invalid.response
        outcome, faults = self.book.decide(request.seq, values["prompt"])
        audio = values["generate_audio"]
        cents = endpoint["cents"][values["resolution"]][0 if audio else 1]
        request_id = str(uuid.uuid4())
        app = app_of(endpoint_id)
        job = self.book.create(
            job_id=request_id,
            model=endpoint["model"],
            prompt=values["prompt"],
            size=_PIXELS[(values["aspect_ratio"], values["resolution"])],
            seconds=int(values["duration"].rstrip("s")),
            cents_per_second=cents,
            outcome=outcome,
            input_reference=endpoint["i2v"],
            log_extra={"endpoint": endpoint_id, "audio": audio,
                       "resolution": values["resolution"],
                       "aspect_ratio": values["aspect_ratio"], "images": values["images"],
                       "seed": values["seed"], "negative_prompt": values["negative_prompt"]},
            extra={"app": app},
        )
        body = {"request_id": request_id, **self._urls(request_origin(request), app, request_id),
                "queue_position": 0}
        response = SimResponse.json(200, body)
        response.created_job_id = job.id
        response.forced_faults = faults
        return response

    def _parse(self, endpoint: dict[str, Any], request: SimRequest) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise _Invalid(detail_error(422, [{"loc": ["body"], "msg": "Invalid JSON",
                                               "type": "json_invalid"}])) from None
        if not isinstance(body, dict):
            raise _Invalid(_validation("body", "Input should be a valid dictionary",
                                       "dict_type"))
        for name in body:
            if name not in _FIELDS or (name == "image_url" and not endpoint["i2v"]):
                raise _Invalid(_validation(name, "Extra inputs are not permitted",
                                           "extra_forbidden", body[name]))
        prompt = body.get("prompt")
        if prompt is None:
            raise _Invalid(_validation("prompt", "Field required", "missing"))
        if not isinstance(prompt, str) or not prompt.strip():
            raise _Invalid(_validation("prompt", "String should have at least 1 character",
                                       "string_too_short", prompt))
        ratios = ASPECT_RATIOS + (("auto",) if endpoint["i2v"] else ())
        aspect = body.get("aspect_ratio", "auto" if endpoint["i2v"] else "16:9")
        if aspect not in ratios:
            raise _Invalid(_validation("aspect_ratio", "Input should be "
                                       + " or ".join(f"'{r}'" for r in ratios),
                                       "literal_error", aspect))
        duration = body.get("duration", "8s")
        if duration not in DURATIONS:
            raise _Invalid(_validation("duration", "Input should be '4s', '6s' or '8s'",
                                       "literal_error", duration))
        resolution = body.get("resolution", "720p")
        if resolution not in endpoint["resolutions"]:
            raise _Invalid(_validation("resolution", "Input should be "
                                       + " or ".join(f"'{r}'" for r in endpoint["resolutions"]),
                                       "literal_error", resolution))
        if resolution in ("1080p", "4k") and duration != "8s":
            raise _Invalid(_validation("duration", f"{resolution} videos must be 8s long",
                                       "value_error", duration))
        audio = body.get("generate_audio", True)
        if not isinstance(audio, bool):
            raise _Invalid(_validation("generate_audio", "Input should be a valid boolean",
                                       "bool_type", audio))
        for name, kind in (("negative_prompt", str), ("safety_tolerance", str)):
            if name in body and not isinstance(body[name], kind):
                raise _Invalid(_validation(name, "Input should be a valid string",
                                           "string_type", body[name]))
        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise _Invalid(_validation("seed", "Input should be a valid integer", "int_type",
                                       seed))
        images: list[dict[str, Any]] = []
        if endpoint["i2v"]:
            image = body.get("image_url")
            if image is None:
                raise _Invalid(_validation("image_url", "Field required", "missing"))
            if not isinstance(image, str) or not re.match(
                    r"^(https?://\S+|data:image/(png|jpeg|webp);base64,)", image):
                raise _Invalid(_validation("image_url", "Input should be a valid URL or a "
                                           "base64 data URI of an image", "url_parsing"))
            if image.startswith("data:"):
                try:
                    seen = check_data_uri(image, max_bytes=DATA_URI_MAX_BYTES)
                except ImageProblem as problem:
                    raise _Invalid(_validation("image_url", f"Could not read the image: "
                                               f"{problem}", "image_load_error")) from None
                images.append(seen.log("first_frame"))
            else:
                images.append({"role": "first_frame", "url": image})
        return {"prompt": prompt, "aspect_ratio": "16:9" if aspect == "auto" else aspect,
                "duration": duration, "resolution": resolution, "generate_audio": audio,
                "images": images, "seed": seed, "negative_prompt": body.get("negative_prompt")}

    def _find(self, app: str, request_id: str) -> SimJob | None:
        job = self.book.get(request_id)
        return job if job is not None and job.extra.get("app") == app else None

    def _status(self, app: str, request_id: str, request: SimRequest) -> SimResponse:
        logs = single(request, "logs") in ("1", "true", "True")
        with self.ctx.lock:
            job = self._find(app, request_id)
            if job is None:
                return detail_error(404, f"Request '{request_id}' not found.")
            phase, progress = self.book.observe(job)
            urls = self._urls(request_origin(request), app, request_id)
            body: dict[str, Any] = {"request_id": request_id,
                                    "response_url": urls["response_url"],
                                    "status_url": urls["status_url"],
                                    "cancel_url": urls["cancel_url"]}
            if phase == "queued":
                return SimResponse.json(202, {**body, "status": "IN_QUEUE",
                                              "queue_position": 0})
            log_lines = ([{"message": f"Generating: {int(progress * 100)}%", "level": "INFO"}]
                         if logs else None)
            if phase == "running":
                return SimResponse.json(202, {**body, "status": "IN_PROGRESS",
                                              "logs": log_lines})
            body.update({"status": "COMPLETED", "logs": log_lines,
                         "metrics": {"inference_time": round(job.render_sim * 0.9, 3)}})
            failure = self._failure(job, phase)
            if failure is not None:
                body["error"], body["error_type"] = failure
        return SimResponse.json(200, body)

    @staticmethod
    def _failure(job: SimJob, phase: str) -> tuple[str, str] | None:
        if phase == "canceled":
            return "Request was cancelled.", "request_cancelled"
        if phase != "failed":
            return None
        return {
            "moderation": (_POLICY_MESSAGE, "content_policy_violation"),
            "processing_error": ("No runner could be scheduled for the request after "
                                 "retries.", "runner_scheduling_failure"),
            "internal_error": ("The model failed to generate a video.",
                               "internal_server_error"),
        }[job.outcome]

    def _result(self, app: str, request_id: str, request: SimRequest) -> SimResponse:
        with self.ctx.lock:
            job = self._find(app, request_id)
            if job is None:
                return detail_error(404, f"Request '{request_id}' not found.")
            phase, _ = self.book.observe(job)
            if phase in ("queued", "running"):
                return detail_error(400, "Request is still in progress.")
            if phase == "canceled":
                return detail_error(400, "Request was cancelled.", error_type="request_cancelled")
            if phase == "failed":
                if job.outcome == "moderation":
                    return detail_error(422, [{
                        "loc": ["body", "prompt"], "msg": _POLICY_MESSAGE,
                        "type": "content_policy_violation",
                        "url": "https://docs.fal.ai/errors#content_policy_violation",
                        "ctx": {"categories": ["model_moderated"]}}],
                        headers={"x-fal-retryable": "false"})
                if job.outcome == "processing_error":
                    return detail_error(503, "No runner could be scheduled for the request "
                                        "after retries.", error_type="runner_scheduling_failure")
                return detail_error(500, [{"loc": ["body"],
                                           "msg": "The model failed to generate a video.",
                                           "type": "internal_server_error"}])
            url = self.cdn.link(self.book, job, request_origin(request), "output.mp4")
        return SimResponse.json(200, {"video": {"url": url, "content_type": "video/mp4",
                                                "file_name": "output.mp4"}})

    def _cancel(self, app: str, request_id: str) -> SimResponse:
        with self.ctx.lock:
            job = self._find(app, request_id)
            if job is None:
                return SimResponse.json(404, {"status": "NOT_FOUND"})
            if not self.book.cancel(job):
                return SimResponse.json(400, {"status": "ALREADY_COMPLETED"})
        return SimResponse.json(202, {"status": "CANCELLATION_REQUESTED"})
