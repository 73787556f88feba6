"""``manage.py up``: the whole app on one machine, for a fresh checkout or a small team.

Starts, and supervises until Ctrl-C: the embedded Redis (unless ``REDIS_URL`` is set), the
provider simulator (while a channel has no key), RQ workers with RQ's scheduler, the Reelhouse
scheduler (recovery sweeps) and the web server. Migrates first and creates a first admin.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workspace.core import embedded_redis
from workspace.providers.models import Channel
from workspace.providers.services import channel_get_default


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env={**os.environ, **self.env})
        self.started_at = time.monotonic()


class Command(BaseCommand):
    help = "Run the whole of Reelhouse: web, workers, scheduler, embedded Redis and simulator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address the web server binds.")
        parser.add_argument("--port", type=int, default=8000, help="Port of the web server.")
        parser.add_argument(
            "--workers",
            type=int,
            default=2,
            help="RQ workers for status checks and downloads (plus one per dispatch lane).",
        )
        parser.add_argument(
            "--no-simulator", action="store_true", help="Do not start the provider simulator."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1.")
        started_redis = None
        if settings.USES_EMBEDDED_REDIS:
            started_redis = embedded_redis.start(settings.EMBEDDED_REDIS_SOCKET)
            self.stdout.write(f"Embedded Redis on {settings.EMBEDDED_REDIS_SOCKET}")
        call_command("migrate", interactive=False, verbosity=0)
        channel = channel_get_default()
        sign_in = self._ensure_admin()

        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        children: list[Child] = []
        simulated = any(c.is_simulated for c in Channel.objects.filter(is_active=True))
        if simulated and not options["no_simulator"]:
            sim = urlparse(str(settings.SIMULATOR_URL))
            children.append(
                Child(
                    "simulator",
                    [
                        python,
                        manage,
                        "simulate_provider",
                        "--host",
                        sim.hostname or "127.0.0.1",
                        "--port",
                        str(sim.port or 80),
                    ],
                )
            )
        for index in range(options["workers"]):
            children.append(
                Child(
                    f"worker-{index + 1}",
                    [
                        python,
                        manage,
                        "rqworker",
                        "default",
                        "--with-scheduler",
                        "--worker-ttl",
                        "60",
                        "--name",
                        f"reelhouse-{os.getpid()}-{index + 1}",
                    ],
                )
            )
        # One worker per dispatch lane: lanes pace creates and must not wait behind polls.
        for index in range(settings.REELHOUSE_DISPATCH_LANES):
            children.append(
                Child(
                    f"dispatcher-{index + 1}",
                    [
                        python,
                        manage,
                        "rqworker",
                        "dispatch",
                        "--with-scheduler",
                        "--worker-ttl",
                        "60",
                        "--name",
                        f"reelhouse-{os.getpid()}-d{index + 1}",
                    ],
                )
            )
        children.append(Child("scheduler", [python, manage, "reelhouse_scheduler"]))
        children.append(
            Child(
                "web",
                [
                    python,
                    "-m",
                    "gunicorn",
                    "workspace.wsgi:application",
                    "--bind",
                    f"{options['host']}:{options['port']}",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "--timeout",
                    "120",
                    "--access-logfile",
                    "-",
                    "--log-level",
                    "warning",
                ],
            )
        )
        for child in children:
            child.start()

        url = f"http://{options['host']}:{options['port']}/"
        provider = (
            f"the provider simulator at {settings.SIMULATOR_URL}"
            if channel.is_simulated
            else f"{channel.name} at {channel.connection().base_url}"
        )
        self.stdout.write(self.style.SUCCESS(f"\nReelhouse is running at {url}"))
        self.stdout.write(f"  {sign_in}")
        self.stdout.write(f"  Admin: {url}admin/   Videos are generated by {provider}.")
        self.stdout.write("  Press Ctrl-C to stop.\n")
        try:
            self._supervise(children)
        finally:
            self._stop(children)
            if started_redis is not None:
                started_redis.terminate()
                started_redis.wait(timeout=10)

    def _ensure_admin(self) -> str:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            return (
                "Sign in with your admin account "
                "(python3 reelhouse.py manage changepassword NAME resets its password)."
            )
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or secrets.token_urlsafe(12)
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        users.objects.create_superuser(username=username, email=email, password=password)
        secret_file = settings.VAR_DIR / "first-admin-password.txt"
        # Created private, so the password is never readable by others even for a moment.
        descriptor = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(f"{username}\n{password}\n")
        secret_file.chmod(0o600)
        return (
            f"Sign in as {username!r} with password {password!r} "
            f"(also saved in {secret_file}; change it in the admin)."
        )

    def _supervise(self, children: list[Child]) -> None:
        stopping = False

        def request_stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        while not stopping:
            for child in children:
                assert child.process is not None
                code = child.process.poll()
                if code is None:
                    continue
                if child.restarts >= 5 and time.monotonic() - child.started_at < 60:
                    raise CommandError(f"{child.name} keeps exiting (last code {code}); stopping.")
                self.stderr.write(f"{child.name} exited with code {code}; restarting it.")
                if time.monotonic() - child.started_at > 60:
                    child.restarts = 0
                child.restarts += 1
                child.start()
            time.sleep(0.5)

    def _stop(self, children: list[Child]) -> None:
        for child in children:
            if child.process and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
