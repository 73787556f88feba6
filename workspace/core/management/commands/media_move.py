"""Copy (or move) every stored media file between local files and the S3 bucket.

    manage.py media_move --to s3 [--dry-run] [--delete-source]
    manage.py media_move --to local

Moving to S3 without stopping: set the REELHOUSE_S3_* variables, run ``--to s3`` while media is
still local, switch REELHOUSE_STORAGE=s3 and restart, then run ``--to s3`` again for what was
written in between (already copied files are skipped by size). Exit status 1 when any file
conflicted or failed to verify.
"""

from __future__ import annotations

from typing import Any

from django.core.files.storage import InvalidStorageError, storages
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.defaultfilters import filesizeformat

from workspace.core.storage import media_move


class Command(BaseCommand):
    help = "Copy every stored media file between local files and the S3 bucket (re-runnable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", choices=["s3", "local"], required=True)
        parser.add_argument("--dry-run", action="store_true", help="count, copy nothing")
        parser.add_argument(
            "--delete-source",
            action="store_true",
            help="remove each original once its copy is verified (or already there)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        target = options["to"]
        origin = "local" if target == "s3" else "s3"
        try:
            source, destination = storages[f"media-{origin}"], storages[f"media-{target}"]
        except InvalidStorageError:
            raise CommandError(
                "No S3 bucket is configured: set REELHOUSE_S3_BUCKET (and the other "
                "REELHOUSE_S3_* variables, docs/production.md) first."
            ) from None
        verbose = options["verbosity"] >= 2

        def progress(state: str, name: str) -> None:
            if verbose or state in {"conflict", "failed"}:
                self.stdout.write(f"{state}: {name}")

        report = media_move(
            source=source,
            destination=destination,
            dry_run=options["dry_run"],
            delete_source=options["delete_source"],
            progress=progress,
        )
        verb = "would copy" if options["dry_run"] else "copied"
        self.stdout.write(
            f"{origin} → {target}: {verb} {report.copied} "
            f"({filesizeformat(report.copied_bytes)}), skipped {report.skipped} already there, "
            f"{len(report.conflicts)} conflicts, {len(report.failed)} failed"
            + (f", {report.deleted_sources} originals deleted" if report.deleted_sources else "")
        )
        if report.conflicts or report.failed:
            raise CommandError(
                "Some files were not copied (listed above): a conflict is a file already at the "
                "destination with another size, left alone; remove the wrong one and re-run."
            )
