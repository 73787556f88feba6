"""A member's whole journey over real HTTP: sign in, generate, watch it finish, play the files.

Real web server (live_server), real RQ worker processes, real Redis, the real simulator and the
configured database (PostgreSQL in CI).
"""

from __future__ import annotations

import re

import httpx
import pytest

from workspace.billing.models import Kind, LedgerEntry
from workspace.generations.models import Generation, Status
from workspace.projects.models import Project
from workspace.providers.models import Channel

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(base_url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=10)
    page = client.get("/accounts/sign-in/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, "the sign-in page has a CSRF token"
    answer = client.post(
        "/accounts/sign-in/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
    )
    assert answer.status_code == 302, "signing in redirects to the projects"
    return client


def csrf(client: httpx.Client, path: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(path).text)
    assert match
    return match.group(1)


def test_a_member_generates_a_video_and_only_members_can_watch_it(
    live_server, project: Project, teammate, outsider, viewer, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    tariq = signed_in(live_server.url, teammate.username)
    page = f"/projects/{project.pk}/"
    assert "Generate a video" in tariq.get(page).text

    answer = tariq.post(
        f"/projects/{project.pk}/generations/",
        data={
            "prompt": "A paper boat drifting down a rainy street at dusk",
            "model": "sora-2",
            "size": "1280x720",
            "seconds": "4",
            "csrfmiddlewaretoken": csrf(tariq, page),
        },
    )
    assert answer.status_code == 302
    generation = Generation.objects.get()
    gallery = tariq.get(f"/projects/{project.pk}/generations/gallery/").text
    assert "Queued" in gallery and 'role="progressbar"' in gallery

    run_workers(lambda: Generation.objects.get(pk=generation.pk).is_terminal)
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED

    gallery = tariq.get(f"/projects/{project.pk}/generations/gallery/").text
    assert "<video" in gallery and "Ready" in gallery
    files = f"/projects/{project.pk}/generations/{generation.pk}/files"
    video = tariq.get(f"{files}/video")
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    ranged = tariq.get(f"{files}/video", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100
    assert tariq.get(f"{files}/thumbnail").headers["content-type"] == "image/jpeg"
    assert tariq.get(f"{files}/spritesheet").status_code == 200
    download = tariq.get(f"{files}/video?download=1")
    assert download.headers["content-disposition"].startswith("attachment")

    # A viewer watches; an outsider cannot even tell the project exists.
    vera = signed_in(live_server.url, viewer.username)
    assert vera.get(f"{files}/video").status_code == 200
    assert "Generate a video" not in vera.get(page).text
    oscar = signed_in(live_server.url, outsider.username)
    for path in (
        page,
        f"/projects/{project.pk}/members/",
        f"/projects/{project.pk}/generations/gallery/",
        f"/projects/{project.pk}/generations/{generation.pk}/",
        f"{files}/video",
        f"{files}/thumbnail",
        f"{files}/spritesheet",
    ):
        assert oscar.get(path).status_code == 404, path

    # Anonymous visitors are sent to sign in.
    anonymous = httpx.Client(base_url=live_server.url, follow_redirects=False)
    answer = anonymous.get(f"{files}/video")
    assert answer.status_code == 302 and "/accounts/sign-in/" in answer.headers["location"]


def test_a_member_generates_through_a_luma_channel(
    live_server, project: Project, teammate, channel, simulator, run_workers
) -> None:  # type: ignore[no-untyped-def]
    # The organisation's only active channel is Luma; with no LUMA_AGENTS_API_KEY set it talks
    # to the simulator's Luma Agents protocol.
    channel.is_active = False
    channel.save(update_fields=["is_active"])
    luma = Channel.objects.create(
        slug="luma",
        name="Luma",
        protocol="luma",
        api_key_env="LUMA_AGENTS_API_KEY",
        requests_per_minute=60_000,
        max_in_flight=50,
        member_max_in_flight=50,
    )
    tariq = signed_in(live_server.url, teammate.username)
    page = f"/projects/{project.pk}/"
    form = tariq.get(page).text
    assert "Luma Ray 3.2" in form and "sora-2" not in form
    answer = tariq.post(
        f"/projects/{project.pk}/generations/",
        data={
            "prompt": "A paper boat drifting down a rainy street at dusk",
            "model": "ray-3.2",
            "size": "1080x1920",
            "seconds": "5",
            "csrfmiddlewaretoken": csrf(tariq, page),
        },
    )
    assert answer.status_code == 302
    generation = Generation.objects.get()
    assert generation.channel_id == luma.pk and generation.estimated_cost_cents == 24 * 5

    run_workers(lambda: Generation.objects.get(pk=generation.pk).is_terminal)
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED, generation.error_message
    video = tariq.get(f"/projects/{project.pk}/generations/{generation.pk}/files/video")
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    [create] = simulator.creates()
    assert (create["protocol"], create["id"]) == ("luma", generation.provider_job_id)
    assert (create["size"], create["seconds"], create["aspect_ratio"]) == ("1080x1920", 5, "9:16")
    # Settled at the catalog's price, which is what the simulator billed too.
    [settle] = LedgerEntry.objects.filter(generation=generation, kind=Kind.SETTLE)
    assert settle.spent_cents == simulator.counters()["billed_cents"] == 120
