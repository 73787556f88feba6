"""A status check that saw a job finish hands that job to the download: adapters whose files are
named in the job (Runway's task, Veo's operation) then fetch the file without reading it again."""

from __future__ import annotations

import io

import pytest

from tests.providers.adapter_helpers import KEY, RecordingPacer, build, wait
from workspace.providers.adapters.base import JobStatus, VideoRequest
from workspace.providers.integrations.gemini.adapter import GeminiVeoAdapter
from workspace.providers.integrations.runway.adapter import RunwayAdapter

CASES = [
    (RunwayAdapter, "runway", "gen4.5", 5),
    (GeminiVeoAdapter, "gemini", "veo-3.1-generate-preview", 4),
]


@pytest.mark.parametrize(("adapter_class", "kind", "model", "seconds"), CASES)
def test_a_download_given_the_retrieved_job_does_not_retrieve_it_again(
    simulator, adapter_class, kind, model, seconds
) -> None:  # type: ignore[no-untyped-def]
    simulator.update_config(api_keys=[KEY])
    pacer = RecordingPacer()
    adapter = build(adapter_class, simulator, kind, pacer=pacer)
    try:
        job = adapter.create(
            VideoRequest(model=model, prompt="a paper boat", size="1280x720", seconds=seconds)
        )
        done = wait(adapter, job.id)
        assert done.status is JobStatus.COMPLETED
        pacer.calls.clear()
        adapter.download(job.id, variant="video", destination=io.BytesIO(), retrieved=done)
        handed = list(pacer.calls)
        pacer.calls.clear()
        adapter.download(job.id, variant="video", destination=io.BytesIO())
        on_its_own = list(pacer.calls)
    finally:
        adapter.close()
    # On its own (a retried download job) it reads the job first; handed the job, it does not.
    assert len(on_its_own) == len(handed) + 1, (handed, on_its_own)
