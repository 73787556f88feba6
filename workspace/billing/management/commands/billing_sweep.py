"""Close reservations left open by a crashed worker; optionally rebuild caches from the ledger."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from workspace.billing.services import (
    counters_recount,
    reservations_close_orphans,
    usage_rollups_rebuild,
)


class Command(BaseCommand):
    help = (
        "Settle or release reservations whose generation already ended (run it every few "
        "minutes next to the scheduler); --recount and --rebuild-rollups repair the caches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30, help="How far back to look.")
        parser.add_argument("--recount", action="store_true", help="Recount budget counters.")
        parser.add_argument(
            "--rebuild-rollups", action="store_true", help="Recompute the daily usage rollups."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        closed = reservations_close_orphans(within=timedelta(days=options["days"]))
        self.stdout.write(f"Closed {closed} open reservation(s) of finished generations.")
        if options["recount"]:
            self.stdout.write(f"Corrected {counters_recount()} budget counter(s).")
        if options["rebuild_rollups"]:
            self.stdout.write(f"Wrote {usage_rollups_rebuild()} daily usage row(s).")
