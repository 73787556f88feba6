"""Machinery shared by the simulated OpenAI, Runway, fal and Gemini protocols.

* ``JobBook``: one protocol's jobs. Outcomes are decided at creation (prompt triggers first, then
  the seeded ``moderation_rate``/``processing_error_rate`` dice), state is derived lazily from
  the simulated clock, and every terminal transition is committed (counted, billed, written to
  the create log) exactly once, under the lock. Each protocol only words the result its way.
* ``MediaHost``: the simulator's "CDN" under ``/cdn/``. Providers hand out output URLs on hosts
  of their own (CloudFront for Runway, ``*.fal.media`` for fal, Google's storage behind a
  redirect for Gemini); here they are signed links on the same server. A link is its own
  credential, expires with the job's content (``content_ttl_seconds`` after completion) and, like
  a pre-signed S3 URL, refuses a request that also carries an ``Authorization`` or
  ``x-goog-api-key`` header, so a key sent to the file host cannot go unnoticed.

No Django here: the simulator runs in test threads and as a bare process.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from workspace.simulator.core import (
    CallKind,
    RateVerdict,
    SimContext,
    SimRequest,
    SimResponse,
    SimulatedAPI,
    render_seconds_for,
)
from workspace.simulator.media import MediaCache, MediaError

Outcome = Literal["completed", "moderation", "processing_error", "internal_error"]
Phase = Literal["queued", "running", "completed", "failed", "canceled"]

QUEUED_FRACTION: Final = 0.1
# Moderation refuses before any work starts; the other failures strike half-way.
FAIL_AT: Final[dict[str, float]] = {
    "moderation": QUEUED_FRACTION,
    "processing_error": 0.5,
    "internal_error": 0.5,
}
OUTCOME_TRIGGERS: Final[tuple[tuple[str, Outcome], ...]] = (
    ("[moderation]", "moderation"),
    ("[processing_error]", "processing_error"),
    ("[fail]", "internal_error"),
)
FAULT_TRIGGERS: Final[tuple[tuple[str, str], ...]] = (
    ("[reset_after_create]", "reset_after_create"),
    ("[fail_5xx_after_create]", "fail_5xx_after_create"),
    ("[slow]", "slow"),
)
# Headers that carry an API key; a signed file URL must be fetched without them.
CREDENTIAL_HEADERS: Final = ("authorization", "x-goog-api-key")


def request_host(request: SimRequest) -> str:
    """Where the client reached us, so absolute URLs in answers point back at this server."""
    return request.header("host") or "127.0.0.1"


def request_origin(request: SimRequest) -> str:
    """``scheme://host`` as the client reached us: a job URL handed out over HTTPS stays HTTPS
    (fal-client, for one, speaks only TLS to the queue host)."""
    return f"{request.scheme}://{request_host(request)}"


def single(request: SimRequest, name: str) -> str | None:
    values = request.query.get(name)
    return values[-1] if values else None


def iso_time(wall: float, *, digits: int = 3) -> str:
    """RFC 3339 with a Z: milliseconds as Runway's ``createdAt``, 6 digits as Luma's."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall))
    scale = 10**digits
    return f"{stamp}.{int(wall * scale) % scale:0{digits}d}Z"


@dataclass
class SimJob:
    id: str
    model: str
    prompt: str
    # Pixel size of the rendered clip (the provider's ratio/aspect+resolution made concrete).
    size: str
    seconds: int
    created_wall: float
    created_sim: float
    render_sim: float
    outcome: Outcome
    # What the job bills when it completes.
    cents: int
    log: dict[str, Any]
    # The seconds it bills: its own length, except an extension's (the segment it adds, while
    # ``seconds`` is the stitched total the finished video is long).
    billed_seconds: int = 0
    # Protocol-specific facts (fal's endpoint, Gemini's file id, ...).
    extra: dict[str, Any] = field(default_factory=dict)
    committed: bool = False
    finished_wall: float | None = None
    expires_sim: float | None = None
    expires_wall: float | None = None
    canceled_sim: float | None = None
    deleted: bool = False

    @property
    def end_sim(self) -> float:
        """Simulated seconds after creation at which the job reaches its terminal state."""
        if self.outcome == "completed":
            return self.render_sim
        return self.render_sim * FAIL_AT[self.outcome]

    def progress_at(self, elapsed: float) -> float:
        """Fraction rendered, 0 while queued, below 1 until the end."""
        queued_for = self.render_sim * QUEUED_FRACTION
        if elapsed <= queued_for or self.render_sim <= queued_for:
            return 0.0
        return min(0.99, (elapsed - queued_for) / (self.render_sim - queued_for))

    def percent_at(self, elapsed: float) -> int:
        """Whole percent rendered, 0 while queued, at most 99 until the end (OpenAI's form)."""
        queued_for = self.render_sim * QUEUED_FRACTION
        if elapsed <= queued_for or self.render_sim <= queued_for:
            return 0
        return min(99, int(100 * (elapsed - queued_for) / (self.render_sim - queued_for)))


class JobBook:
    """The jobs of one simulated protocol; callers hold ``ctx.lock`` around reads and writes."""

    def __init__(
        self, ctx: SimContext, protocol: str, error_codes: Mapping[str, str] | None = None
    ) -> None:
        self.ctx = ctx
        self.protocol = protocol
        # Insertion order is creation order (OpenAI's list pages by it).
        self.jobs: dict[str, SimJob] = {}
        # The create log's ``error_code`` in the protocol's own words; the outcome otherwise.
        self.error_codes: Mapping[str, str] = error_codes or {}

    def decide(self, seq: int, prompt: str) -> tuple[Outcome, frozenset[str]]:
        """The job's fate and the faults its create asked for, from triggers then dice."""
        ctx = self.ctx
        lowered = prompt.lower()
        outcome: Outcome = "completed"
        for marker, forced in OUTCOME_TRIGGERS:
            if marker in lowered:
                outcome = forced
                break
        else:
            if ctx.dice.hit(ctx.config.moderation_rate, seq, "moderation"):
                outcome = "moderation"
            elif ctx.dice.hit(ctx.config.processing_error_rate, seq, "processing_error"):
                outcome = "processing_error"
        faults = frozenset(fault for marker, fault in FAULT_TRIGGERS if marker in lowered)
        return outcome, faults

    def create(
        self,
        *,
        job_id: str,
        model: str,
        prompt: str,
        size: str,
        seconds: int,
        cents_per_second: int,
        outcome: Outcome,
        input_reference: bool,
        log_extra: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        billed_seconds: int | None = None,
    ) -> SimJob:
        ctx = self.ctx
        billed = seconds if billed_seconds is None else billed_seconds
        with ctx.lock:
            created_wall = time.time()
            log: dict[str, Any] = {
                "id": job_id,
                "protocol": self.protocol,
                "created_at_real": created_wall,
                "model": model,
                "size": size,
                "seconds": seconds,
                "prompt": prompt,
                "billed": False,
                "billed_cents": 0,
                "status": None,
                "error_code": None,
                "answer": "ok",
                "slow": False,
                "deleted": False,
                "input_reference": input_reference,
                "billed_seconds": billed,
                **(log_extra or {}),
            }
            job = SimJob(
                id=job_id,
                model=model,
                prompt=prompt,
                size=size,
                seconds=seconds,
                created_wall=created_wall,
                created_sim=ctx.clock.now(),
                render_sim=render_seconds_for(ctx.config, int(billed)),
                outcome=outcome,
                cents=cents_per_second * billed,
                billed_seconds=billed,
                log=log,
                extra=dict(extra or {}),
            )
            self.jobs[job_id] = job
            ctx.log_create(log)
            ctx.inc("creates")
        return job

    def get(self, job_id: str) -> SimJob | None:
        job = self.jobs.get(job_id)
        return None if job is None or job.deleted else job

    def observe(self, job: SimJob, now: float | None = None) -> tuple[Phase, float]:
        """The job's phase and progress fraction; commits a terminal transition once."""
        now = self.ctx.clock.now() if now is None else now
        if job.canceled_sim is not None:
            return "canceled", job.progress_at(job.canceled_sim - job.created_sim)
        elapsed = now - job.created_sim
        end = job.end_sim
        if elapsed < end:
            if elapsed < job.render_sim * QUEUED_FRACTION:
                return "queued", 0.0
            return "running", job.progress_at(elapsed)
        phase: Phase = "completed" if job.outcome == "completed" else "failed"
        if not job.committed:
            self._commit(job, phase)
        return phase, 1.0 if phase == "completed" else job.progress_at(end)

    def cancel(self, job: SimJob, *, bill_if_running: bool = False) -> bool:
        """Stop a queued or running job; False if it had already finished.

        Not billed, unless ``bill_if_running`` (the provider keeps the charge of a job it had
        started, as Runway does) and the job was already running.
        """
        now = self.ctx.clock.now()
        phase, _ = self.observe(job, now)
        if phase not in ("queued", "running"):
            return False
        job.canceled_sim = now
        job.committed = True
        job.finished_wall = time.time()
        job.log["status"] = "canceled"
        if bill_if_running and phase == "running":
            self._bill(job)
        return True

    def expired(self, job: SimJob, now: float | None = None) -> bool:
        now = self.ctx.clock.now() if now is None else now
        return job.expires_sim is not None and now >= job.expires_sim

    def delete(self, job: SimJob) -> None:
        job.deleted = True
        job.log["deleted"] = True

    def sweep(self) -> None:
        with self.ctx.lock:
            now = self.ctx.clock.now()
            for job in self.jobs.values():
                if not job.committed:
                    self.observe(job, now)

    def reset(self) -> None:
        with self.ctx.lock:
            self.jobs = {}

    def _bill(self, job: SimJob) -> None:
        ctx = self.ctx
        ctx.inc("jobs_billed")
        ctx.inc("billed_seconds", job.billed_seconds)
        ctx.inc("billed_cents", job.cents)
        job.log["billed"] = True
        job.log["billed_cents"] = job.cents

    def _commit(self, job: SimJob, phase: Phase) -> None:
        ctx = self.ctx
        job.committed = True
        end_sim = job.created_sim + job.end_sim
        job.finished_wall = max(job.created_wall, ctx.clock.wall_at(end_sim))
        job.log["finished_at_real"] = job.finished_wall
        job.log["status"] = phase
        if phase == "completed":
            # Snapshot the TTL so an expiry already shown to clients stays true.
            job.expires_sim = end_sim + ctx.config.content_ttl_seconds
            job.expires_wall = max(job.finished_wall, ctx.clock.wall_at(job.expires_sim))
            ctx.inc("jobs_completed")
            self._bill(job)
        else:
            ctx.inc("jobs_failed")
            job.log["error_code"] = self.error_codes.get(job.outcome, job.outcome)


@dataclass
class _Link:
    book: JobBook
    job_id: str
    # Served even when the request carries a key (still counted in credentialed_requests).
    keys_tolerated: bool = False


def _xml_error(status: int, code: str, message: str,
               headers: dict[str, str] | None = None) -> SimResponse:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>").encode()
    return SimResponse(status=status, body=body, content_type="application/xml",
                       headers=dict(headers or {}))


class MediaHost(SimulatedAPI):
    """Signed output URLs under ``/cdn/{token}/{file}``, shared by every provider protocol."""

    prefix = "/cdn"
    request_id_header = "x-cdn-request-id"

    def __init__(self, ctx: SimContext, media: MediaCache) -> None:
        super().__init__(ctx)
        self.media = media
        self._links: dict[str, _Link] = {}
        # Requests that reached a signed URL with a key header: a leak, which tests assert on.
        self.credentialed_requests = 0

    def link(self, book: JobBook, job: SimJob, origin: str, filename: str = "output.mp4", *,
             keys_tolerated: bool = False) -> str:
        """A signed URL for the job's output under ``origin`` (``request_origin``).

        ``keys_tolerated``: the target of a provider's own redirect that its official SDK
        follows with the key still attached (google-genai's file download); such a request is
        answered, and still counted in ``credentialed_requests``, so an adapter's tests can
        assert it never sends one."""
        with self.ctx.lock:
            token = job.extra.get("cdn_token")
            if token is None:
                token = secrets.token_urlsafe(24)
                job.extra["cdn_token"] = token
                self._links[token] = _Link(book, job.id, keys_tolerated)
        return f"{origin}/cdn/{token}/{filename}"

    def _token(self, request: SimRequest) -> str | None:
        parts = request.path.split("/")
        # ["", "cdn", token, filename]
        return parts[2] if len(parts) == 4 and parts[1] == "cdn" else None

    def classify(self, request: SimRequest) -> tuple[CallKind | None, str | None]:
        if request.method == "GET" and self._token(request) is not None:
            return "download", "video"
        return None, None

    def api_key(self, request: SimRequest) -> str | None:
        # The signed URL is the credential. The core then checks it like a key, so a valid
        # link answers with one the core accepts whatever ``api_keys`` says.
        token = self._token(request)
        if token is None or token not in self._links:
            return None
        keys = self.ctx.config.api_keys
        return keys[0] if keys else "signed-url"

    def unauthorized(self, key: str | None) -> SimResponse:
        return _xml_error(403, "AccessDenied", "Access Denied")

    def rate_limited(self, verdict: RateVerdict, retry_after: int) -> SimResponse:
        return _xml_error(503, "SlowDown", "Please reduce your request rate.",
                          {"retry-after": str(retry_after)})

    def server_error(self, overloaded: bool) -> SimResponse:
        if overloaded:
            return _xml_error(503, "ServiceUnavailable", "Service is unable to handle request.",
                              {"retry-after": "1"})
        return _xml_error(500, "InternalError", "We encountered an internal error. "
                          "Please try again.")

    def rate_headers(self, verdict: RateVerdict) -> dict[str, str]:
        return {}

    def sweep(self) -> None:
        return None

    def reset(self) -> None:
        with self.ctx.lock:
            self._links = {}
            self.credentialed_requests = 0

    def handle(self, request: SimRequest) -> SimResponse:
        token = self._token(request)
        if request.method != "GET" or token is None:
            return _xml_error(405, "MethodNotAllowed",
                              "The specified method is not allowed against this resource.")
        with self.ctx.lock:
            link = self._links.get(token)
            if any(request.header(name) for name in CREDENTIAL_HEADERS):
                self.credentialed_requests += 1
                if link is None or not link.keys_tolerated:
                    return _xml_error(400, "InvalidArgument",
                                      "Only one auth mechanism allowed; only the signature in "
                                      "the URL or the Authorization header should be "
                                      "specified.")
            job = link.book.jobs.get(link.job_id) if link else None
            if link is None or job is None or job.deleted:
                return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
            phase, _ = link.book.observe(job)
            if phase != "completed":
                return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
            if link.book.expired(job):
                return _xml_error(403, "AccessDenied", "Request has expired")
            # An extension bills the seconds it added but plays the whole stitched clip.
            size, seconds = job.size, int(job.extra.get("output_seconds", job.seconds))
        try:
            data = self.media.get("video", size, seconds)
        except MediaError as exc:
            return _xml_error(500, "InternalError", f"The simulator could not render: {exc}")
        return SimResponse(status=200, body=data, content_type="video/mp4")
