import pytest
from django.urls import reverse

from workspace.generations.services import generation_submit
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
