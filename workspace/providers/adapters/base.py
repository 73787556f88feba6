"""The interface every provider adapter implements, in provider-neutral terms."""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, BinaryIO, ClassVar, Protocol, runtime_checkable

import httpx

from workspace.providers.catalog import Catalog
from workspace.providers.errors import ErrorClass, ProviderError
from workspace.providers.http import MAX_ANSWER_BYTES, CallCounter, Circuit, Pacer, ProviderHTTP

# The largest file taken from a provider; a larger answer is refused, never stored.
MAX_DOWNLOAD_BYTES = 2 * 1024**3


class JobStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


class Operation(StrEnum):
    """What a create asks for (the same values as ``generations.models.Operation``)."""

    GENERATE = "generate"
    EDIT = "edit"
    REMIX = "remix"
    EXTEND = "extend"


@dataclass(frozen=True)
class InputImage:
    """An image sent with a request, already checked and fitted to the request's size."""

    role: str  # "first_frame", "last_frame" or "reference"
    content: bytes
    content_type: str  # image/png, image/jpeg or image/webp
    width: int
    height: int
    filename: str = "input.png"

    def data_uri(self) -> str:
        return f"data:{self.content_type};base64,{base64.b64encode(self.content).decode()}"


@dataclass(frozen=True)
class VideoRequest:
    model: str
    prompt: str
    size: str
    # What this request makes (an extension: the added segment's length).
    seconds: int
    operation: Operation = Operation.GENERATE
    # The provider's own id of the video an edit, remix or extension changes.
    source_job_id: str | None = None
    # An extension: the length of the video it extends.
    source_seconds: int | None = None
    images: tuple[InputImage, ...] = ()
    # Provider ids of named characters the prompt mentions (OpenAI).
    characters: tuple[str, ...] = ()
    # Model options, only where the catalog says the model takes them; None: provider default.
    audio: bool | None = None
    seed: int | None = None
    negative_prompt: str = ""

    def image(self, role: str) -> InputImage | None:
        return next((image for image in self.images if image.role == role), None)

    def images_for(self, role: str) -> tuple[InputImage, ...]:
        return tuple(image for image in self.images if image.role == role)


@dataclass
class ProviderJob:
    id: str
    status: JobStatus
    progress: int = 0
    model: str = ""
    prompt: str | None = None
    size: str = ""
    seconds: int | None = None
    created_at: datetime | None = None
    # When the provider itself says the job finished (OpenAI's ``completed_at``); None when the
    # protocol does not tell. Render times are learned from this, never from when we looked.
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    # Set when status is FAILED: the provider's reason, already classified.
    error: ProviderError | None = None
    # The provider's own hint for when to look again, in seconds.
    poll_after: float | None = None
    # What the provider says a finished job was charged, in US cents (Runway's final
    # ``cost.credits``); None where the protocol reports no cost or the job is not finished.
    reported_cost_cents: int | None = None
    raw: dict[str, object] = field(default_factory=dict)
    # The video this one was made from, where the provider says (OpenAI's remixed_from_video_id).
    source_id: str | None = None


@dataclass(frozen=True)
class ProviderCharacter:
    """A named character the provider made from a short video (the OpenAI protocol's)."""

    id: str
    name: str
    created_at: datetime | None = None


@runtime_checkable
class CharacterMaker(Protocol):
    """An adapter whose provider makes named characters from a video, reused in prompts."""

    def create_character(
        self, *, name: str, video: bytes, filename: str
    ) -> ProviderCharacter: ...

    def retrieve_character(self, character_id: str) -> ProviderCharacter: ...


class VideoAdapter(Protocol):
    """What the generation services call on a provider (``HTTPAdapter`` implements it)."""

    # False when the provider has no way to list recent jobs: ``list_recent`` then raises
    # ProviderError(PROVIDER_FAILED) ("cannot list") and an ambiguous create cannot be matched.
    can_list: bool

    # The files one finished job yields, the first being the video itself.
    @property
    def variants(self) -> tuple[str, ...]: ...

    def create(self, request: VideoRequest) -> ProviderJob: ...

    def retrieve(self, job_id: str) -> ProviderJob: ...

    def list_recent(
        self, *, limit: int = 100, since: datetime | None = None
    ) -> list[ProviderJob]: ...

    # ``retrieved`` is the job as a status check just read it: an adapter whose files are named
    # in the job itself uses it instead of retrieving the job again.
    def download(
        self,
        job_id: str,
        *,
        variant: str,
        destination: BinaryIO,
        retrieved: ProviderJob | None = None,
    ) -> str: ...

    def close(self) -> None: ...


class HTTPAdapter(ABC):
    """What every adapter shares: one ``ProviderHTTP`` built from the channel's connection.

    A subclass names its catalog, its files and its classifier and says how the key travels
    (``auth_headers``); ``normalise_base_url`` adapts a base URL given the way the provider's SDK
    variable spells it. ``_json``, ``_download``/``_download_url`` and ``classify_status`` are
    the pieces every adapter needs the same way.
    """

    catalog: ClassVar[Catalog]
    variants: ClassVar[tuple[str, ...]] = ("video",)
    can_list: bool = False
    # Who answered, in error messages ("Runway's answer was not valid JSON.").
    provider_name: ClassVar[str] = "The provider"
    max_download_bytes: ClassVar[int] = MAX_DOWNLOAD_BYTES
    # The most one API answer may carry (``http.MAX_ANSWER_BYTES`` unless the protocol sends
    # files inside its answers).
    max_answer_bytes: ClassVar[int] = MAX_ANSWER_BYTES

    @staticmethod
    def classify(response: httpx.Response) -> ProviderError:
        """Turn the provider's error answer into a classified ``ProviderError`` (once)."""
        raise NotImplementedError

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        connect_timeout: float,
        read_timeout: float,
        download_timeout: float,
        pacer: Pacer | None = None,
        circuit: Circuit | None = None,
        on_circuit_change: Callable[[str], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        private_output_hosts: str = "",
        counter: CallCounter | None = None,
    ) -> None:
        self._download_timeout = download_timeout
        self._http = ProviderHTTP(
            base_url=self.normalise_base_url(base_url),
            headers={**self.auth_headers(api_key), "User-Agent": "Reelhouse/0.1"},
            secret=api_key,
            classify=self.classify,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            pacer=pacer,
            circuit=circuit,
            on_circuit_change=on_circuit_change,
            transport=transport,
            private_output_hosts=private_output_hosts,
            counter=counter,
            max_answer_bytes=self.max_answer_bytes,
        )

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    @staticmethod
    def normalise_base_url(base_url: str) -> str:
        return base_url

    @staticmethod
    def key_problem(key: str) -> str | None:
        """Why ``key`` cannot be this provider's key (the admin form says it), or None."""
        if len(key) < 8 or any(c.isspace() for c in key):
            return "That does not look like an API key."
        return None

    @staticmethod
    def key_label(key: str) -> str | None:
        """What pages may show to tell this key apart (at most 20 characters), when its first
        and last characters would not do; None: those."""
        return None

    @abstractmethod
    def create(self, request: VideoRequest) -> ProviderJob: ...

    @abstractmethod
    def retrieve(self, job_id: str) -> ProviderJob: ...

    @abstractmethod
    def download(
        self,
        job_id: str,
        *,
        variant: str,
        destination: BinaryIO,
        retrieved: ProviderJob | None = None,
    ) -> str: ...

    def list_recent(self, *, limit: int = 100, since: datetime | None = None) -> list[ProviderJob]:
        """Recent jobs, newest first; only where ``can_list`` (which the subclass overrides)."""
        raise ProviderError(
            ErrorClass.PROVIDER_FAILED,
            f"{self.provider_name} cannot list recent jobs (its API has no way to), so an "
            "unanswered create cannot be matched there.",
        )

    def close(self) -> None:
        self._http.close()

    def _json(self, response: httpx.Response) -> Any:
        """The answer's JSON; an answer that is not JSON is the provider's failure."""
        try:
            return response.json()
        except ValueError:
            raise ProviderError(
                ErrorClass.PROVIDER_FAILED, f"{self.provider_name}'s answer was not valid JSON."
            ) from None

    def _unsupported(self, what: str) -> ProviderError:
        """The error for a request this protocol cannot carry (the catalog should have stopped
        it before anything was reserved; this is the adapter's own guard)."""
        return ProviderError(
            ErrorClass.INVALID_REQUEST, f"{self.provider_name} cannot {what} through this API."
        )

    def _model_options(
        self, request: VideoRequest, wire_names: dict[str, str]
    ) -> dict[str, Any]:
        """The model options a request carries, under this protocol's field names
        (``wire_names``: ``audio``, ``seed``, ``negative_prompt`` → field); an option this
        protocol has no field for, or the model's catalog entry does not take, is refused."""
        spec = self.catalog.get(request.model)
        asked: dict[str, tuple[Any, bool, str]] = {
            "audio": (request.audio, bool(spec and spec.audio_toggle), "switch the sound of"),
            "seed": (request.seed, bool(spec and spec.supports_seed), "take a seed for"),
            "negative_prompt": (
                request.negative_prompt or None,
                bool(spec and spec.supports_negative_prompt),
                "take a negative prompt for",
            ),
        }
        options: dict[str, Any] = {}
        for name, (value, model_takes, what) in asked.items():
            if value is None:
                continue
            if name not in wire_names or not model_takes:
                raise self._unsupported(f"{what} {request.model}")
            options[wire_names[name]] = value
        return options

    def _check_variant(self, variant: str) -> None:
        if variant not in self.variants:
            raise ProviderError(
                ErrorClass.INVALID_REQUEST, f"{self.provider_name} has no {variant!r} file."
            )

    def _job_to_download(
        self, job_id: str, *, variant: str, retrieved: ProviderJob | None
    ) -> ProviderJob:
        """The job a file is asked of, as the status check just read it (else read now), for
        adapters whose file URLs are in the job; its own failure is raised."""
        self._check_variant(variant)
        job = retrieved if retrieved is not None else self.retrieve(job_id)
        if job.error is not None:
            raise job.error
        return job

    def _download(
        self, path: str, *, destination: BinaryIO, params: dict[str, Any] | None = None
    ) -> str:
        """Fetch a file from the provider's own API (with the key), capped in size and time."""
        return self._http.download(
            path,
            params=params,
            destination=destination,
            timeout=self._download_timeout,
            max_bytes=self.max_download_bytes,
        )

    def _download_url(
        self,
        url: str,
        *,
        destination: BinaryIO,
        classify: Callable[[httpx.Response], ProviderError],
    ) -> str:
        """Fetch an output URL the provider handed out (a CDN: never with the key)."""
        return self._http.download_url(
            url,
            destination=destination,
            timeout=self._download_timeout,
            max_bytes=self.max_download_bytes,
            classify=classify,
        )


def iso_timestamp(value: Any) -> datetime | None:
    """A provider's RFC 3339 time ("Z" included), or None for anything that is not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def classify_status(status: int) -> ErrorClass:
    """What an HTTP error status means when the provider's own codes said nothing more.

    Each adapter's classifier first picks out what only its provider says (quota words, safety
    codes, daily limits), then ends with this.
    """
    if status == 429:
        return ErrorClass.RATE_LIMITED
    if status in (401, 403):
        return ErrorClass.AUTH
    if status == 404:
        return ErrorClass.NOT_FOUND
    if status in (408, 409):
        return ErrorClass.NETWORK
    if status >= 500:
        return ErrorClass.OVERLOADED
    return ErrorClass.INVALID_REQUEST
