"""Shared fixtures: real Redis, the real provider simulator, and the personas.

Redis: ``REDIS_URL`` when set (CI points it at a real server), else an embedded redis-server on
a unix socket under ``var/``. The database is whatever ``DATABASE_URL`` names (PostgreSQL in
CI), else SQLite.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User

from workspace.core import embedded_redis
from workspace.core.rq import get_queue, get_redis
from workspace.generations.selectors import live_rows_forget
from workspace.projects.models import Project, Role
from workspace.projects.services import membership_add, project_create
from workspace.providers.models import Channel
from workspace.providers.registry import provider_env_names

if TYPE_CHECKING:
    from workspace.simulator.server import SimulatorServer

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    process = None
    if not url:
        # One server per test run, so concurrent runs on one machine never flush each other.
        socket_path = Path(settings.VAR_DIR) / f"test-redis-{os.getpid()}" / "redis.sock"
        process = embedded_redis.start(socket_path)
        url = f"unix://{socket_path}"
    # Mutated in place: django_rq reads this very dict whenever it connects.
    for queue in settings.RQ_QUEUES.values():
        queue["URL"] = url
    settings.REDIS_URL = url
    yield url
    if process is not None:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(socket_path.parent, ignore_errors=True)


@pytest.fixture
def redis_conn(redis_url: str) -> redis.Redis:
    connection = get_redis()
    connection.flushdb()
    return connection


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[SimulatorServer]:
    from workspace.simulator.server import SimulatorServer

    server = SimulatorServer().start()
    yield server
    server.stop()


# Simulated renders take 6 s of provider time; at this scale a test waits ~30 ms for one.
FAST = {"render_seconds": 6.0, "time_scale": 200.0}


@pytest.fixture
def simulator(simulator_server: SimulatorServer, settings) -> SimulatorServer:  # type: ignore[no-untyped-def]
    from workspace.simulator.server import SimulatorConfig

    simulator_server.reset()
    simulator_server.update_config(**{**asdict(SimulatorConfig()), **FAST})
    settings.SIMULATOR_URL = simulator_server.url
    return simulator_server


@pytest.fixture(autouse=True)
def _isolated_environment(settings, tmp_path, monkeypatch, redis_conn):  # type: ignore[no-untyped-def]
    # No test may ever reach a real provider or keep the developer's files.
    webhook_secret_env = Channel._meta.get_field("webhook_secret_env").default
    for name in (*provider_env_names(), webhook_secret_env):
        monkeypatch.delenv(name, raising=False)
    settings.REELHOUSE_DELAY_SCALE = 0
    # Live polls read their own rows (a test changes a row and polls at once); the shared read
    # has its own tests (tests/generations/test_live.py).
    settings.REELHOUSE_LIVE_ROWS_SECONDS = 0
    live_rows_forget()
    # Hashing four personas per test with PBKDF2 would dominate the suite's run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": "/nonexistent/"},
        },
    }


def _user(username: str, **extra: object) -> User:
    return User.objects.create_user(username=username, password=PASSWORD, **extra)  # type: ignore[arg-type]


@pytest.fixture
def owner(db: None) -> User:
    return _user("olivia")


@pytest.fixture
def teammate(db: None) -> User:
    return _user("tariq")


@pytest.fixture
def viewer(db: None) -> User:
    return _user("vera")


@pytest.fixture
def outsider(db: None) -> User:
    return _user("oscar")


@pytest.fixture
def admin_client(client, db):  # type: ignore[no-untyped-def]
    """A superuser named "root", signed in (in place of pytest-django's "admin")."""
    User.objects.create_superuser("root", "root@example.com", "pw-root-123456")
    client.login(username="root", password="pw-root-123456")
    return client


@pytest.fixture
def signed_in(client):  # type: ignore[no-untyped-def]
    """Sign a persona in through the password form's backend: ``signed_in(owner)``."""

    def sign_in(user):  # type: ignore[no-untyped-def]
        assert client.login(username=user.username, password=PASSWORD)
        return client

    return sign_in


@pytest.fixture
def channel(db: None) -> Channel:
    """The default channel, with limits high enough that pacing never slows a test down."""
    return Channel.objects.create(
        slug="openai",
        name="OpenAI Videos",
        requests_per_minute=60_000,
        max_in_flight=50,
        member_max_in_flight=50,
    )


@pytest.fixture
def project(owner: User, teammate: User, viewer: User, channel: Channel) -> Project:
    project = project_create(name="Launch film", owner=owner)
    membership_add(project=project, username=teammate.username, role=Role.EDITOR, actor=owner)
    membership_add(project=project, username=viewer.username, role=Role.VIEWER, actor=owner)
    return project


@pytest.fixture
def run_workers(redis_conn: redis.Redis) -> Callable[..., None]:
    """Run real (forking) RQ workers in burst mode until ``done()`` or the deadline."""
    import django_rq

    def run(done: Callable[[], bool], *, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            worker = django_rq.get_worker("default", "dispatch")
            worker.work(burst=True, with_scheduler=True)
            if done():
                return
            queues = (get_queue("default"), get_queue("dispatch"))
            if not any(len(q) or q.scheduled_job_registry.count for q in queues):
                break
        raise AssertionError("The workers ran out of work before the expected state was reached.")

    return run


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-compatible HTTP server (moto's) on a free port: what the app sends to it goes
    over the wire, signed, as it would to MinIO, R2 or AWS."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


S3_ACCESS_KEY_ID = "AKIATESTREELHOUSE000"
S3_SECRET_ACCESS_KEY = "reelhouse-test-secret-never-shown-0123456789"


@pytest.fixture
def s3_media(settings, s3_server, monkeypatch):  # type: ignore[no-untyped-def]
    """Media on a fresh bucket of the S3 server, configured through the same REELHOUSE_S3_*
    variables an operator sets; ``media-local`` stays the test's own folder."""
    import uuid

    import boto3
    from django.core.files.storage import default_storage

    from workspace import settings as settings_module

    bucket = f"media-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id=S3_ACCESS_KEY_ID,
        aws_secret_access_key=S3_SECRET_ACCESS_KEY,
    )
    client.create_bucket(Bucket=bucket)
    for name, value in {
        "REELHOUSE_S3_BUCKET": bucket,
        "REELHOUSE_S3_ENDPOINT_URL": s3_server,
        "REELHOUSE_S3_REGION": "us-east-1",
        "REELHOUSE_S3_ACCESS_KEY_ID": S3_ACCESS_KEY_ID,
        "REELHOUSE_S3_SECRET_ACCESS_KEY": S3_SECRET_ACCESS_KEY,
        "REELHOUSE_S3_ADDRESSING_STYLE": "path",
    }.items():
        monkeypatch.setenv(name, value)
    store = settings_module.s3_media_storage(required=True)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": store,
        "media-s3": store,
        "media-local": settings.STORAGES["default"],
    }
    settings.REELHOUSE_STORAGE = "s3"
    return SimpleNamespace(storage=default_storage, client=client, bucket=bucket)


def bucket_keys(s3) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Every object in the test's bucket, by key, with its size (read past the app)."""
    listing = s3.client.list_objects_v2(Bucket=s3.bucket)
    return {item["Key"]: item["Size"] for item in listing.get("Contents", [])}
