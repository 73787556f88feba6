"""The Runway API (``/v1/...`` under ``/runway``), as runwayml/sdk-python v5.24.0 (its
``types/``, driven unmodified in tests/simulator/test_runway_sdk.py) and docs.dev.runwayml.com
describe it.

Simulated: ``POST /v1/text_to_video``, ``POST /v1/image_to_video``, ``GET /v1/tasks/{id}`` and
``DELETE /v1/tasks/{id}`` (cancel or delete), with ``Authorization: Bearer`` and the required
``X-Runway-Version: 2024-11-06``. ``promptImage`` data URIs are decoded and checked (type,
5 MB, the positions each model takes). Outputs are signed links on the simulator's ``/cdn/``.
Costs are in credits (1 credit = 1 US cent): the create answer and unfinished tasks carry
``estimatedCost.credits``, finished ones ``cost.credits``, what the task was finally charged (0
for a failure, which the simulator never bills). A task canceled while RUNNING keeps its charge
("if that check observes RUNNING, cancellation does not refund credits", ``tasks.delete``).
Where the docs are silent, the choices are listed in docs/provider-assumptions.md.
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
    iso_time,
    request_origin,
)
from workspace.simulator.protocols.inputs import ImageProblem, check_data_uri

API_VERSION: Final = "2024-11-06"
PROMPT_MAX: Final = 1000
DATA_URI_MAX: Final = 5 * 1024 * 1024
SEED_MAX: Final = 4294967295

_T2V_WIDE: Final = ("1280:720", "720:1280")
_I2V_GEN4: Final = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672")
_VEO: Final = ("1280:720", "720:1280", "1920:1080", "1080:1920")

# model -> what it accepts. cents: (with audio, without audio) credits per second.
MODELS: Final[dict[str, dict[str, Any]]] = {
    "gen4.5": {"endpoints": ("text_to_video", "image_to_video"), "durations": tuple(range(2, 11)),
               "t2v_ratios": _T2V_WIDE, "i2v_ratios": _I2V_GEN4, "seed": True, "audio": False,
               "negative": False, "duration_required": True, "cents": (12, 12),
               "positions": ("first",), "formats": True},
    "gen4_turbo": {"endpoints": ("image_to_video",), "durations": tuple(range(2, 11)),
                   "t2v_ratios": (), "i2v_ratios": _I2V_GEN4, "seed": True, "audio": False,
                   "negative": False, "duration_required": False, "cents": (5, 5),
                   "positions": ("first",)},
    "veo3.1": {"endpoints": ("text_to_video", "image_to_video"), "durations": (4, 6, 8),
               "t2v_ratios": _VEO, "i2v_ratios": _VEO, "seed": True, "audio": True,
               "negative": True, "duration_required": False, "cents": (40, 20),
               "positions": ("first", "last")},
    "veo3.1_fast": {"endpoints": ("text_to_video", "image_to_video"), "durations": (4, 6, 8),
                    "t2v_ratios": _VEO, "i2v_ratios": _VEO, "seed": True, "audio": True,
                    "negative": True, "duration_required": False, "cents": (15, 10),
                    "positions": ("first", "last")},
    "veo3": {"endpoints": ("text_to_video", "image_to_video"), "durations": (8,),
             "t2v_ratios": _VEO, "i2v_ratios": _VEO, "seed": False, "audio": False,
             "negative": True, "duration_required": True, "cents": (40, 40),
             "positions": ("first",)},
}
_COMMON_FIELDS: Final = ("model", "promptText", "ratio", "duration", "seed", "audio",
                         "negativePrompt", "contentModeration", "outputFormat", "proresProfile")
# gen4.5's ``outputFormat`` (SDK 5.24 ``Gen4_5``): credits per second added to the model's price.
# "5 credits per second for prores and png_sequence, and 20 credits per second for every 10-bit
# and deeper profile", 40 above 4 megapixels (no size here is). The simulator still renders an
# MP4 whatever the format: it checks and bills the choice, it does not encode ProRes or EXR.
OUTPUT_FORMATS: Final[dict[str, int]] = {
    "mp4": 0, "prores": 5, "png_sequence": 5, "hdr10": 20, "hlg": 20, "sdr_rec709_10bit": 20,
    "hdr_pq_12bit_master": 20, "hdr_prores": 20, "hdr_png_sequence": 20, "hdr_exr_sequence": 20,
    "hdr_exr_acescg_sequence_1_3": 20, "hdr_exr_acescg_sequence_2_0": 20,
}
PRORES_PROFILES: Final[dict[str, tuple[str, ...]]] = {
    "prores": ("422", "4444", "422 Proxy", "422 LT", "422 HQ", "4444 XQ"),
    "hdr_prores": ("422", "422 HQ", "4444"),
}

FAILURES: Final[dict[str, tuple[str, str]]] = {
    "moderation": ("SAFETY.INPUT.TEXT",
                   "The prompt text was rejected by content moderation."),
    # Runway's "there was a problem performing content moderation": the service's own trouble.
    "processing_error": ("INPUT_PREPROCESSING.INTERNAL",
                         "There was a problem performing content moderation. Please try again "
                         "later."),
    "internal_error": ("INTERNAL.BAD_OUTPUT.CODE01",
                       "The output was rejected by our internal systems for quality or system "
                       "error reasons."),
}
_STATUS: Final[dict[str, str]] = {
    "queued": "PENDING",
    "running": "RUNNING",
    "completed": "SUCCEEDED",
    "failed": "FAILED",
    "canceled": "CANCELLED",
}

_CREATE_PATH = re.compile(r"^/runway/v1/(?P<endpoint>text_to_video|image_to_video)$")
_TASK_PATH = re.compile(r"^/runway/v1/tasks/(?P<id>[^/]+)$")


def error_response(status: int, message: str, *, issues: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> SimResponse:
    """Runway's documented envelope: a JSON object whose ``error`` member is readable text."""
    body: dict[str, Any] = {"error": message}
    if issues is not None:
        body["issues"] = issues
    return SimResponse.json(status, body, headers)


class _Invalid(Exception):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


class RunwayProtocol(SimulatedAPI):
    prefix = "/runway"
    request_id_header = "x-request-id"

    def __init__(self, ctx: SimContext, media: MediaCache, cdn: MediaHost) -> None:
        super().__init__(ctx)
        self.media = media
        self.cdn = cdn
        self.book = JobBook(ctx, "runway")

    # ---- core hooks -------------------------------------------------------------------------

    def classify(self, request: SimRequest) -> tuple[CallKind | None, str | None]:
        if _CREATE_PATH.match(request.path) and request.method == "POST":
            return "create", None
        if _TASK_PATH.match(request.path):
            if request.method == "GET":
                return "status", None
            if request.method == "DELETE":
                return "delete", None
        return None, None

    def api_key(self, request: SimRequest) -> str | None:
        scheme, _, token = (request.header("authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    def unauthorized(self, key: str | None) -> SimResponse:
        if key is None:
            return error_response(401, "No API key provided. Send it in the Authorization "
                                  "header as a Bearer token.")
        return error_response(401, "The provided API key is not valid.")

    def rate_limited(self, verdict: RateVerdict, retry_after: int) -> SimResponse:
        return error_response(429, "Too many requests. You have reached the rate limit for "
                              "your organization; try again later.",
                              headers={"retry-after": str(retry_after)})

    def server_error(self, overloaded: bool) -> SimResponse:
        if overloaded:
            return error_response(503, "Runway is shedding load. Please retry later.",
                                  headers={"retry-after": "1"})
        return error_response(502, "Bad gateway.")

    def rate_headers(self, verdict: RateVerdict) -> dict[str, str]:
        return {}

    def sweep(self) -> None:
        self.book.sweep()

    def reset(self) -> None:
        self.book.reset()

    def handle(self, request: SimRequest) -> SimResponse:
        version = request.header("x-runway-version")
        if version != API_VERSION:
            what = "is missing" if version is None else f"'{version}' is not supported"
            return error_response(400, f"The X-Runway-Version header {what}. Use "
                                  f"'{API_VERSION}'.")
        if match := _CREATE_PATH.match(request.path):
            if request.method == "POST":
                return self._create(match["endpoint"], request)
        elif match := _TASK_PATH.match(request.path):
            if request.method == "GET":
                return self._retrieve(match["id"], request)
            if request.method == "DELETE":
                return self._delete(match["id"])
            return error_response(405, f"Method {request.method} is not allowed.")
        return error_response(404, f"Not found: {request.method} {request.path}")

    # ---- endpoints --------------------------------------------------------------------------

    def _create(self, endpoint: str, request: SimRequest) -> SimResponse:
        ctx = self.ctx
        if ctx.config.insufficient_quota:
            ctx.inc("quota_rejected_429")
            return error_response(400, "You do not have enough credits to run this task.")
        try:
            params = self._parse(endpoint, request)
        except _Invalid as invalid:
            return error_response(400, invalid.message,
                                  issues=[{"path": [invalid.field], "message": invalid.message}])
        outcome, faults = self.book.decide(request.seq, params["prompt"])
        spec = MODELS[params["model"]]
        cents = spec["cents"][0] if params["audio"] else spec["cents"][1]
        cents += OUTPUT_FORMATS[params["output_format"]]
        ratio: str = params["ratio"]
        job = self.book.create(
            job_id=str(uuid.uuid4()),
            model=params["model"],
            prompt=params["prompt"],
            size=ratio.replace(":", "x"),
            seconds=params["duration"],
            cents_per_second=cents,
            outcome=outcome,
            input_reference=endpoint == "image_to_video",
            log_extra={"ratio": ratio, "audio": params["audio"], "endpoint": endpoint,
                       "images": params["images"], "seed": params["seed"],
                       "negative_prompt": params["negative_prompt"],
                       "output_format": params["output_format"]},
        )
        # "The maximum credits this task may charge" (SDK TextToVideoCreateResponse).
        response = SimResponse.json(200, {"id": job.id,
                                          "estimatedCost": {"credits": float(job.cents)}})
        response.created_job_id = job.id
        response.forced_faults = faults
        return response

    def _parse(self, endpoint: str, request: SimRequest) -> dict[str, Any]:
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise _Invalid("body", "The request body must be JSON (Content-Type: "
                           "application/json).")
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise _Invalid("body", "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise _Invalid("body", "The request body must be a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or model not in MODELS:
            raise _Invalid("model", f"Invalid model {model!r}; expected one of "
                           f"{', '.join(MODELS)}.")
        spec = MODELS[model]
        if endpoint not in spec["endpoints"]:
            raise _Invalid("model", f"Model '{model}' is not available on /v1/{endpoint}.")
        allowed_fields = _COMMON_FIELDS + (("promptImage",) if endpoint == "image_to_video"
                                           else ())
        for name in body:
            if name not in allowed_fields:
                raise _Invalid(name, f"Unrecognized key '{name}' in the request body.")
        prompt = body.get("promptText")
        if endpoint == "text_to_video" or prompt is not None:
            if not isinstance(prompt, str) or not prompt.strip():
                raise _Invalid("promptText", "promptText must be a non-empty string.")
            if len(prompt.encode("utf-16-le")) // 2 > PROMPT_MAX:
                raise _Invalid("promptText", f"promptText must be at most {PROMPT_MAX} "
                               "characters (UTF-16 code units).")
        images: list[dict[str, Any]] = []
        if endpoint == "image_to_video":
            images = self._check_image(body.get("promptImage"), spec["positions"], model)
        ratios = spec["t2v_ratios"] if endpoint == "text_to_video" else spec["i2v_ratios"]
        ratio = body.get("ratio")
        if ratio not in ratios:
            raise _Invalid("ratio", f"Invalid ratio {ratio!r} for {model}; expected one of "
                           f"{', '.join(ratios)}.")
        duration = body.get("duration")
        if duration is None and not spec["duration_required"]:
            duration = max(spec["durations"])
        if (not isinstance(duration, int) or isinstance(duration, bool)
                or duration not in spec["durations"]):
            allowed = ", ".join(str(d) for d in spec["durations"])
            raise _Invalid("duration", f"Invalid duration {duration!r} for {model}; expected "
                           f"one of {allowed}.")
        seed = body.get("seed")
        if seed is not None:
            if not spec["seed"]:
                raise _Invalid("seed", f"Model '{model}' does not accept a seed.")
            if (not isinstance(seed, int) or isinstance(seed, bool)
                    or not 0 <= seed <= SEED_MAX):
                raise _Invalid("seed", f"seed must be an integer from 0 to {SEED_MAX}.")
        audio = body.get("audio")
        if audio is not None:
            if not spec["audio"]:
                raise _Invalid("audio", f"Model '{model}' does not accept audio.")
            if not isinstance(audio, bool):
                raise _Invalid("audio", "audio must be a boolean.")
        negative = body.get("negativePrompt")
        if negative is not None:
            if not spec["negative"]:
                raise _Invalid("negativePrompt", f"Model '{model}' does not accept "
                               "negativePrompt.")
            if not isinstance(negative, str):
                raise _Invalid("negativePrompt", "negativePrompt must be a string.")
        moderation = body.get("contentModeration")
        if moderation is not None and not isinstance(moderation, dict):
            raise _Invalid("contentModeration", "contentModeration must be an object.")
        output_format = body.get("outputFormat", "mp4")
        profile = body.get("proresProfile")
        if "outputFormat" in body or profile is not None:
            if not spec.get("formats"):
                name = "outputFormat" if "outputFormat" in body else "proresProfile"
                raise _Invalid(name, f"Model '{model}' does not accept {name}.")
            if output_format not in OUTPUT_FORMATS:
                raise _Invalid("outputFormat", f"Invalid outputFormat {output_format!r}; "
                               f"expected one of {', '.join(OUTPUT_FORMATS)}.")
            if profile is not None and profile not in PRORES_PROFILES.get(output_format, ()):
                raise _Invalid("proresProfile", f"proresProfile {profile!r} is not valid with "
                               f"outputFormat {output_format!r}.")
        return {"model": model, "prompt": prompt or "", "ratio": ratio, "duration": duration,
                "audio": bool(spec["audio"] and audio is not False), "images": images,
                "seed": seed, "negative_prompt": negative, "output_format": output_format}

    @staticmethod
    def _check_image(image: object, positions: tuple[str, ...],
                     model: str) -> list[dict[str, Any]]:
        """The frames a ``promptImage`` carries; data URIs are decoded and checked."""
        def check_uri(uri: object, position: str) -> dict[str, Any]:
            if not isinstance(uri, str) or not uri:
                raise _Invalid("promptImage", "promptImage must be an HTTPS URL, a runway:// "
                               "upload URI or a data URI.")
            if uri.startswith("data:"):
                if not re.match(r"^data:image/(png|jpeg|webp);base64,", uri):
                    raise _Invalid("promptImage", "promptImage data URIs must be base64 "
                                   "images (image/png, image/jpeg or image/webp).")
                if len(uri) > DATA_URI_MAX * 4 // 3 + 64:
                    raise _Invalid("promptImage", "promptImage data URIs may be at most 5MB.")
                try:
                    seen = check_data_uri(uri, max_bytes=DATA_URI_MAX)
                except ImageProblem as problem:
                    raise _Invalid("promptImage", f"Invalid promptImage: {problem}.") from None
                return seen.log(position)
            if not uri.startswith(("https://", "runway://")):
                raise _Invalid("promptImage", "promptImage URLs must use HTTPS.")
            return {"role": position, "url": uri}

        if not isinstance(image, list):
            return [check_uri(image, "first")]
        if not image:
            raise _Invalid("promptImage", "promptImage must not be empty.")
        seen: list[dict[str, Any]] = []
        for item in image:
            if not isinstance(item, dict) or item.get("position") not in ("first", "last"):
                raise _Invalid("promptImage", "Each promptImage item needs a uri and a "
                               "position of 'first' or 'last'.")
            for key in item:
                if key not in ("uri", "position"):
                    raise _Invalid("promptImage", f"Unrecognized key '{key}' in a promptImage "
                                   "item.")
            position = item["position"]
            if position not in positions:
                raise _Invalid("promptImage", f"Model '{model}' accepts promptImage position "
                               f"{' or '.join(repr(p) for p in positions)} only.")
            if any(frame["role"] == position for frame in seen):
                raise _Invalid("promptImage", f"Only one promptImage may have position "
                               f"'{position}'.")
            seen.append(check_uri(item.get("uri"), position))
        if not any(frame["role"] == "first" for frame in seen):
            raise _Invalid("promptImage", "A promptImage with position 'first' is required.")
        return seen

    def _retrieve(self, task_id: str, request: SimRequest) -> SimResponse:
        with self.ctx.lock:
            job = self.book.get(task_id)
            if job is None:
                return error_response(404, "Task not found.")
            phase, progress = self.book.observe(job)
            body = self._task(job, phase, progress, request)
        return SimResponse.json(200, body)

    def _task(self, job: SimJob, phase: str, progress: float,
              request: SimRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": job.id,
            "createdAt": iso_time(job.created_wall),
            "status": _STATUS[phase],
        }
        if phase in ("queued", "running"):
            body["estimatedCost"] = {"credits": float(job.cents)}
        else:
            # Final, in whole credits: what the book charged (a failure is never billed here).
            body["cost"] = {"credits": int(job.log.get("billed_cents", 0))}
        if phase == "running":
            body["progress"] = round(progress, 4)
        elif phase == "completed":
            body["output"] = [self.cdn.link(self.book, job, request_origin(request),
                                            f"{job.id}.mp4")]
        elif phase == "failed":
            code, message = FAILURES[job.outcome]
            body["failure"] = message
            body["failureCode"] = code
        return body

    def _delete(self, task_id: str) -> SimResponse:
        with self.ctx.lock:
            job = self.book.get(task_id)
            if job is None:
                return error_response(404, "Task not found.")
            # Running, pending or throttled tasks are canceled; others deleted. Either way the
            # task can no longer be fetched. A cancel that finds the task RUNNING refunds
            # nothing (sdk-python 5.24 resources/tasks.py), so the book bills it.
            self.book.cancel(job, bill_if_running=True)
            self.book.delete(job)
        return SimResponse(status=204, body=b"", content_type="application/json")
