"""Twenty Generate clicks at once: every one is queued and answered, none is a server error.

A dispatch lane whose RQ job is gone or dead (its worker was killed, or it finished and RQ
deleted it) is replaced by whichever kick comes first; the others used to find the job listed
and then fail to fetch it, answering a 500 for a generation already queued and paid for.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.test import Client
from django.urls import reverse
from rq.job import Job, JobStatus

from workspace.core.rq import DISPATCH_QUEUE, get_queue
from workspace.generations import dispatch
from workspace.generations import lanes as dispatch_lanes
from workspace.generations.models import Generation, Status

from ..conftest import PASSWORD

CLICKS = 20


def form() -> dict[str, str]:
    return {"prompt": "Waves at dawn", "model": "sora-2", "size": "1280x720", "seconds": "4"}


def _dead_lanes(channel_id: int) -> None:
    """Lanes whose jobs RQ still lists but whose workers died (started, no heartbeat)."""
    queue = get_queue(DISPATCH_QUEUE)
    for lane in range(2):
        job = Job.create(
            dispatch.channel_dispatch_lane,
            kwargs={"channel_id": channel_id, "lane": lane},
            id=dispatch_lanes.lane_id(channel_id, lane),
            connection=queue.connection,
        )
        job.set_status(JobStatus.STARTED)
        job.save()


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: twenty requests at once, each on its own connection "
    "(set DATABASE_URL=postgres://…)",
)
@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_clicks_are_all_queued_without_a_500(
    project, channel, teammate
) -> None:  # type: ignore[no-untyped-def]
    _dead_lanes(channel.pk)
    url = reverse("generations:create", args=[project.pk])
    start = threading.Barrier(CLICKS)
    statuses: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def click() -> None:
        client = Client(raise_request_exception=False)
        try:
            assert client.login(username=teammate.username, password=PASSWORD)
            start.wait(timeout=30)
            answer = client.post(url, form())
            with lock:
                statuses.append(answer.status_code)
        except BaseException as error:
            with lock:
                errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click) for _ in range(CLICKS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert statuses == [302] * CLICKS
    assert Generation.objects.filter(status=Status.QUEUED).count() == CLICKS
    # The dead lanes were replaced: work will be sent.
    lanes = {job.id for job in get_queue(DISPATCH_QUEUE).get_jobs()}
    assert lanes == {dispatch_lanes.lane_id(channel.pk, lane) for lane in range(2)}


def test_a_lane_job_vanishing_between_the_check_and_the_fetch_is_replaced(
    project, channel, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    # RQ deletes a finished lane (result_ttl=0) at any moment, e.g. right after it was listed.
    monkeypatch.setattr(dispatch_lanes, "_exists", lambda job_id: True)
    assert dispatch_lanes.channel_kick(channel_id=channel.pk) == 2
    assert len(get_queue(DISPATCH_QUEUE)) == 2


@pytest.mark.django_db(transaction=True)  # the kick runs only once the submission commits
def test_a_failing_kick_after_commit_does_not_fail_the_submission(
    project, teammate, channel, monkeypatch, caplog
) -> None:  # type: ignore[no-untyped-def]
    # The generation is committed and its cost reserved: the member must hear "queued". The
    # recovery sweep starts the lanes later.
    def broken(**kwargs: object) -> int:
        raise ConnectionError("Redis went away")

    monkeypatch.setattr(dispatch_lanes, "channel_kick", broken)
    client = Client(raise_request_exception=True)
    assert client.login(username=teammate.username, password=PASSWORD)
    answer = client.post(reverse("generations:create", args=[project.pk]), form())
    assert answer.status_code == 302
    assert Generation.objects.get().status == Status.QUEUED
    assert "Redis went away" in caplog.text


class _BrokenMailServer:
    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def send_messages(self, messages: object) -> int:
        raise ConnectionRefusedError("mail server down")


@pytest.mark.django_db(transaction=True)  # the warning email goes only once the submission commits
def test_a_mail_outage_after_commit_does_not_fail_the_submission(
    project, teammate, channel, settings, caplog
) -> None:  # type: ignore[no-untyped-def]
    from workspace.billing.models import Budget

    # The 80 % budget warning is emailed after commit; the server refusing it used to answer a
    # 500 for a generation already queued and reserved.
    settings.EMAIL_BACKEND = f"{__name__}._BrokenMailServer"
    teammate.email = "tariq@example.test"
    teammate.save()
    Budget.objects.create(scope="member", limit_cents=40)
    client = Client(raise_request_exception=True)
    assert client.login(username=teammate.username, password=PASSWORD)
    answer = client.post(reverse("generations:create", args=[project.pk]), form())
    assert answer.status_code == 302
    assert Generation.objects.get().status == Status.QUEUED
    assert "mail server down" in caplog.text
