"""The simulated OpenAI Videos API's edits, extensions, remix and characters: driven by the
unmodified official SDK (openai 3.51.0 has videos.remix, edit, extend, create_character and
get_character), and the spec's validation answers checked over plain HTTP."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import imageio_ffmpeg
import openai
import pytest

from workspace.simulator import SimulatorServer
from workspace.simulator.media import media_cache
from workspace.simulator.protocols.openai_videos import OpenAIVideosProtocol

from .helpers import API_KEY, assert_error, assert_schema, make_png, wait_for

CLIP = media_cache().get("video", "1280x720", 4)


@pytest.fixture
def sdk(sim: SimulatorServer) -> Iterator[openai.OpenAI]:
    # No SDK retries: every answer the simulator gives must reach the test as it was.
    with openai.OpenAI(api_key=API_KEY, base_url=sim.url + "/v1", max_retries=0) as client:
        yield client


def done(sdk: openai.OpenAI, video: Any) -> Any:
    deadline = time.monotonic() + 30
    while video.status not in ("completed", "failed"):
        assert time.monotonic() < deadline, video.status
        time.sleep(0.005)
        video = sdk.videos.retrieve(video.id)
    return video


def seconds_of(mp4: bytes) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        path.write_bytes(mp4)
        _, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    return float(seconds)


def finished(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"prompt": "a lighthouse", "size": "1280x720", "seconds": "4", **fields}
    created = client.post("/videos", json=body)
    assert created.status_code == 200, created.text
    return wait_for(client, created.json()["id"])


def test_the_official_sdk_remixes_edits_and_extends(
    sdk: openai.OpenAI, sim: SimulatorServer
) -> None:
    source = done(sdk, sdk.videos.create(prompt="a paper boat", size="1280x720", seconds="4"))
    assert source.status == "completed"

    remix = done(sdk, sdk.videos.remix(source.id, prompt="the same boat at night"))
    assert (remix.status, remix.remixed_from_video_id, remix.seconds) == (
        "completed",
        source.id,
        "4",
    )

    # openai 3.51.0's (as 2.54.0's) videos.edit and videos.extend build multipart and accept only an uploaded
    # file as ``video`` (a {"id": ...} raises RuntimeError in extract_files, as input_reference
    # does on create); an upload reaches the API, which keeps edits of uploads to eligible
    # customers. A source id goes as JSON through the same unmodified client's own post().
    with pytest.raises(RuntimeError, match="Expected entry at `video`"):
        sdk.videos.edit(prompt="make it snow", video={"id": source.id})  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="eligible customers"):
        sdk.videos.edit(prompt="make it snow", video=("boat.mp4", CLIP, "video/mp4"))
    with pytest.raises(openai.BadRequestError, match="eligible customers"):
        sdk.videos.extend(prompt="on", seconds="8", video=("boat.mp4", CLIP, "video/mp4"))
    edit = sdk.post(
        "/videos/edits",
        body={"prompt": "make it snow", "video": {"id": source.id}},
        cast_to=openai.types.Video,
    )
    edit = done(sdk, edit)
    assert (edit.status, edit.model, edit.size, edit.seconds) == (
        "completed",
        "sora-2",
        "1280x720",
        "4",
    )
    assert edit.remixed_from_video_id is None

    extended = sdk.post(
        "/videos/extensions",
        body={"prompt": "it sails on", "seconds": "8", "video": {"id": edit.id}},
        cast_to=openai.types.Video,
    )
    extended = done(sdk, extended)
    assert (extended.status, extended.seconds) == ("completed", "12")  # the stitched total
    movie = sdk.videos.download_content(extended.id)
    assert abs(seconds_of(movie.content) - 12) < 0.2  # a real, playable 12-second MP4

    counters = sim.counters()
    # Billed per second of output made: each new 4 s clip, and only the extension's 8 s.
    assert counters["billed_seconds"] == 4 + 4 + 4 + 8
    assert counters["billed_cents"] == 10 * (4 + 4 + 4 + 8)
    assert [entry["operation"] for entry in sim.creates()] == [
        "generate",
        "remix",
        "edit",
        "extend",
    ]


def test_the_official_sdk_makes_and_reads_characters(
    sdk: openai.OpenAI, sim: SimulatorServer
) -> None:
    character = sdk.videos.create_character(name="Mira", video=("mira.mp4", CLIP, "video/mp4"))
    assert character.id and character.id.startswith("char_") and character.name == "Mira"
    again = sdk.videos.get_character(character.id)
    assert (again.id, again.name, again.created_at) == (character.id, "Mira", character.created_at)
    with pytest.raises(openai.NotFoundError):
        sdk.videos.get_character("char_nobody")
    with pytest.raises(openai.BadRequestError, match="not a video"):
        sdk.videos.create_character(name="Mira", video=("mira.png", make_png(8, 8), "image/png"))
    # characters is the guide's, not the SDK's: it goes in extra_body (form-encoded by the SDK).
    video = done(
        sdk,
        sdk.videos.create(
            prompt="Mira waves", seconds="4", extra_body={"characters": [{"id": character.id}]}
        ),
    )
    assert video.status == "completed"
    assert sim.creates()[-1]["characters"] == [character.id]


def test_character_creation_checks_name_and_video(client: httpx.Client) -> None:
    def make(name: str | None, video: tuple[str, bytes, str] | None) -> httpx.Response:
        data = {} if name is None else {"name": name}
        files = {} if video is None else {"video": video}
        return client.post("/videos/characters", data=data, files=files or {"x": ("x", b"", "a/b")})

    mp4 = ("m.mp4", CLIP, "video/mp4")
    made = make("Mira", mp4)
    assert made.status_code == 200
    assert_schema(made.json(), "VideoCharacterResource")
    assert_error(make(None, mp4), 400, param="name", code="missing_required_parameter")
    assert_error(make("", mp4), 400, param="name", code="empty_string")
    assert_error(make("M" * 81, mp4), 400, param="name", code="string_above_max_length")
    assert make("M" * 80, mp4).status_code == 200
    assert_error(
        make("Mira", ("a.txt", b"hello", "video/mp4")), 400, param="video", code="invalid_video"
    )
    assert_error(
        client.post("/videos/characters", json={"name": "Mira"}),
        400,
        code="unsupported_content_type",
    )
    # Another key's character is as unknown as a missing one.
    with make_client_for(client, "sk-other-key-0123456789abcdef") as other:
        assert_error(
            other.get(f"/videos/characters/{made.json()['id']}"), 404, code="character_not_found"
        )


def make_client_for(client: httpx.Client, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=client.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def test_characters_on_a_create_must_exist_be_ours_and_number_two_at_most(
    client: httpx.Client,
) -> None:
    ids = [
        client.post(
            "/videos/characters", data={"name": name}, files={"video": ("c.mp4", CLIP, "video/mp4")}
        ).json()["id"]
        for name in ("Ana", "Ben", "Cy")
    ]
    body = {"prompt": "Ana, Ben and Cy", "seconds": "4"}
    assert (
        client.post(
            "/videos", json={**body, "characters": [{"id": i} for i in ids[:2]]}
        ).status_code
        == 200
    )
    error = assert_error(
        client.post("/videos", json={**body, "characters": [{"id": i} for i in ids]}),
        400,
        param="characters",
        code="array_above_max_length",
    )
    assert "at most 2 characters" in error["message"]
    assert_error(
        client.post("/videos", json={**body, "characters": [{"id": "char_nobody"}]}),
        400,
        param="characters[0].id",
        code="character_not_found",
    )
    assert_error(
        client.post("/videos", json={**body, "characters": ["Ana"]}), 400, code="invalid_type"
    )
    with make_client_for(client, "sk-other-key-0123456789abcdef") as other:
        assert_error(
            other.post("/videos", json={**body, "characters": [{"id": ids[0]}]}),
            400,
            code="character_not_found",
        )


def test_changes_need_a_completed_video_of_the_same_key(
    client: httpx.Client, sim: SimulatorServer
) -> None:
    assert_error(
        client.post("/videos/edits", json={"prompt": "p", "video": {"id": "video_nope"}}),
        404,
        code="video_not_found",
    )
    assert_error(
        client.post("/videos/edits", json={"prompt": "p"}),
        400,
        param="video",
        code="missing_required_parameter",
    )
    assert_error(client.post("/videos/edits", json={"video": {"id": "v"}}), 400, param="prompt")
    assert_error(
        client.post("/videos/edits", json={"prompt": "p", "video": {"id": "v", "x": 1}}),
        400,
        code="unknown_parameter",
    )
    upload = client.post(
        "/videos/edits", data={"prompt": "p"}, files={"video": ("v.mp4", CLIP, "video/mp4")}
    )
    assert_error(upload, 400, param="video", code="unsupported_video_upload")

    sim.update_config(time_scale=0.001)
    running = client.post("/videos", json={"prompt": "slow", "seconds": "4"}).json()
    assert_error(
        client.post(f"/videos/{running['id']}/remix", json={"prompt": "p"}),
        400,
        code="invalid_video_status",
    )
    sim.update_config(time_scale=50.0)

    source = finished(client)
    with make_client_for(client, "sk-other-key-0123456789abcdef") as other:
        assert_error(
            other.post(f"/videos/{source['id']}/remix", json={"prompt": "p"}),
            404,
            code="video_not_found",
        )
    remix = client.post(f"/videos/{source['id']}/remix", json={"prompt": "p"})
    assert remix.status_code == 200 and remix.json()["remixed_from_video_id"] == source["id"]
    assert_schema(remix.json(), "VideoResource")
    assert_error(
        client.post(f"/videos/{source['id']}/remix", json={"prompt": "p", "size": "1280x720"}),
        400,
        code="unknown_parameter",
    )

    sim.update_config(content_ttl_seconds=0)
    gone = finished(client)
    assert_error(
        client.post("/videos/edits", json={"prompt": "p", "video": {"id": gone["id"]}}),
        404,
        code="video_expired",
    )


def test_extensions_take_a_length_no_characters_or_images_and_stop_at_120_seconds(
    client: httpx.Client, sim: SimulatorServer
) -> None:
    source = finished(client)
    ref = {"video": {"id": source["id"]}, "prompt": "on and on"}
    assert_error(
        client.post("/videos/extensions", json=ref),
        400,
        param="seconds",
        code="missing_required_parameter",
    )
    assert_error(
        client.post("/videos/extensions", json={**ref, "seconds": "16"}),
        400,
        param="seconds",
        code="invalid_value",
    )
    for name, value in (
        ("characters", [{"id": "char_x"}]),
        ("input_reference", {"image_url": "https://x/y.png"}),
    ):
        error = assert_error(
            client.post("/videos/extensions", json={**ref, "seconds": "4", name: value}),
            400,
            param=name,
        )
        assert "don't support characters or image references" in error["message"]

    # A 116-second video (longer than the enums reach in six extensions), then past 120 s.
    api = sim.routes["/v1"]
    assert isinstance(api, OpenAIVideosProtocol)
    long_one = api.book.create(
        job_id="video_long",
        model="sora-2",
        prompt="long",
        size="1280x720",
        seconds=116,
        cents_per_second=10,
        outcome="completed",
        input_reference=False,
        extra={"key": API_KEY, "extensions": 0},
    )
    wait_for(client, long_one.id)
    error = assert_error(
        client.post(
            "/videos/extensions",
            json={"video": {"id": "video_long"}, "prompt": "p", "seconds": "8"},
        ),
        400,
        param="seconds",
    )
    assert "at most 120 seconds" in error["message"]
    fits = client.post(
        "/videos/extensions", json={"video": {"id": "video_long"}, "prompt": "p", "seconds": "4"}
    )
    assert fits.status_code == 200 and fits.json()["seconds"] == "120"

    # The guide's "up to six times": the seventh extension of one video is refused.
    current = source
    for _ in range(6):
        extended = client.post(
            "/videos/extensions",
            json={"video": {"id": current["id"]}, "prompt": "more", "seconds": "4"},
        )
        assert extended.status_code == 200, extended.text
        current = wait_for(client, extended.json()["id"])
    assert current["seconds"] == str(4 + 6 * 4)
    seventh = client.post(
        "/videos/extensions",
        json={"video": {"id": current["id"]}, "prompt": "more", "seconds": "4"},
    )
    assert_error(seventh, 400, param="video", code="extension_limit_reached")
