"""Record the stored size of files stored before sizes were recorded (run once after upgrading;
safe to re-run): the usage panel's storage figures read those sizes."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.template.defaultfilters import filesizeformat

from workspace.generations.storage_use import storage_measure


class Command(BaseCommand):
    help = "Fill in the byte size of stored video files from storage for rows that lack it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--recount",
            action="store_true",
            help="Measure every row with files again, not only the rows never measured.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rows, size = storage_measure(recount=options["recount"])
        self.stdout.write(f"Measured {rows} video(s): {size} bytes ({filesizeformat(size)}).")
