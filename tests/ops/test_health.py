"""/healthz and /readyz: each state a load balancer must tell apart, with the real services."""

from __future__ import annotations

import json
import socket

import pytest
import redis
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import ConnectionHandler
from rq import Queue, Worker

from workspace.core.rq import SCHEDULER_HEARTBEAT_KEY, scheduler_beat
from workspace.ops import health

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def worker_on(queue: str, redis_conn: redis.Redis) -> Worker:
    """A worker registered and beating, as a running ``rqworker`` would be."""
    worker = Worker([Queue(queue, connection=redis_conn)], connection=redis_conn)
    worker.register_birth()
    worker.heartbeat()
    return worker


@pytest.fixture
def everything_running(redis_conn: redis.Redis) -> None:
    worker_on("default", redis_conn)
    worker_on("dispatch", redis_conn)
    scheduler_beat()


@pytest.fixture(autouse=True)
def _migrations_checked_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_migrations_applied", False)


def readyz(client) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    response = client.get("/readyz")
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    return response.status_code, json.loads(response.content)


def states(body: dict) -> dict[str, str]:
    return {check["name"]: check["state"] for check in body["checks"]}


def test_liveness_answers_any_host_over_plain_http(client, settings) -> None:  # type: ignore[no-untyped-def]
    # A load balancer probes by address over HTTP, in production with the HTTPS redirect on.
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["reelhouse.example"]
    response = client.get("/healthz", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200
    assert json.loads(response.content) == {"status": "ok", "checks": []}
    assert client.get("/readyz", HTTP_HOST="10.0.0.7:8000").status_code in (200, 503)
    # Everything else still gets the host check and the redirect.
    assert client.get("/accounts/login/", HTTP_HOST="reelhouse.example").status_code == 301
    assert client.get("/accounts/login/", HTTP_HOST="10.0.0.7:8000").status_code == 400


def test_ready_when_every_check_passes(client, everything_running) -> None:  # type: ignore[no-untyped-def]
    status, body = readyz(client)
    assert status == 200, body
    assert body["status"] == "ok"
    assert states(body) == {
        "database": "ok",
        "migrations": "ok",
        "redis": "ok",
        "storage": "ok",
        "workers:default": "ok",
        "workers:dispatch": "ok",
        "scheduler": "ok",
    }
    assert all(check["latency_ms"] >= 0 for check in body["checks"])


def test_not_ready_without_a_worker_on_a_queue(client, redis_conn) -> None:  # type: ignore[no-untyped-def]
    worker_on("default", redis_conn)
    scheduler_beat()
    status, body = readyz(client)
    assert (status, body["status"]) == (503, "not_ready")
    assert states(body)["workers:default"] == "ok"
    assert states(body)["workers:dispatch"] == "not_ready"


def test_a_worker_that_stopped_beating_does_not_count(client, redis_conn, everything_running, settings) -> None:  # type: ignore[no-untyped-def]
    settings.REELHOUSE_HEALTH_WORKER_SEEN_SECONDS = 60
    for worker in Worker.all(connection=redis_conn):
        # Its last beat two minutes ago: killed without a chance to unregister.
        redis_conn.hset(worker.key, "last_heartbeat", "2000-01-01T00:00:00.000000Z")
    status, body = readyz(client)
    assert (status, body["status"]) == (503, "not_ready")
    assert states(body)["workers:default"] == states(body)["workers:dispatch"] == "not_ready"
    # One still registered and in a long job (an in-process worker beats only between jobs).
    [busy] = Worker.all(connection=redis_conn, queue=Queue("dispatch", connection=redis_conn))
    redis_conn.hset(busy.key, "current_job", "a-long-download")
    assert states(readyz(client)[1])["workers:dispatch"] == "ok"


def test_not_ready_while_the_scheduler_is_absent_or_stale(client, redis_conn, everything_running, settings) -> None:  # type: ignore[no-untyped-def]
    settings.REELHOUSE_HEALTH_SCHEDULER_SEEN_SECONDS = 60
    seconds, _ = redis_conn.time()
    redis_conn.set(SCHEDULER_HEARTBEAT_KEY, str(seconds - 600))
    status, body = readyz(client)
    assert (status, body["status"]) == (503, "not_ready")
    assert states(body)["scheduler"] == "not_ready"
    detail = next(c for c in body["checks"] if c["name"] == "scheduler")["detail"]
    assert detail.startswith("the recovery scheduler was last seen 60")

    redis_conn.delete(SCHEDULER_HEARTBEAT_KEY)
    status, body = readyz(client)
    assert (status, states(body)["scheduler"]) == (503, "not_ready")

    scheduler_beat()
    assert readyz(client)[0] == 200


def test_not_ready_while_migrations_are_pending(client, everything_running, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    real_plan = MigrationExecutor.migration_plan
    # A deploy whose new code is running before ``migrate``: one migration not applied.
    monkeypatch.setattr(
        MigrationExecutor,
        "migration_plan",
        lambda self, targets, clean_start=False: [("core.9999_new", False)],
    )
    status, body = readyz(client)
    assert (status, body["status"]) == (503, "not_ready")
    assert states(body)["migrations"] == "not_ready"
    assert "1 migrations not applied" in body["checks"][1]["detail"]
    monkeypatch.setattr(MigrationExecutor, "migration_plan", real_plan)
    assert readyz(client)[0] == 200


def test_broken_when_redis_is_unreachable(client, everything_running, settings) -> None:  # type: ignore[no-untyped-def]
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    status, body = readyz(client)
    assert (status, body["status"]) == (503, "broken")
    assert states(body)["redis"] == "broken"
    assert "ConnectionError" in body["checks"][2]["detail"]
    # What depends on Redis is not reported as a second cause.
    assert states(body)["workers:default"] == states(body)["scheduler"] == "skipped"
    assert states(body)["database"] == "ok"


def test_broken_when_the_database_is_unreachable_and_no_secret_is_shown(client, everything_running, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    real = connections.settings[DEFAULT_DB_ALIAS]
    if real["ENGINE"].endswith("sqlite3"):
        broken_settings = {**real, "NAME": "/nonexistent/folder/reelhouse.sqlite3"}
    else:
        broken_settings = {
            **real,
            "HOST": "127.0.0.1",
            "PORT": str(closed_port()),
            "PASSWORD": "hunter2-very-secret",
        }
    broken = ConnectionHandler({DEFAULT_DB_ALIAS: broken_settings})
    monkeypatch.setattr(health, "connections", broken)
    try:
        status, body = readyz(client)
    finally:
        broken.close_all()
    assert (status, body["status"]) == (503, "broken")
    assert states(body)["database"] == "broken"
    assert states(body)["migrations"] == "skipped"
    assert body["checks"][0]["detail"] == "unreachable or failing (OperationalError)"
    # Broken wins over what merely is not ready.
    assert states(body)["redis"] == "ok"
    text = json.dumps(body)
    assert "hunter2" not in text and str(broken_settings.get("NAME")) not in text


def test_broken_when_media_storage_cannot_be_written(client, everything_running, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the media folder should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocked), "base_url": "/nonexistent/"},
        },
    }
    status, body = readyz(client)
    assert (status, body["status"]) == (503, "broken")
    assert states(body)["storage"] == "broken"


def test_the_storage_probe_leaves_no_file(client, everything_running, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert readyz(client)[0] == 200
    assert not [p for p in (tmp_path / "media").rglob("*") if p.is_file()]


def test_only_get_and_head(client) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/healthz").status_code == 405
    assert client.head("/healthz").status_code == 200


# The scheduler closes its database connections after each sweep: not inside a test transaction.
@pytest.mark.django_db(transaction=True)
def test_the_scheduler_leaves_its_heartbeat_at_every_loop(client, redis_conn) -> None:  # type: ignore[no-untyped-def]
    from django.core.management import call_command

    worker_on("default", redis_conn)
    worker_on("dispatch", redis_conn)
    assert readyz(client)[0] == 503
    call_command("reelhouse_scheduler", "--once")
    status, body = readyz(client)
    assert status == 200, body
    assert states(body)["scheduler"] == "ok"


def test_the_storage_probe_checks_an_s3_bucket(client, everything_running, s3_media, settings) -> None:  # type: ignore[no-untyped-def]
    from ..conftest import S3_SECRET_ACCESS_KEY, bucket_keys

    status, body = readyz(client)
    assert (status, states(body)["storage"]) == (200, "ok")
    assert bucket_keys(s3_media) == {}  # the probe's object is gone again
    store = settings.STORAGES["default"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**store, "OPTIONS": {**store["OPTIONS"], "bucket_name": "no-such-bucket"}},
    }
    status, body = readyz(client)
    assert (status, body["status"], states(body)["storage"]) == (503, "broken", "broken")
    assert S3_SECRET_ACCESS_KEY not in json.dumps(body)
