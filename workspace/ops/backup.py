"""Backups: the database (pg_dump's custom format, or SQLite's online backup) and then the media,
into one folder with a manifest; and the way back into a fresh database and store.

The database goes first: a file the dump names as stored was stored before the dump began, so
the media copy taken afterwards holds it. Files stored after the dump are copied too; their rows
still say ``in_progress`` or ``downloading`` in the dump, and the restored system fetches them
again from the provider (the same name is overwritten). The folder is written under a
``.partial`` name and renamed once complete, so an interrupted backup is never taken for one.

Media go through Django's storage API, so a backup works the same whichever store is
configured; for a large object store, the bucket's own versioning or replication is the better
copy (docs/operations.md) and ``--no-media`` leaves it out here.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, connections
from django.db.migrations.recorder import MigrationRecorder

MANIFEST = "manifest.json"
POSTGRES_DUMP = "database.dump"
SQLITE_COPY = "database.sqlite3"
MEDIA_DIR = "media"
FORMAT_VERSION = 1


class BackupError(Exception):
    """A backup or a restore cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class MediaCount:
    files: int
    bytes: int


def _engine() -> str:
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise BackupError(f"Backups know PostgreSQL and SQLite, not {vendor}.")
    return vendor


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} was not found on PATH. Install the PostgreSQL client tools of the server's "
            "major version or later (Debian: apt-get install postgresql-client)."
        )
    return found


def _libpq_env() -> dict[str, str]:
    """The connection for pg_dump/pg_restore in libpq's variables: a password on a command line
    would be readable by every user of the machine."""
    settings = connections["default"].settings_dict
    env = {**os.environ}
    for variable, key in (
        ("PGHOST", "HOST"),
        ("PGPORT", "PORT"),
        ("PGUSER", "USER"),
        ("PGPASSWORD", "PASSWORD"),
        ("PGDATABASE", "NAME"),
    ):
        if settings.get(key):
            env[variable] = str(settings[key])
    sslmode = (settings.get("OPTIONS") or {}).get("sslmode")
    if sslmode:
        env["PGSSLMODE"] = str(sslmode)
    return env


def _run(command: list[str], *, env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tool = Path(command[0]).name
        raise BackupError(f"{tool} failed (exit {result.returncode}): {result.stderr.strip()}")


def _sqlite_file() -> Path:
    return Path(str(connections["default"].settings_dict["NAME"]))


def database_dump(destination: Path) -> dict[str, Any]:
    """Dump the database into ``destination`` (a folder); return the manifest's entry."""
    engine = _engine()
    if engine == "postgresql":
        target = destination / POSTGRES_DUMP
        # Custom format: compressed, and pg_restore can restore it in parallel or in part.
        # One consistent snapshot (pg_dump's own transaction) while the app keeps running.
        _run(
            [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
             f"--file={target}"],
            env=_libpq_env(),
        )
    else:
        target = destination / SQLITE_COPY
        # SQLite's online backup: a consistent copy while writers go on (never a file copy,
        # which can catch a half-written page).
        source = sqlite3.connect(_sqlite_file())
        copy = sqlite3.connect(target)
        try:
            with copy:
                source.backup(copy)
        finally:
            copy.close()
            source.close()
    # Password hashes, sessions and webhook secrets: for the operator's eyes only.
    target.chmod(0o600)
    return {"engine": engine, "file": target.name, "bytes": target.stat().st_size}


def _storage_files(directory: str = "") -> Iterator[str]:
    try:
        folders, files = default_storage.listdir(directory)
    except FileNotFoundError:  # a local store whose folder was never made holds nothing
        return
    for name in files:
        yield f"{directory}/{name}" if directory else name
    for folder in folders:
        yield from _storage_files(f"{directory}/{folder}" if directory else folder)


def media_copy_out(destination: Path) -> MediaCount:
    """Copy every file of the default storage into ``destination``, keeping the names."""
    count = size = 0
    destination.mkdir(mode=0o700, exist_ok=True)
    for name in _storage_files():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with default_storage.open(name, "rb") as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        target.chmod(0o600)
        count += 1
        size += target.stat().st_size
    return MediaCount(count, size)


def media_copy_in(source: Path) -> MediaCount:
    """Put every file under ``source`` into the default storage under the same name."""
    count = size = 0
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        name = path.relative_to(source).as_posix()
        if default_storage.exists(name):
            default_storage.delete(name)
        with open(path, "rb") as handle:
            saved = default_storage.save(name, File(handle))
        if saved != name:
            raise BackupError(f"The store saved {name} as {saved}; restore into an empty store.")
        count += 1
        size += path.stat().st_size
    return MediaCount(count, size)


def _latest_migrations() -> dict[str, str]:
    latest: dict[str, str] = {}
    for app, name in MigrationRecorder.Migration.objects.values_list("app", "name"):
        latest[app] = max(latest.get(app, ""), name)
    return dict(sorted(latest.items()))


def backup_create(*, to: Path, media: bool = True) -> Path:
    """Write a complete backup into a new folder under ``to`` and return that folder."""
    started = datetime.now(UTC)
    final = to / f"reelhouse-{started:%Y%m%dT%H%M%SZ}"
    partial = final.with_name(final.name + ".partial")
    if final.exists() or partial.exists():
        raise BackupError(f"{final} already exists; wait a second or choose another folder.")
    partial.mkdir(parents=True, mode=0o700)
    try:
        database = database_dump(partial)
        dumped = datetime.now(UTC)
        files = media_copy_out(partial / MEDIA_DIR) if media else None
        manifest = {
            "format": FORMAT_VERSION,
            "started_at": started.isoformat(),
            "database_dumped_by": dumped.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "database": database,
            "migrations": _latest_migrations(),
            "media": None if files is None else {"files": files.files, "bytes": files.bytes},
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def manifest_read(folder: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise BackupError(
            f"{folder} is not a complete backup (no readable {MANIFEST}: {error})."
        ) from None
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"{folder} has backup format {manifest.get('format')!r}, not 1.")
    return manifest


def database_is_empty() -> bool:
    return not connection.introspection.table_names()


def media_is_empty() -> bool:
    return next(_storage_files(), None) is None


def database_restore(folder: Path, manifest: dict[str, Any]) -> None:
    """Load the dump into the configured database, which must be empty."""
    engine = _engine()
    wanted = manifest["database"]["engine"]
    if engine != wanted:
        raise BackupError(f"The backup holds a {wanted} database; DATABASE_URL names {engine}.")
    if not database_is_empty():
        raise BackupError(
            "The database DATABASE_URL names already has tables. Restore into a new, empty "
            "database (createdb; for SQLite, a new file), never over a live one."
        )
    dump = folder / manifest["database"]["file"]
    if engine == "postgresql":
        connections.close_all()
        _run(
            [_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
             "--single-transaction", f"--dbname={_libpq_env()['PGDATABASE']}", str(dump)],
            env=_libpq_env(),
        )
    else:
        connections.close_all()
        source = sqlite3.connect(dump)
        target = sqlite3.connect(_sqlite_file())
        try:
            with target:
                source.backup(target)
        finally:
            target.close()
            source.close()
