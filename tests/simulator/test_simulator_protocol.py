"""The simulator speaks the OpenAI Videos protocol as the OpenAPI excerpt describes it."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import imageio_ffmpeg
import pytest
from jsonschema.exceptions import ValidationError

from workspace.simulator import SimulatorServer
from workspace.simulator.protocols.openai_videos import image_dimensions

from .helpers import (
    API_KEY,
    SSL_CONTEXT,
    assert_error,
    assert_schema,
    make_client,
    make_png,
    wait_for,
)

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    fields.setdefault("prompt", "a lighthouse at dusk")
    response = client.post("/videos", json=fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert_schema(body, "VideoResource")
    return body


def multipart(client: httpx.Client, fields: dict[str, str],
              upload: tuple[str, bytes, str] | None = None) -> httpx.Response:
    # (None, value) parts are plain form fields: this is how the official SDK sends a create.
    files: dict[str, Any] = {name: (None, value) for name, value in fields.items()}
    if upload is not None:
        files["input_reference"] = upload
    return client.post("/videos", files=files)


# ---- conformance ---------------------------------------------------------------------------


def test_the_schema_check_is_not_vacuous() -> None:
    with pytest.raises(ValidationError):
        assert_schema({"id": "video_1", "object": "video"}, "VideoResource")
    with pytest.raises(ValidationError):
        assert_schema({"error": {"message": "x", "type": "t"}}, "ErrorResponse")


def test_json_create_returns_a_queued_video(client: httpx.Client) -> None:
    body = create(client, model="sora-2-pro", size="1792x1024", seconds="8")
    assert re.fullmatch(r"video_[0-9a-f]{24,}", body["id"])
    assert body["object"] == "video"
    assert (body["status"], body["progress"]) == ("queued", 0)
    assert (body["model"], body["size"], body["seconds"]) == ("sora-2-pro", "1792x1024", "8")
    assert body["prompt"] == "a lighthouse at dusk"
    assert body["completed_at"] is None and body["expires_at"] is None and body["error"] is None
    assert abs(body["created_at"] - time.time()) < 5


def test_multipart_create_applies_the_documented_defaults(client: httpx.Client) -> None:
    response = multipart(client, {"prompt": "waves"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert_schema(body, "VideoResource")
    assert (body["model"], body["size"], body["seconds"]) == ("sora-2", "720x1280", "4")


def test_every_api_response_carries_a_request_id_and_the_create_a_poll_hint(
        client: httpx.Client) -> None:
    response = client.post("/videos", json={"prompt": "x"})
    assert response.headers["x-request-id"].startswith("req_")
    assert 1000 <= int(response.headers["openai-poll-after-ms"]) <= 20000
    missing = client.get("/videos/video_nope")
    assert missing.headers["x-request-id"].startswith("req_")
    assert missing.headers["x-request-id"] != response.headers["x-request-id"]


def test_multipart_create_with_an_image_reference(client: httpx.Client) -> None:
    upload = ("ref.png", make_png(1280, 720), "image/png")
    response = multipart(client, {"prompt": "pan left", "size": "1280x720"}, upload)
    assert response.status_code == 200, response.text
    assert_schema(response.json(), "VideoResource")


def test_json_create_with_a_reference_object(client: httpx.Client) -> None:
    create(client, input_reference={"image_url": "https://example.com/frame.png"})
    create(client, input_reference={"file_id": "file-123"})
    # The SDK's form encoding of the same object, inside multipart.
    response = multipart(client, {"prompt": "p", "input_reference[file_id]": "file-9"})
    assert response.status_code == 200, response.text


def test_reference_image_must_match_the_size_unless_the_check_is_off(
        client: httpx.Client, sim: SimulatorServer) -> None:
    upload = ("ref.png", make_png(64, 64), "image/png")
    response = multipart(client, {"prompt": "p", "size": "1280x720"}, upload)
    error = assert_error(response, 400, param="input_reference", code="invalid_image_size")
    assert "1280x720" in error["message"]
    sim.update_config(reference_size_check=False)
    assert multipart(client, {"prompt": "p", "size": "1280x720"}, upload).status_code == 200


def test_retrieve_list_and_delete_bodies_match_the_schemas(client: httpx.Client) -> None:
    video = create(client)
    retrieved = client.get(f"/videos/{video['id']}")
    assert retrieved.status_code == 200
    assert_schema(retrieved.json(), "VideoResource")
    listed = client.get("/videos")
    assert listed.status_code == 200
    assert_schema(listed.json(), "VideoListResource")
    done = wait_for(client, video["id"])
    assert_schema(done, "VideoResource")
    deleted = client.delete(f"/videos/{video['id']}")
    assert deleted.status_code == 200
    assert_schema(deleted.json(), "DeletedVideoResource")
    assert deleted.json() == {"id": video["id"], "object": "video.deleted", "deleted": True}


# ---- validation ----------------------------------------------------------------------------

BAD_CREATES: list[tuple[dict[str, Any], str, str]] = [
    ({"model": "sora-2"}, "prompt", "missing_required_parameter"),
    ({"prompt": ""}, "prompt", "empty_string"),
    ({"prompt": "x" * 32001}, "prompt", "string_above_max_length"),
    ({"prompt": 42}, "prompt", "invalid_type"),
    ({"prompt": "p", "seconds": "5"}, "seconds", "invalid_value"),
    ({"prompt": "p", "seconds": 4}, "seconds", "invalid_type"),
    ({"prompt": "p", "size": "1920x1080"}, "size", "invalid_value"),
    ({"prompt": "p", "size": "1024x1792"}, "size", "invalid_value"),
    ({"prompt": "p", "model": "sora-2-2025-12-08", "size": "1792x1024"}, "size", "invalid_value"),
    ({"prompt": "p", "model": "sora-3"}, "model", "invalid_value"),
    ({"prompt": "p", "quality": "high"}, "quality", "unknown_parameter"),
    ({"prompt": "p", "input_reference": "https://x/y.png"}, "input_reference", "invalid_type"),
    ({"prompt": "p", "input_reference": {}}, "input_reference", "invalid_value"),
    ({"prompt": "p", "input_reference": {"image_url": "https://x/y.png", "file_id": "file-1"}},
     "input_reference", "invalid_value"),
    ({"prompt": "p", "input_reference": {"url": "https://x"}}, "input_reference.url",
     "unknown_parameter"),
    ({"prompt": "p", "input_reference": {"image_url": "not a url"}}, "input_reference.image_url",
     "invalid_url"),
]


@pytest.mark.parametrize(("payload", "param", "code"), BAD_CREATES)
def test_invalid_json_creates_are_rejected_with_the_param_named(
        client: httpx.Client, sim: SimulatorServer, payload: dict[str, Any], param: str,
        code: str) -> None:
    error = assert_error(client.post("/videos", json=payload), 400, param=param, code=code,
                         type_="invalid_request_error")
    assert param.split(".")[0] in error["message"]
    assert sim.counters()["creates"] == 0
    assert sim.counters()["creates_rejected"] == 1


def test_enum_errors_list_the_allowed_values(client: httpx.Client) -> None:
    error = assert_error(client.post("/videos", json={"prompt": "p", "seconds": "5"}), 400)
    assert "'4', '8', and '12'" in error["message"]
    error = assert_error(client.post("/videos", json={"prompt": "p", "size": "1024x1792"}), 400)
    assert "sora-2-pro" in error["message"] and "1280x720" in error["message"]


def test_pro_sizes_are_accepted_for_pro_models(client: httpx.Client) -> None:
    create(client, model="sora-2-pro", size="1024x1792")
    create(client, model="sora-2-pro-2025-10-06", size="1792x1024", seconds="12")


@pytest.mark.parametrize(("fields", "upload", "param"), [
    ({"size": "720x1280"}, None, "prompt"),
    ({"prompt": "p", "seconds": "10"}, None, "seconds"),
    ({"prompt": "p", "bogus": "1"}, None, "bogus"),
    ({"prompt": "p"}, ("notes.txt", b"hello", "text/plain"), "input_reference"),
    ({"prompt": "p"}, ("ref.png", b"not really a png", "image/png"), "input_reference"),
    ({"prompt": "p", "input_reference": "inline text"}, None, "input_reference"),
])
def test_invalid_multipart_creates_are_rejected(
        client: httpx.Client, fields: dict[str, str], upload: tuple[str, bytes, str] | None,
        param: str) -> None:
    assert_error(multipart(client, fields, upload), 400, param=param)


def test_bodies_that_are_neither_json_nor_multipart_are_rejected(client: httpx.Client) -> None:
    assert_error(client.post("/videos", content=b"{nope", headers={
        "Content-Type": "application/json"}), 400)
    assert_error(client.post("/videos", data={"prompt": "form encoded"}), 400,
                 code="unsupported_content_type")
    assert_error(client.post("/videos", json=["prompt"]), 400)


def test_unknown_ids_and_urls_answer_404_envelopes(client: httpx.Client) -> None:
    for response in (client.get("/videos/video_missing"), client.delete("/videos/video_missing"),
                     client.get("/videos/video_missing/content")):
        assert_error(response, 404, param="video_id", code="video_not_found")
    # Remix is simulated now: an unknown source is a missing video, an unknown path a bad URL.
    assert_error(client.post("/videos/video_x/remix", json={"prompt": "p"}), 404,
                 param="video_id", code="video_not_found")
    error = assert_error(client.post("/videos/video_x/rewind", json={"prompt": "p"}), 404)
    assert "Invalid URL" in error["message"]


# ---- lifecycle -----------------------------------------------------------------------------


def test_a_job_goes_queued_then_in_progress_with_rising_progress_then_completed(
        make_server: Callable[..., SimulatorServer]) -> None:
    # Slow clock first so "queued" is observable, then speed it up at runtime.
    server = make_server(time_scale=1.0, render_seconds=10.0)
    with make_client(server) as client:
        video = create(client)
        first = client.get(f"/videos/{video['id']}").json()
        assert (first["status"], first["progress"]) == ("queued", 0)
        server.update_config(time_scale=25.0)  # the whole render now takes ~0.4 s
        seen: list[int] = []
        deadline = time.monotonic() + 30
        while True:
            body = client.get(f"/videos/{video['id']}").json()
            assert_schema(body, "VideoResource")
            if body["status"] == "completed":
                break
            assert body["status"] in ("queued", "in_progress")
            assert body["completed_at"] is None
            if body["status"] == "in_progress":
                seen.append(body["progress"])
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert seen == sorted(seen), "progress must never go backwards"
    assert len(set(seen)) >= 3 and all(0 <= p <= 99 for p in seen)
    assert body["progress"] == 100
    assert body["completed_at"] >= body["created_at"]
    assert body["expires_at"] > body["completed_at"]


def test_in_progress_polls_carry_a_clamped_poll_hint(
        make_server: Callable[..., SimulatorServer]) -> None:
    server = make_server(render_seconds=600.0)
    with make_client(server) as client:
        video = create(client)
        response = client.get(f"/videos/{video['id']}")
        assert int(response.headers["openai-poll-after-ms"]) == 20000
        server.update_config(render_seconds=0.0)
    fast = make_server(render_seconds=0.0)
    with make_client(fast) as client:
        done = client.get(f"/videos/{create(client)['id']}")
        assert done.json()["status"] == "completed"
        assert "openai-poll-after-ms" not in done.headers


def _probe(path: Path) -> str:
    result = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True,
                            text=True, check=False)
    return result.stderr


@pytest.mark.parametrize(("model", "size", "seconds"), [
    ("sora-2", "720x1280", "4"),
    ("sora-2-pro", "1792x1024", "8"),
])
def test_completed_content_is_a_real_mp4_of_the_right_length_and_shape(
        client: httpx.Client, tmp_path: Path, model: str, size: str, seconds: str) -> None:
    video = create(client, model=model, size=size, seconds=seconds)
    early = client.get(f"/videos/{video['id']}/content")
    assert_error(early, 404, code="video_not_ready")
    wait_for(client, video["id"])
    response = client.get(f"/videos/{video['id']}/content")
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(response.content)
    data = response.content
    # +faststart puts the index before the media so players can start streaming.
    assert data[4:8] == b"ftyp" and data.index(b"moov") < data.index(b"mdat")
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    decoded = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-f", "null", "-"],
                             capture_output=True, text=True, check=False)
    assert decoded.returncode == 0 and decoded.stderr == ""
    info = _probe(path)
    duration = re.search(r"Duration: (\d+):(\d+):(\d+\.\d+)", info)
    assert duration is not None
    hours, minutes, secs = duration.groups()
    assert abs(int(hours) * 3600 + int(minutes) * 60 + float(secs) - int(seconds)) < 0.1
    stream = re.search(r"Video: h264.*?yuv420p.*?, (\d+)x(\d+)", info)
    assert stream is not None, info
    width, height = int(stream.group(1)), int(stream.group(2))
    want_w, want_h = (int(side) for side in size.split("x"))
    assert width % 2 == 0 and height % 2 == 0 and width < want_w
    assert abs(width / height - want_w / want_h) < 0.02


def test_thumbnail_and_spritesheet_are_jpegs(client: httpx.Client) -> None:
    video = create(client, size="1280x720", seconds="12")
    wait_for(client, video["id"])
    thumb = client.get(f"/videos/{video['id']}/content", params={"variant": "thumbnail"})
    sheet = client.get(f"/videos/{video['id']}/content", params={"variant": "spritesheet"})
    for response in (thumb, sheet):
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert response.content[:3] == b"\xff\xd8\xff"
    assert image_dimensions(thumb.content) == (160, 90)
    # 12 one-second frames in a 4-wide grid.
    assert image_dimensions(sheet.content) == (4 * 160, 3 * 90)
    bad = client.get(f"/videos/{video['id']}/content", params={"variant": "poster"})
    assert_error(bad, 400, param="variant", code="invalid_value")


def test_content_expires_after_the_ttl(client: httpx.Client, sim: SimulatorServer) -> None:
    video = create(client)
    done = wait_for(client, video["id"])
    # 3600 simulated seconds at time_scale 50 is 72 real seconds.
    assert abs(done["expires_at"] - done["completed_at"] - 72) <= 2
    assert client.get(f"/videos/{video['id']}/content").status_code == 200
    sim.update_config(time_scale=1_000_000.0)  # the hour now passes in 3.6 ms
    deadline = time.monotonic() + 30
    while (response := client.get(f"/videos/{video['id']}/content")).status_code == 200:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    error = assert_error(response, 404, code="video_expired")
    assert "expired" in error["message"]
    # The job itself is still listed and retrievable; only its assets are gone.
    assert client.get(f"/videos/{video['id']}").json()["status"] == "completed"


def test_delete_only_finished_jobs(make_server: Callable[..., SimulatorServer]) -> None:
    server = make_server(render_seconds=600.0)
    with make_client(server) as client:
        running = create(client)
        error = assert_error(client.delete(f"/videos/{running['id']}"), 400, param="video_id")
        assert "queued" in error["message"] and "completed or failed" in error["message"]
        server.update_config(render_seconds=0.0)
        finished = create(client)
        failed = create(client, prompt="[fail] a storm")
        assert wait_for(client, failed["id"], ("failed",))["status"] == "failed"
        for video in (finished, failed):
            response = client.delete(f"/videos/{video['id']}")
            assert response.status_code == 200, response.text
            assert_error(client.get(f"/videos/{video['id']}"), 404)
            assert_error(client.get(f"/videos/{video['id']}/content"), 404)
            assert_error(client.delete(f"/videos/{video['id']}"), 404)
        listed = [item["id"] for item in client.get("/videos").json()["data"]]
        assert listed == [running["id"]]
    assert server.counters()["deletes"] == 5


# ---- list ----------------------------------------------------------------------------------


def test_list_pagination_with_limit_order_and_after(client: httpx.Client) -> None:
    ids = [create(client, prompt=f"clip {n}")["id"] for n in range(5)]
    page = client.get("/videos", params={"limit": 2}).json()
    assert [v["id"] for v in page["data"]] == [ids[4], ids[3]]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (ids[4], ids[3], True)
    page = client.get("/videos", params={"limit": 2, "after": page["last_id"]}).json()
    assert [v["id"] for v in page["data"]] == [ids[2], ids[1]]
    page = client.get("/videos", params={"limit": 2, "after": page["last_id"]}).json()
    assert [v["id"] for v in page["data"]] == [ids[0]]
    assert page["has_more"] is False
    ascending = client.get("/videos", params={"order": "asc", "limit": 3}).json()
    assert [v["id"] for v in ascending["data"]] == ids[:3]
    after = client.get("/videos", params={"order": "asc", "after": ids[3]}).json()
    assert [v["id"] for v in after["data"]] == [ids[4]]
    empty = client.get("/videos", params={"limit": 0}).json()
    assert_schema(empty, "VideoListResource")
    assert (empty["data"], empty["first_id"], empty["last_id"], empty["has_more"]) == (
        [], None, None, True)


def test_list_defaults_to_twenty_newest_first(client: httpx.Client) -> None:
    ids = [create(client, prompt=f"n{n}")["id"] for n in range(21)]
    page = client.get("/videos").json()
    assert [v["id"] for v in page["data"]] == ids[::-1][:20]
    assert page["has_more"] is True


def test_a_deleted_cursor_still_pages(client: httpx.Client, sim: SimulatorServer) -> None:
    sim.update_config(render_seconds=0.0)
    ids = [create(client)["id"] for _ in range(3)]
    assert client.delete(f"/videos/{ids[1]}").status_code == 200
    page = client.get("/videos", params={"after": ids[1]}).json()
    assert [v["id"] for v in page["data"]] == [ids[0]]


@pytest.mark.parametrize(("params", "param"), [
    ({"limit": "101"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"order": "newest"}, "order"),
    ({"after": "video_unknown"}, "after"),
])
def test_bad_list_parameters_are_rejected(client: httpx.Client, params: dict[str, str],
                                          param: str) -> None:
    assert_error(client.get("/videos", params=params), 400, param=param)


# ---- auth ----------------------------------------------------------------------------------


def test_missing_or_malformed_credentials_are_rejected(sim: SimulatorServer) -> None:
    with make_client(sim, key=None) as anonymous:
        error = assert_error(anonymous.get("/videos"), 401, code="invalid_api_key",
                             type_="invalid_request_error")
        assert "didn't provide an API key" in error["message"]
        assert_error(anonymous.get("/videos", headers={"Authorization": "Bearer"}), 401)
        assert_error(anonymous.get("/videos", headers={"Authorization": f"Basic {API_KEY}"}), 401)
    assert sim.counters()["unauthorized_401"] == 3


def test_api_keys_restrict_access_and_are_never_echoed(sim: SimulatorServer) -> None:
    good = "sk-proj-good-key-0000000000000001"
    wrong = "sk-proj-wrong-key-999999999999wxyz"
    sim.update_config(api_keys=[good])
    with make_client(sim, key=wrong) as client:
        response = client.get("/videos")
        error = assert_error(response, 401, code="invalid_api_key")
        assert "Incorrect API key provided" in error["message"]
        assert "sk-...wxyz" in error["message"]
        assert wrong not in response.text
    with make_client(sim, key="short") as client:
        assert "short" not in client.get("/videos").text
    with make_client(sim, key=good) as client:
        assert client.get("/videos").status_code == 200
    state = httpx.get(sim.url + "/_sim/state", verify=SSL_CONTEXT).text
    assert good not in state and "sk-...0001" in state


def test_image_dimensions_reads_png_jpeg_and_webp(tmp_path: Path) -> None:
    assert image_dimensions(make_png(33, 17)) == (33, 17)
    for ext in ("jpg", "webp"):
        out = tmp_path / f"frame.{ext}"
        subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=48x30",
                        "-frames:v", "1", str(out)], check=True)
        assert image_dimensions(out.read_bytes()) == (48, 30), ext
    assert image_dimensions(b"GIF89a....") is None
