"""The per-token request rate on /v1: a flood from one token gets 429s with Retry-After and
OpenAI's x-ratelimit headers, other tokens keep their own allowance, and the creates that got
through wait their turn in the fair queue behind nobody else's."""

from __future__ import annotations

import pytest
import redis
from django.contrib.auth.models import User

from workspace.api import ratelimit
from workspace.generations.dispatch import channel_dispatch_once
from workspace.generations.models import Generation
from workspace.projects.models import Role
from workspace.projects.services import membership_add
from workspace.providers.services import limiter_for_channel

CREATE = {"model": "sora-2", "prompt": "A lighthouse in fog", "size": "1280x720", "seconds": "4"}


@pytest.fixture(autouse=True)
def _one_a_minute_after_three(settings) -> None:  # type: ignore[no-untyped-def]
    # One request a minute after a burst of three: no test runs long enough to earn another.
    settings.REELHOUSE_API_REQUESTS_PER_MINUTE = 1
    settings.REELHOUSE_API_REQUEST_BURST = 3


@pytest.mark.django_db
def test_a_flood_from_one_token_is_refused_with_retry_after(api, issue, teammate, project, owner) -> None:  # type: ignore[no-untyped-def]
    flooding = api(issue(teammate, project))
    answers = [flooding.get("/videos") for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert [a["x-ratelimit-remaining-requests"] for a in answers] == ["2", "1", "0", "0", "0"]
    assert all(a["x-ratelimit-limit-requests"] == "1" for a in answers)
    refused = answers[3]
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_exceeded", "rate_limit_exceeded")
    assert "1 a minute" in error["message"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert float(refused["x-ratelimit-reset-requests"].rstrip("s")) > 0
    # Another token, even the same member's, has its own allowance.
    assert api(issue(teammate, project, name="second")).get("/videos").status_code == 200
    assert api(issue(owner, project)).get("/videos").status_code == 200


@pytest.mark.django_db
def test_refused_requests_do_nothing(api, issue, teammate, project) -> None:  # type: ignore[no-untyped-def]
    client = api(issue(teammate, project))
    for _ in range(3):
        assert client.post("/videos", CREATE).status_code == 200
    refused = client.post("/videos", CREATE)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert Generation.objects.count() == 3


@pytest.mark.django_db
def test_without_a_limit_or_without_redis_the_api_still_answers(
    api, issue, teammate, project, settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    client = api(issue(teammate, project))

    def down() -> None:
        raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(ratelimit, "get_redis", down)
    answers = [client.get("/videos") for _ in range(5)]
    assert {a.status_code for a in answers} == {200}
    assert "x-ratelimit-limit-requests" not in answers[0]
    monkeypatch.undo()
    settings.REELHOUSE_API_REQUESTS_PER_MINUTE = 0
    assert {client.get("/videos").status_code for _ in range(5)} == {200}


@pytest.mark.django_db(transaction=True)
def test_a_flooding_token_does_not_starve_another_members_creates(
    api, issue, teammate, owner, project, channel, simulator
) -> None:  # type: ignore[no-untyped-def]
    light = User.objects.create_user("lena", password="x")
    membership_add(project=project, username="lena", role=Role.EDITOR, actor=owner)
    flooding, calm = api(issue(teammate, project)), api(issue(light, project))

    statuses = [flooding.post("/videos", {**CREATE, "prompt": f"flood {n}"}).status_code for n in range(6)]
    light_video = calm.post("/videos", {**CREATE, "prompt": "calm"})
    statuses += [flooding.post("/videos", {**CREATE, "prompt": "late"}).status_code]
    assert statuses == [200, 200, 200, 429, 429, 429, 429]
    assert light_video.status_code == 200

    limiter = limiter_for_channel(channel=channel)
    order = [
        channel_dispatch_once(channel=channel, limiter=limiter, max_wait=5) for _ in range(3)
    ]
    # The calm member's one video is sent second, after the flood's first and before the rest.
    assert [g.prompt if g else None for g in order] == ["flood 0", "calm", "flood 1"]


@pytest.mark.django_db(transaction=True)
def test_the_openai_sdk_sees_its_own_rate_limit_error(live_server, issue, teammate, project, settings) -> None:  # type: ignore[no-untyped-def]
    import openai

    settings.REELHOUSE_API_REQUEST_BURST = 1
    client = openai.OpenAI(
        base_url=f"{live_server.url}/v1", api_key=issue(teammate, project), max_retries=0
    )
    assert list(client.videos.list()) == []
    with pytest.raises(openai.RateLimitError) as limited:
        client.videos.list()
    assert limited.value.code == "rate_limit_exceeded"
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 60
