import pytest

from workspace.generations.models import TRANSITIONS, Generation, IllegalTransition, Status
from workspace.generations.submission import generation_submit
from workspace.projects.models import Project


@pytest.fixture
def generation(
    project: Project, teammate, redis_conn, django_capture_on_commit_callbacks
) -> Generation:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False):
        return generation_submit(
            project=project,
            user=teammate,
            model="sora-2",
            prompt="A red kite",
            size="1280x720",
            seconds=4,
        )


def test_every_terminal_state_is_final() -> None:
    for status in (Status.COMPLETED, Status.FAILED, Status.CANCELED):
        assert TRANSITIONS[status] == frozenset()


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (Status.QUEUED, Status.COMPLETED),
        (Status.QUEUED, Status.IN_PROGRESS),
        (Status.IN_PROGRESS, Status.SUBMITTING),
        (Status.HELD, Status.COMPLETED),
        (Status.COMPLETED, Status.FAILED),
        (Status.FAILED, Status.QUEUED),
        (Status.DOWNLOADING, Status.IN_PROGRESS),
    ],
)
def test_illegal_transitions_are_refused(generation: Generation, source: str, target: str) -> None:
    with pytest.raises(IllegalTransition):
        generation.transition(target, from_=source)


def test_transition_is_conditional_on_the_current_state(generation: Generation) -> None:
    assert generation.transition(Status.SUBMITTING, from_=Status.QUEUED)
    # A second claimer (a duplicated job) sees the row has moved on and changes nothing.
    stale_copy = Generation.objects.get(pk=generation.pk)
    stale_copy.status = Status.QUEUED
    assert not stale_copy.transition(Status.SUBMITTING, from_=Status.QUEUED)
    assert not Generation.objects.get(pk=generation.pk).transition(
        Status.CANCELED, from_=Status.QUEUED
    )
    assert Generation.objects.get(pk=generation.pk).status == Status.SUBMITTING


def test_transition_writes_its_fields_only_when_it_wins(generation: Generation) -> None:
    assert generation.transition(Status.CANCELED, from_=Status.QUEUED, error_message="by hand")
    assert not generation.transition(Status.SUBMITTING, from_=Status.QUEUED, error_message="late")
    generation.refresh_from_db()
    assert (generation.status, generation.error_message) == (Status.CANCELED, "by hand")
