from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workspace.projects.services import project_create


class Command(BaseCommand):
    help = "Create a project owned by an existing user; prints the project's id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, help="Username of the first owner.")
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = get_user_model().objects.filter(username=options["owner"]).first()
        if owner is None:
            raise CommandError(f"There is no user called {options['owner']!r}.")
        try:
            project = project_create(
                name=options["name"], description=options["description"], owner=owner
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(str(project.pk))
