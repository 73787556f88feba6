import pytest
from django.urls import reverse

from workspace.generations.submission import generation_submit
from workspace.providers.services import limiter_for_channel

from ..conftest import PASSWORD


def test_queued_cards_show_position_reason_and_eta(client, project, teammate, channel) -> None:  # type: ignore[no-untyped-def]
    for n in range(2):
        generation_submit(project=project, user=teammate, model="sora-2", prompt=f"Dunes {n}", size="1280x720", seconds=4)
    limiter_for_channel(channel=channel).pushback(120)
    assert client.login(username=teammate.username, password=PASSWORD)
    page = client.get(reverse("generations:gallery", args=[project.pk])).content.decode()
    assert "#1 in the queue" in page
    assert "#2 in the queue" in page
    assert "asked us to pause" in page
    assert "from now" in page  # the ETA
    assert f"via {channel.name}" in page


@pytest.mark.parametrize("halted", [True])
def test_a_halted_channel_is_explained(client, project, teammate, channel, halted) -> None:  # type: ignore[no-untyped-def]
    generation_submit(project=project, user=teammate, model="sora-2", prompt="Dunes", size="1280x720", seconds=4)
    from workspace.providers.services import channel_halt

    channel_halt(channel=channel, reason="The provider refused the organisation's API key.")
    assert client.login(username=teammate.username, password=PASSWORD)
    page = client.get(reverse("generations:gallery", args=[project.pk])).content.decode()
    assert "halted until an admin fixes it" in page


def test_a_running_card_moves_with_the_clock_and_shows_100_only_when_stored(client, project, teammate, channel) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from workspace.generations.models import Generation, Status

    running = generation_submit(project=project, user=teammate, model="sora-2", prompt="Dunes", size="1280x720", seconds=4)
    saving = generation_submit(project=project, user=teammate, model="sora-2", prompt="Waves", size="1280x720", seconds=4)
    Generation.objects.filter(pk=running.pk).update(status=Status.IN_PROGRESS, progress=17, submitted_at=timezone.now())
    Generation.objects.filter(pk=saving.pk).update(status=Status.DOWNLOADING, progress=100)
    assert client.login(username=teammate.username, password=PASSWORD)
    page = client.get(reverse("generations:gallery", args=[project.pk])).content.decode()
    # The page interpolates from when the render started and how long renders take.
    assert 'data-progress-expected="' in page
    assert 'data-progress-floor="17"' in page
    # Finished at the provider but not stored yet: not 100 %.
    assert 'aria-valuenow="99"' in page
    assert 'aria-valuenow="100"' not in page
