import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from workspace.core.rq import get_queue
from workspace.generations.lanes import channel_kick
from workspace.generations.models import Generation, Status
from workspace.generations.submission import generation_cancel, generation_submit


def submit(project, user, **overrides):  # type: ignore[no-untyped-def]
    fields = {"model": "sora-2", "prompt": "A lighthouse in fog", "size": "1280x720", "seconds": 4}
    fields.update(overrides)
    return generation_submit(project=project, user=user, **fields)


def test_submit_queues_one_job_after_commit(
    project, teammate, redis_conn, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        generation = submit(project, teammate)
        # Nothing reaches Redis before the row is committed.
        assert len(get_queue("dispatch")) == 0
    for callback in callbacks:
        callback()
    assert generation.status == Status.QUEUED
    assert generation.estimated_cost_cents == 40
    lanes = get_queue("dispatch").get_jobs()
    assert sorted(job.id for job in lanes) == [f"dispatch-{generation.channel_id}-{n}" for n in (0, 1)]
    # Kicking again while the lanes wait adds nothing.
    assert channel_kick(channel_id=generation.channel_id) == 0
    assert len(get_queue("dispatch")) == 2


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"prompt": "   "}, "prompt", "empty"),
        ({"prompt": "x" * 32001}, "prompt", "32000"),
        ({"model": "sora-3"}, "model", "sora-3"),
        ({"size": "1792x1024"}, "size", "1792x1024"),
        ({"seconds": 5}, "seconds", "4, 8, 12"),
    ],
)
def test_invalid_requests_are_refused_with_a_clear_message(
    project, teammate, redis_conn, overrides, field, words
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as caught:
        submit(project, teammate, **overrides)
    assert words in " ".join(caught.value.message_dict[field])
    assert not Generation.objects.exists()


def test_pro_only_size_is_fine_on_pro(project, teammate, redis_conn) -> None:  # type: ignore[no-untyped-def]
    generation = submit(project, teammate, model="sora-2-pro", size="1792x1024", seconds=8)
    assert generation.estimated_cost_cents == 400


def test_viewers_and_outsiders_cannot_generate(project, viewer, outsider, redis_conn) -> None:  # type: ignore[no-untyped-def]
    for person in (viewer, outsider):
        with pytest.raises(PermissionDenied):
            submit(project, person)
    assert not Generation.objects.exists()


def test_cancel_only_before_the_provider_has_it(
    project, owner, teammate, viewer, redis_conn
) -> None:  # type: ignore[no-untyped-def]
    generation = submit(project, teammate)
    with pytest.raises(PermissionDenied):
        generation_cancel(generation=generation, user=viewer)
    generation_cancel(generation=generation, user=owner)
    assert Generation.objects.get(pk=generation.pk).status == Status.CANCELED

    started = submit(project, teammate)
    started.transition(Status.SUBMITTING, from_=Status.QUEUED)
    with pytest.raises(ValidationError):
        generation_cancel(generation=started, user=teammate)
