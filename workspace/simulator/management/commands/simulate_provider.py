"""``python manage.py simulate_provider``: run the provider simulator in the foreground."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workspace.providers.registry import PROVIDERS
from workspace.simulator.cli import StartError, add_arguments, run


class Command(BaseCommand):
    help = (
        "Run the provider simulator ("
        + ", ".join(f"{spec.label} under {spec.simulator_path}" for spec in PROVIDERS.values())
        + ") until Ctrl-C. Switches can be changed at runtime with POST /_sim/config."
    )
    # The simulator needs no database or app checks; starting fast matters in scripts.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run(options, write=self.stdout.write)
        except StartError as exc:
            raise CommandError(str(exc)) from None
