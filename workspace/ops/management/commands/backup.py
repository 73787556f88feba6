"""``manage backup --to DIR``: the database, then the media, into a new folder under DIR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workspace.ops.backup import BackupError, backup_create, manifest_read


class Command(BaseCommand):
    help = (
        "Back up the database (pg_dump custom format, or SQLite's online backup) and then every "
        "media file into DIR/reelhouse-<UTC time>/ with a manifest. Safe while Reelhouse runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True, type=Path, help="Folder to write into.")
        parser.add_argument(
            "--no-media",
            action="store_true",
            help="Database only (the media store is backed up by other means, e.g. bucket "
            "versioning or replication).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            folder = backup_create(to=options["to"], media=not options["no_media"])
            manifest = manifest_read(folder)
        except BackupError as error:
            raise CommandError(str(error)) from None
        media = manifest["media"]
        self.stdout.write(
            f"Backed up to {folder}: database {manifest['database']['bytes']} bytes"
            + (f", {media['files']} media files ({media['bytes']} bytes)" if media else "")
        )
