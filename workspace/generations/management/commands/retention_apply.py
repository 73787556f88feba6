"""Apply the retention policies now: remove the files they no longer keep, or with --dry-run
list what would go and the bytes it would free, changing nothing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.template.defaultfilters import filesizeformat

from workspace.generations.retention import retention_apply


class Command(BaseCommand):
    help = (
        "Remove the stored files of finished videos each project's retention policy (or the "
        "organisation's default) no longer keeps; the rows stay, marked 'files removed'."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List what would be removed and the bytes freed; change nothing.",
        )
        parser.add_argument(
            "--project", type=int, action="append", help="Only this project id (repeatable)."
        )
        parser.add_argument(
            "--quiet-list", action="store_true", help="Print the totals only, not every video."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = retention_apply(dry_run=options["dry_run"], project_ids=options["project"])
        verb = "would remove" if report.dry_run else "removed"
        for project in report.projects:
            self.stdout.write(
                f"project {project.project_id} “{project.project_name}” ({project.policy}): "
                f"{verb} {project.count} video(s), {project.bytes} bytes "
                f"({filesizeformat(project.bytes)})"
            )
            if options["quiet_list"]:
                continue
            for video in project.videos:
                finished = video.completed_at.isoformat() if video.completed_at else "-"
                self.stdout.write(
                    f"  {video.generation_id}  finished {finished}  {video.bytes} bytes  "
                    f"{video.reason}"
                )
        self.stdout.write(
            f"{'Dry run: ' if report.dry_run else ''}{verb} the files of {report.count} "
            f"video(s) in {len(report.projects)} project(s), {report.bytes} bytes "
            f"({filesizeformat(report.bytes)})."
        )
