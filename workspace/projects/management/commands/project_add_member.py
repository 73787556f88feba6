from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workspace.projects.models import Project, Role
from workspace.projects.services import membership_add


class Command(BaseCommand):
    help = "Add an existing user to a project with a role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project id or exact name.")
        parser.add_argument("--user", required=True, help="Username.")
        parser.add_argument("--role", choices=Role.values, default=Role.EDITOR)

    def handle(self, *args: Any, **options: Any) -> None:
        project = find_project(options["project"])
        try:
            membership = membership_add(
                project=project, username=options["user"], role=options["role"], actor=None
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(
            f"{membership.user.get_username()} is now {membership.role} of {project}."
        )


def find_project(reference: str) -> Project:
    matches = list(
        Project.objects.filter(pk=int(reference))
        if reference.isdigit()
        else Project.objects.filter(name=reference)
    )
    if not matches:
        raise CommandError(f"There is no project {reference!r}.")
    if len(matches) > 1:
        raise CommandError(f"Several projects are called {reference!r}; use the id instead.")
    return matches[0]
