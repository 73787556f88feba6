"""The interface every provider adapter implements, in provider-neutral terms."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import BinaryIO, ClassVar, Protocol

import httpx

from workspace.providers.catalog import Catalog
from workspace.providers.errors import ProviderError
from workspace.providers.http import Circuit, Pacer, ProviderHTTP


class JobStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True)
class VideoRequest:
    model: str
    prompt: str
    size: str
    seconds: int
    input_reference: bytes | None = None
    input_reference_type: str | None = None
    # Options only some models take (see ModelSpec); None leaves the provider's default.
    negative_prompt: str | None = None
    seed: int | None = None
    audio: bool | None = None


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
    raw: dict[str, object] = field(default_factory=dict)


class VideoAdapter(Protocol):
    protocol: str
    # False when the provider has no way to list recent jobs: ``list_recent`` then raises
    # ProviderError(PROVIDER_FAILED) ("cannot list") and an ambiguous create cannot be matched.
    can_list: bool
    # True when ``delete`` also stops a job that is still queued or running. A provider with no
    # cancel or delete at all raises ProviderError(PROVIDER_FAILED) ("cannot cancel") there.
    can_cancel: bool

    # The files one finished job yields, the first being the video itself.
    @property
    def variants(self) -> tuple[str, ...]: ...

    def capabilities(self) -> Catalog: ...

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

    # Cancel a job that is still queued or running, or delete a finished one, as far as the
    # provider allows (see each adapter).
    def delete(self, job_id: str) -> None: ...

    def close(self) -> None: ...


class HTTPAdapter:
    """What every adapter shares: one ``ProviderHTTP`` built from the channel's connection.

    A subclass names its catalog and its classifier and says how the key travels
    (``auth_headers``); ``normalise_base_url`` adapts a base URL given the way the provider's SDK
    variable spells it.
    """

    catalog: ClassVar[Catalog]

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
        )

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    @staticmethod
    def normalise_base_url(base_url: str) -> str:
        return base_url

    def capabilities(self) -> Catalog:
        return self.catalog

    def close(self) -> None:
        self._http.close()
