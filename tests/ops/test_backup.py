"""`manage backup` and `manage restore`: what a backup holds, a restore into a fresh database and
store, and the refusals that keep a restore from landing on live data."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from workspace.generations import submission
from workspace.generations.models import Generation, Status

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="pg_dump and pg_restore: PostgreSQL only"
)


def backup(to: Path, *extra: str) -> Path:
    call_command("backup", "--to", str(to), *extra, stdout=open(os.devnull, "w"))  # noqa: SIM115
    (folder,) = to.iterdir()
    return folder


@pytest.fixture
def work(project, teammate) -> tuple[Generation, str]:  # type: ignore[no-untyped-def]
    generation = submission.generation_submit(
        project=project, user=teammate, prompt="A lighthouse in fog", model="sora-2",
        size="1280x720", seconds=4,
    )
    name = default_storage.save(
        generation.storage_name("video.mp4"), ContentFile(b"\x00\x00\x00\x18ftypmp42 a video")
    )
    return generation, name


def test_a_backup_holds_the_database_then_the_media_and_a_manifest(work, tmp_path) -> None:  # type: ignore[no-untyped-def]
    generation, name = work
    folder = backup(tmp_path / "backups")
    assert folder.name.startswith("reelhouse-") and not folder.name.endswith(".partial")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == 1
    assert manifest["database"]["engine"] == connection.vendor
    assert manifest["migrations"]["generations"].startswith("00")
    assert manifest["media"] == {"files": 1, "bytes": default_storage.size(name)}
    assert manifest["started_at"] <= manifest["database_dumped_by"] <= manifest["finished_at"]
    dump = folder / manifest["database"]["file"]
    assert dump.stat().st_mode & 0o777 == 0o600
    assert (folder / "media" / name).read_bytes() == default_storage.open(name).read()
    if connection.vendor == "postgresql":
        listing = subprocess.run(
            ["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True
        ).stdout
        assert "TABLE DATA public generations_generation" in listing
    else:
        with sqlite3.connect(dump) as copy:
            rows = copy.execute("select id from generations_generation").fetchall()
        assert [row[0].replace("-", "") for row in rows] == [generation.pk.hex]


def test_a_database_only_backup_leaves_the_media_out(work, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = backup(tmp_path / "backups", "--no-media")
    assert json.loads((folder / "manifest.json").read_text())["media"] is None
    assert not (folder / "media").exists()


@postgres_only
def test_without_pg_dump_the_backup_fails_loudly_and_leaves_nothing(work, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(CommandError, match="pg_dump was not found on PATH"):
        backup(tmp_path / "backups")
    assert list((tmp_path / "backups").iterdir()) == []


def test_a_restore_never_lands_on_a_database_that_has_tables(work, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = backup(tmp_path / "backups", "--no-media")
    with pytest.raises(CommandError, match="already has tables"):
        call_command("restore", "--from", str(folder), "--no-media")
    assert Generation.objects.get().status == Status.QUEUED  # untouched


def test_a_restore_never_lands_on_a_media_store_that_holds_files(work, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = backup(tmp_path / "backups")
    with pytest.raises(CommandError, match="media store is not empty"):
        call_command("restore", "--from", str(folder))


def test_a_folder_without_a_manifest_is_not_taken_for_a_backup(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "half").mkdir()
    with pytest.raises(CommandError, match="not a complete backup"):
        call_command("restore", "--from", str(tmp_path / "half"))


@pytest.fixture
def fresh_database(tmp_path) -> Iterator[tuple[str, object]]:  # type: ignore[no-untyped-def]
    """An empty database beside the test database: its URL, and a way to query it."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        path = tmp_path / "restored.sqlite3"
        yield f"sqlite:///{path}", lambda sql: sqlite3.connect(path).execute(sql).fetchall()
        return
    import psycopg

    name = f"{settings['NAME']}_restore"
    auth = f"{settings['USER']}:{settings['PASSWORD']}@" if settings["PASSWORD"] else (
        f"{settings['USER']}@"
    )
    server = f"postgres://{auth}{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}"')
        admin.execute(f'create database "{name}"')

    def query(sql: str) -> list[tuple[object, ...]]:
        with psycopg.connect(f"{server}/{name}") as restored:
            return restored.execute(sql).fetchall()

    yield f"{server}/{name}", query
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')


def test_a_backup_restores_into_a_fresh_database_and_store(work, tmp_path, fresh_database, redis_url) -> None:  # type: ignore[no-untyped-def]
    _, name = work
    folder = backup(tmp_path / "backups")
    url, query = fresh_database
    media = tmp_path / "restored-media"
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "restore", "--from", str(folder)],
        env={
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "REELHOUSE_MEDIA_ROOT": str(media),
            "REELHOUSE_VAR_DIR": str(tmp_path / "var"),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "1 media files restored" in result.stdout
    assert (media / name).read_bytes() == default_storage.open(name).read()
    # The dump's queued generation is to be checked against the provider before it is sent.
    assert query("select status, submit_attempts from generations_generation") == [
        ("submitting", 0)
    ]
    assert query("select count(*) from billing_ledgerentry")[0][0] >= 1
