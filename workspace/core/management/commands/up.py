"""``manage.py up``: the whole app on one machine, for a fresh checkout or a small team.

Provisions (the embedded Redis unless ``REDIS_URL`` is set, migrations, a first admin), then
runs the processes the top-level ``Procfile`` declares and keeps them running until Ctrl-C or
SIGTERM (see ``workspace/core/supervisor.py``): a process that dies is started again with
backoff, and one that keeps failing never stops the others. The simulator line runs only while
a channel has no provider key.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from workspace.core import embedded_redis
from workspace.core.procfile import ProcfileError, procfile_read, procfile_specs
from workspace.core.supervisor import ProcessSpec, Supervisor
from workspace.providers.models import Channel
from workspace.providers.services import channel_get_default


class Command(BaseCommand):
    help = "Run the whole of Reelhouse: web, workers, scheduler, embedded Redis and simulator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address the web server binds.")
        parser.add_argument("--port", type=int, default=8000, help="Port of the web server.")
        parser.add_argument(
            "--workers",
            type=int,
            default=2,
            help=(
                "RQ workers for the default queue: status checks and downloads "
                "(plus one dispatch worker per lane, REELHOUSE_DISPATCH_LANES)."
            ),
        )
        parser.add_argument(
            "--no-simulator", action="store_true", help="Do not start the provider simulator."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1.")
        procfile = settings.BASE_DIR / "Procfile"
        try:
            processes = procfile_read(procfile)
        except (OSError, ProcfileError) as error:
            raise CommandError(f"Cannot read {procfile}: {error}") from None
        started_redis = None
        if settings.USES_EMBEDDED_REDIS:
            started_redis = embedded_redis.start(settings.EMBEDDED_REDIS_SOCKET)
            self.stdout.write(f"Embedded Redis on {settings.EMBEDDED_REDIS_SOCKET}")
        call_command("migrate", interactive=False, verbosity=0)
        channel = channel_get_default()
        sign_in = self._ensure_admin()

        simulated = any(c.is_simulated for c in Channel.objects.filter(is_active=True))
        if not simulated or options["no_simulator"]:
            processes.pop("simulator", None)
        sim = urlparse(str(settings.SIMULATOR_URL))
        tls = urlparse(settings.SIMULATOR_TLS_URL) if settings.SIMULATOR_TLS_URL else None
        variables = {
            **os.environ,
            "HOST": options["host"],
            "PORT": str(options["port"]),
            "SIMULATOR_HOST": sim.hostname or "127.0.0.1",
            "SIMULATOR_PORT": str(sim.port or 80),
            # The HTTPS port writes its authority where the app trusts it (settings).
            "SIMULATOR_TLS_PORT": str(tls.port or 443) if tls else "-1",
            "SIMULATOR_TLS_DIR": str(settings.SIMULATOR_TLS_DIR),
        }
        try:
            specs = procfile_specs(
                processes,
                counts={
                    name: count
                    for name, count in (
                        ("worker", options["workers"]),
                        ("dispatch", settings.REELHOUSE_DISPATCH_LANES),
                    )
                    if name in processes
                },
                variables=variables,
                python=sys.executable,
            )
        except ProcfileError as error:
            raise CommandError(str(error)) from None
        if started_redis is not None:
            # Supervised like the rest: a Redis that dies comes back (empty; the scheduler
            # notices and resumes the work in flight from the database).
            specs.insert(
                0,
                ProcessSpec(
                    "redis",
                    embedded_redis.server_argv(settings.EMBEDDED_REDIS_SOCKET),
                    stops_last=True,
                ),
            )
        supervisor = Supervisor(specs, cwd=settings.BASE_DIR)
        if started_redis is not None:
            if started_redis.stderr is not None:
                started_redis.stderr.close()  # read only at start; Redis ignores SIGPIPE
            supervisor.adopt("redis", started_redis)

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        url = f"http://{options['host']}:{options['port']}/"
        provider = (
            f"the provider simulator at {settings.SIMULATOR_URL}"
            if channel.is_simulated
            else f"{channel.name} at {channel.connection().base_url}"
        )
        names = ", ".join(spec.name for spec in specs)
        self.stdout.write(self.style.SUCCESS(f"\nReelhouse is running at {url}"))
        self.stdout.write(f"  {sign_in}")
        self.stdout.write(f"  Admin: {url}admin/   Videos are generated by {provider}.")
        self.stdout.write(f"  Processes (from {procfile.name}): {names}")
        self.stdout.write("  Press Ctrl-C to stop.\n")
        self.stdout.flush()
        connections.close_all()  # provisioning is done; supervising needs no database
        supervisor.run(stop)

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
