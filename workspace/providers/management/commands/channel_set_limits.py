"""Set a channel's limits from the command line, for scripted deployments."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workspace.providers.models import Channel
from workspace.providers.services import channel_get_default

FIELDS = {
    "rpm": "requests_per_minute",
    "creates_per_minute": "creates_per_minute",
    "max_in_flight": "max_in_flight",
    "member_max_in_flight": "member_max_in_flight",
    "member_max_queued": "member_max_queued",
}


class Command(BaseCommand):
    help = "Show or change a channel's limits (all workers pick them up within seconds)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--channel", help="Channel slug (default: the default channel).")
        parser.add_argument("--rpm", type=int, help="Requests per minute, every call counted.")
        parser.add_argument(
            "--creates-per-minute",
            type=int,
            help="Separate limit for creates (0 clears it: creates share --rpm).",
        )
        parser.add_argument("--max-in-flight", type=int)
        parser.add_argument("--member-max-in-flight", type=int)
        parser.add_argument("--member-max-queued", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["channel"]:
            channel = Channel.objects.filter(slug=options["channel"]).first()
            if channel is None:
                slugs = ", ".join(Channel.objects.values_list("slug", flat=True)) or "none yet"
                raise CommandError(f"No channel {options['channel']!r} (channels: {slugs}).")
        else:
            channel = channel_get_default()
        changed = []
        for option, field in FIELDS.items():
            value = options[option]
            if value is None:
                continue
            if value < 0 or (value == 0 and option != "creates_per_minute"):
                raise CommandError(f"--{option.replace('_', '-')} must be a positive number.")
            setattr(channel, field, value or None)
            changed.append(field)
        if changed:
            channel.save(update_fields=changed)  # save() so the audit log records the change
        for field in FIELDS.values():
            self.stdout.write(
                f"{field}: {getattr(channel, field) or 'shared with requests_per_minute'}"
            )
