"""RQ entry points: each takes an id, and the service decides from the row what to do."""

from __future__ import annotations

from rq import Retry

from workspace.generations import dispatch, services


def channel_dispatch_job(channel_id: int, lane: int) -> Retry | None:
    return dispatch.channel_dispatch_lane(channel_id=channel_id, lane=lane)


def generation_reconcile_job(generation_id: str) -> None:
    services.generation_reconcile_create(generation_id=generation_id)


def generation_poll_job(generation_id: str, chain: int | None = None) -> None:
    services.generation_poll(generation_id=generation_id, chain=chain)


def generation_download_job(generation_id: str) -> None:
    services.generation_download(generation_id=generation_id)
