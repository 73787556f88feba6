"""Submit a generation on a member's behalf, through the same service as the web form."""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workspace.generations.models import Generation, Status
from workspace.generations.submission import generation_submit
from workspace.projects.management.commands.project_add_member import find_project
from workspace.providers.errors import MEMBER_MESSAGES, ErrorClass
from workspace.providers.services import channel_get_default


class Command(BaseCommand):
    help = "Queue a generation as a member; --wait follows it to the end."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="Username of the member.")
        parser.add_argument("--project", required=True, help="Project id or exact name.")
        parser.add_argument("--prompt", required=True)
        parser.add_argument("--model", default=None, help="Default: the channel's first model.")
        parser.add_argument("--size", default=None, help="Default: the model's default size.")
        parser.add_argument("--seconds", type=int, default=None)
        parser.add_argument("--wait", action="store_true", help="Print progress until it ends.")
        parser.add_argument("--timeout", type=float, default=1800, help="Seconds --wait waits.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"There is no user called {options['user']!r}.")
        project = find_project(options["project"])
        channel = channel_get_default()
        spec = (
            channel.catalog.get(options["model"]) if options["model"] else channel.catalog.default
        )
        model = options["model"] or channel.catalog.default.id
        size = options["size"] or (spec.default_size if spec else "")
        seconds = options["seconds"] or (spec.default_seconds if spec else 0)
        try:
            generation = generation_submit(
                project=project,
                user=user,
                channel=channel,
                model=model,
                prompt=options["prompt"],
                size=size,
                seconds=seconds,
            )
        except ValidationError as error:
            lines = [f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items()]
            raise CommandError("; ".join(lines)) from None
        except PermissionDenied as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Queued generation {generation.pk}")
        if options["wait"]:
            self._follow(generation, timeout=options["timeout"])

    def _follow(self, generation: Generation, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            generation.refresh_from_db()
            state = (generation.status, generation.progress)
            if state != last:
                self.stdout.write(
                    f"  {generation.get_status_display():<11} {generation.progress:>3}%"
                )
                last = state
            if generation.is_terminal:
                break
            time.sleep(1)
        else:
            raise CommandError(
                f"Still {generation.status} after {timeout:.0f}s; it goes on in the background."
            )
        if generation.status == Status.COMPLETED:
            self.stdout.write(self.style.SUCCESS(f"Completed: {generation.video.name}"))
        elif generation.status == Status.FAILED:
            reason = (
                MEMBER_MESSAGES.get(ErrorClass(generation.error_class), "It failed.")
                if generation.error_class in ErrorClass._value2member_map_
                else "It failed."
            )
            raise CommandError(f"Failed: {reason} Provider said: {generation.error_message}")
        else:
            self.stdout.write(f"Ended as {generation.status}.")
