"""RQ entry points: each takes an id, and the service decides from the row what to do.

Thin wrappers, imported by the services that enqueue them; each imports its service inside
its body, so the import graph keeps one direction (services → jobs, never back at import time).
"""

from __future__ import annotations

from rq import Retry


def channel_dispatch_job(channel_id: int, lane: int) -> Retry | None:
    from workspace.generations.dispatch import channel_dispatch_lane

    return channel_dispatch_lane(channel_id=channel_id, lane=lane)


def generation_reconcile_job(generation_id: str) -> None:
    from workspace.generations.sending import generation_reconcile_create

    generation_reconcile_create(generation_id=generation_id)


def generation_poll_job(generation_id: str, chain: int | None = None) -> None:
    from workspace.generations.following import generation_poll

    generation_poll(generation_id=generation_id, chain=chain)


def generation_download_job(generation_id: str) -> None:
    from workspace.generations.following import generation_download

    generation_download(generation_id=generation_id)


def character_make_job(character_id: int, attempt: int = 0) -> None:
    from workspace.generations.characters import character_make

    character_make(character_id=character_id, attempt=attempt)


def generation_refetch_job(generation_id: str, attempt: int = 0) -> None:
    from workspace.generations.following import generation_refetch_files

    generation_refetch_files(generation_id=generation_id, attempt=attempt)
