"""``manage restore --from DIR/reelhouse-…``: a backup into a fresh database and media store,
made safe to run again before any worker starts (docs/operations.md, *Backup and restore*)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import redis
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from workspace.core.rq import REDIS_MARK_KEY, get_redis
from workspace.generations.following import generations_files_check
from workspace.generations.recovery import generations_prepare_after_restore
from workspace.ops.backup import (
    BackupError,
    database_restore,
    manifest_read,
    media_copy_in,
    media_is_empty,
)

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Restore a backup made by `backup` into the (empty) database DATABASE_URL names and the "
        "(empty) media store, then prepare it: generations queued at the dump are checked "
        "against the provider before they are sent, the scheduler is told to resume everything "
        "in flight, and finished videos whose files are missing are fetched again. Stop every "
        "Reelhouse process first; start them when this says done."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--from", dest="source", type=Path, help="The backup's folder.")
        source.add_argument(
            "--prepare-only",
            action="store_true",
            help="The database and media were restored by other means (pg_restore, point-in-"
            "time recovery, a bucket's versions): only make them safe to run again.",
        )
        source.add_argument(
            "--check-files",
            action="store_true",
            help="Only look for finished videos whose files are missing and fetch them again "
            "(re-runnable).",
        )
        parser.add_argument(
            "--no-media",
            action="store_true",
            help="Restore the database only (the media store was restored by other means).",
        )
        parser.add_argument(
            "--stopped-before-dump",
            action="store_true",
            help="The dump was taken with every worker stopped, so nothing queued in it can have "
            "been sent afterwards: queued generations are sent without checking the provider.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["check_files"]:
            self._check_files()
            return
        if options["source"] is not None:
            self._restore(options["source"], media=not options["no_media"])
        with transaction.atomic():
            moved = generations_prepare_after_restore(
                queued_may_have_been_sent=not options["stopped_before_dump"]
            )
        self.stdout.write(
            f"{moved} generations queued at the dump will be checked against the provider's "
            "list before they are sent."
        )
        self._forget_redis_mark()
        self._check_files()
        self.stdout.write("Done: start Reelhouse's processes (the scheduler resumes the rest).")

    def _restore(self, folder: Path, *, media: bool) -> None:
        try:
            manifest = manifest_read(folder)
            if media and manifest["media"] is None:
                raise BackupError(
                    f"{folder} holds no media (made with --no-media): restore the media store by "
                    "its own means and pass --no-media."
                )
            if media and not media_is_empty():
                raise BackupError(
                    "The media store is not empty. Restore into an empty one, or pass "
                    "--no-media when it was restored by other means."
                )
            database_restore(folder, manifest)
            self.stdout.write(f"Database restored from {folder}.")
            if media:
                count = media_copy_in(folder / "media")
                self.stdout.write(f"{count.files} media files restored ({count.bytes} bytes).")
        except BackupError as error:
            raise CommandError(str(error)) from None
        # A backup from an older version is brought up to this code's schema.
        call_command("migrate", interactive=False, verbosity=0)

    def _forget_redis_mark(self) -> None:
        # Without its mark the scheduler takes Redis for empty and re-enqueues the next step of
        # everything in flight at once, instead of when it looks stale minutes later.
        try:
            get_redis().delete(REDIS_MARK_KEY)
        except redis.RedisError as error:
            self.stderr.write(
                f"Redis is not reachable ({error}); when it starts empty the scheduler "
                "resumes everything in flight by itself."
            )

    def _check_files(self) -> None:
        try:
            with transaction.atomic():
                missing = generations_files_check()
        except redis.RedisError as error:
            raise CommandError(
                f"Redis is not reachable ({error}), so lost files cannot be fetched again yet; "
                "run `manage restore --check-files` once it is."
            ) from None
        self.stdout.write(
            f"{len(missing)} finished videos miss files; each is fetched again from the provider "
            "or marked lost once a worker runs."
        )
