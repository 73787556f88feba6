"""Submit a generation on a member's behalf, through the same service as the web form."""

from __future__ import annotations

import argparse
import time
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workspace.generations.images import (
    MAX_IMAGE_BYTES,
    ImageRefused,
    PreparedImage,
    frame_extract,
    image_check,
    image_fit,
)
from workspace.generations.models import Fit, Generation, InputRole, Operation, Status
from workspace.generations.submission import generation_submit
from workspace.projects.management.commands.project_add_member import find_project
from workspace.projects.models import Membership, Project
from workspace.providers.errors import MEMBER_MESSAGES, ErrorClass
from workspace.providers.services import channel_get_default

FIT_CHOICES = ("crop", "pad", "blur")


class Command(BaseCommand):
    help = (
        "Queue a generation as a member (text, image or frame to video; or an edit, remix or "
        "extension of a finished video); --wait follows it to the end."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="Username of the member.")
        parser.add_argument(
            "--project",
            default=None,
            help="Project id or exact name (required, except with --edit/--remix/--extend: "
            "the video's own project).",
        )
        parser.add_argument("--prompt", required=True)
        parser.add_argument("--model", default=None, help="Default: the channel's first model.")
        parser.add_argument("--size", default=None, help="Default: the model's default size.")
        parser.add_argument(
            "--seconds",
            type=int,
            default=None,
            help="Length; with --extend, the seconds the extension adds.",
        )
        first = parser.add_mutually_exclusive_group()
        first.add_argument("--image", type=Path, help="A PNG, JPEG or WebP the video starts from.")
        first.add_argument(
            "--frame-of", metavar="ID", help="Start from a frame of this video of the project."
        )
        parser.add_argument(
            "--at", metavar="SECONDS", help="With --frame-of: the time of the frame, e.g. 3.2."
        )
        parser.add_argument(
            "--fit",
            choices=FIT_CHOICES,
            default="crop",
            help="How an image of another shape is fitted: crop (fill, centred), pad (black "
            "bars) or blur (pad with blurred bars). Default: crop.",
        )
        parser.add_argument("--last-frame", type=Path, help="An image the video ends on.")
        parser.add_argument(
            "--reference",
            type=Path,
            action="append",
            default=[],
            help="A reference image (repeat for several).",
        )
        parser.add_argument(
            "--audio",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="Sound on or off, where the model lets it be switched.",
        )
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--negative-prompt", default=None)
        parser.add_argument("--takes", type=int, default=1, help="Versions of one request.")
        change = parser.add_mutually_exclusive_group()
        change.add_argument("--edit", metavar="ID", help="Edit this finished video.")
        change.add_argument("--remix", metavar="ID", help="Remix this finished video.")
        change.add_argument(
            "--extend", metavar="ID", help="Extend this finished video by --seconds."
        )
        parser.add_argument("--wait", action="store_true", help="Print progress until it ends.")
        parser.add_argument("--timeout", type=float, default=1800, help="Seconds --wait waits.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"There is no user called {options['user']!r}.")
        operation, parent = self._change(options, user)
        if parent is not None:
            project = parent.project
            if options["project"] and find_project(options["project"]).pk != project.pk:
                raise CommandError(f"Video {parent.pk} is not in project {options['project']!r}.")
        elif options["project"]:
            project = find_project(options["project"])
        else:
            raise CommandError("Name the project with --project.")
        channel = parent.channel if parent is not None else channel_get_default()
        spec = (
            channel.catalog.get(options["model"]) if options["model"] else channel.catalog.default
        )
        model = options["model"] or channel.catalog.default.id
        size = options["size"] or (spec.default_size if spec else "")
        if parent is not None:
            model, size = parent.model, parent.size
        seconds = options["seconds"] or (spec.default_seconds if spec else 0)
        if parent is not None and operation != Operation.EXTEND:
            seconds = parent.total_seconds
        images = self._images(options, user=user, project=project, size=size)
        try:
            generation = generation_submit(
                project=project,
                user=user,
                channel=channel,
                model=model,
                prompt=options["prompt"],
                size=size,
                seconds=seconds,
                operation=operation,
                parent=parent,
                images=images,
                options=self._options(options),
                takes=options["takes"],
            )
        except ValidationError as error:
            lines = [f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items()]
            raise CommandError("; ".join(lines)) from None
        except PermissionDenied as error:
            raise CommandError(str(error)) from None
        except Generation.DoesNotExist:
            raise CommandError("There is no such video among your projects.") from None
        takes = options["takes"]
        self.stdout.write(
            f"Queued generation {generation.pk}"
            + (f" and {takes - 1} more takes of it" if takes > 1 else "")
        )
        if options["wait"]:
            self._follow(generation, timeout=options["timeout"])

    def _change(self, options: dict[str, Any], user: Any) -> tuple[str, Generation | None]:
        for operation in (Operation.EDIT, Operation.REMIX, Operation.EXTEND):
            if options[str(operation)]:
                return operation, _visible_video(options[str(operation)], user=user)
        return Operation.GENERATE, None

    def _images(
        self, options: dict[str, Any], *, user: Any, project: Project, size: str
    ) -> list[PreparedImage]:
        choice = options["fit"]
        fit = Fit.CROP if choice == "crop" else Fit.PAD
        bars = "blur" if choice == "blur" else "black"
        wanted: list[tuple[str, str, int, Any, dict[str, Any]]] = []
        if options["image"]:
            wanted.append(("--image", InputRole.FIRST_FRAME, 0, options["image"], {}))
        if options["frame_of"]:
            source = _visible_video(options["frame_of"], user=user, project=project)
            at_ms = _milliseconds(options["at"])
            try:
                frame = frame_extract(source, at_ms=at_ms)
            except ImageRefused as refusal:
                raise CommandError(f"--frame-of: {refusal}") from None
            where: dict[str, Any] = {
                "source_generation_id": str(source.pk),
                "source_time_ms": at_ms,
            }
            wanted.append(("--frame-of", InputRole.FIRST_FRAME, 0, frame, where))
        elif options["at"] is not None:
            raise CommandError("--at goes with --frame-of.")
        if options["last_frame"]:
            wanted.append(("--last-frame", InputRole.LAST_FRAME, 0, options["last_frame"], {}))
        for position, path in enumerate(options["reference"]):
            wanted.append(("--reference", InputRole.REFERENCE, position, path, {}))
        prepared = []
        for flag, role, position, given, where in wanted:
            checked = _read_image(flag, given) if isinstance(given, Path) else given
            try:
                prepared.append(
                    image_fit(
                        checked, role=role, size=size, fit=fit, bars=bars, position=position,
                        **where,
                    )
                )
            except ImageRefused as refusal:
                raise CommandError(f"{flag}: {refusal}") from None
        return prepared

    @staticmethod
    def _options(options: dict[str, Any]) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        if options["audio"] is not None:
            chosen["audio"] = options["audio"]
        if options["seed"] is not None:
            chosen["seed"] = options["seed"]
        if options["negative_prompt"]:
            chosen["negative_prompt"] = options["negative_prompt"]
        return chosen

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


def _visible_video(value: str, *, user: Any, project: Project | None = None) -> Generation:
    """A video the member can see (in ``project`` when given); any other is "no such video"."""
    try:
        generation_id = uuid.UUID(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a video id.") from None
    video = Generation.objects.select_related("project", "channel").filter(pk=generation_id)
    if project is not None:
        video = video.filter(project=project)
    found = video.first()
    if found is None or not Membership.objects.filter(
        project_id=found.project_id, user_id=user.pk
    ).exists():
        where = f" in project {project.name!r}" if project is not None else " among your projects"
        raise CommandError(f"There is no video {value}{where}.")
    return found


def _milliseconds(value: str | None) -> int:
    if value is None:
        raise CommandError("--frame-of needs --at SECONDS: the time of the frame.")
    try:
        seconds = Decimal(value)
    except InvalidOperation:
        raise CommandError(f"--at {value!r} is not a number of seconds.") from None
    if not seconds.is_finite() or seconds < 0:
        raise CommandError(f"--at {value!r}: a time is 0 seconds or more.")
    return round(seconds * 1000)


def _read_image(flag: str, path: Path) -> Any:
    try:
        size = path.stat().st_size
    except OSError as error:
        raise CommandError(f"{flag} {path}: {error.strerror or error}.") from None
    if size > MAX_IMAGE_BYTES:
        raise CommandError(
            f"{flag} {path}: {size / (1024 * 1024):.1f} MB; the limit is "
            f"{MAX_IMAGE_BYTES // (1024 * 1024)} MB."
        )
    try:
        return image_check(path.read_bytes(), name=path.name)
    except ImageRefused as refusal:
        raise CommandError(f"{flag} {path}: {refusal}") from None
    except OSError as error:
        raise CommandError(f"{flag} {path}: {error.strerror or error}.") from None
