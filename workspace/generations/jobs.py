"""RQ entry points: each takes an id, and the service decides from the row what to do."""

from __future__ import annotations

from workspace.generations import services


def generation_start_job(generation_id: str) -> None:
    services.generation_start(generation_id=generation_id)


def generation_reconcile_job(generation_id: str) -> None:
    services.generation_reconcile_create(generation_id=generation_id)


def generation_poll_job(generation_id: str) -> None:
    services.generation_poll(generation_id=generation_id)


def generation_download_job(generation_id: str) -> None:
    services.generation_download(generation_id=generation_id)


def generations_resume_stalled_job() -> int:
    return services.generations_resume_stalled()
