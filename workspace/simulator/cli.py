"""Argument parsing shared by ``manage.py simulate_provider`` and ``python -m workspace.simulator``.

Kept free of Django so the bare-process entry point starts without settings.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from workspace.providers.registry import PROVIDERS
from workspace.simulator.core import SimulatorConfig, config_snapshot
from workspace.simulator.server import SimulatorServer

DEFAULT_HOST: Final = "127.0.0.1"
# Matches the default REELHOUSE_SIMULATOR_URL in workspace/settings.py.
DEFAULT_PORT: Final = 8765

# (flag, config field, type, help)
_VALUE_FLAGS: Final[tuple[tuple[str, str, type, str], ...]] = (
    ("--render-seconds", "render_seconds", float,
     "simulated seconds from create to done (default 6)"),
    ("--time-scale", "time_scale", float,
     "simulated seconds per real second; also scales the RPM window and TTL (default 1)"),
    ("--latency-ms", "latency_ms", int, "real milliseconds added to every API request"),
    ("--rpm", "rpm_limit", int, "requests per simulated minute (see --rpm-scope)"),
    ("--rpm-scope", "rpm_scope", str, "'all' API calls count against --rpm, or only 'create'"),
    ("--fail-5xx-rate", "fail_5xx_rate", float, "fraction answered 500/503 before any work"),
    ("--fail-5xx-after-create-rate", "fail_5xx_after_create_rate", float,
     "fraction of creates that create (and bill) a job but answer 500"),
    ("--reset-rate", "reset_rate", float, "fraction whose connection is dropped unanswered"),
    ("--reset-after-create-rate", "reset_after_create_rate", float,
     "fraction of creates that create a job, then drop the connection"),
    ("--slow-rate", "slow_rate", float, "fraction answered only after --slow-seconds"),
    ("--slow-seconds", "slow_seconds", float, "real seconds a slow answer is held (default 30)"),
    ("--processing-error-rate", "processing_error_rate", float,
     "fraction of jobs that end failed with processing_error"),
    ("--moderation-rate", "moderation_rate", float,
     "fraction of jobs that end failed with moderation_blocked"),
    ("--content-ttl-seconds", "content_ttl_seconds", float,
     "simulated seconds after completion until downloads expire (default 3600)"),
    ("--seed", "seed", int, "seed for the *-rate switches (deterministic runs)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"bind address (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port, 0 for any free one (default {DEFAULT_PORT})")
    for flag, dest, kind, text in _VALUE_FLAGS:
        parser.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    parser.add_argument("--insufficient-quota", dest="insufficient_quota", action="store_true",
                        default=None, help="answer every create 429 insufficient_quota")
    parser.add_argument("--api-key", dest="api_keys", action="append", default=None,
                        help="accept only this bearer token (repeatable); default: any token")
    parser.add_argument("--no-reference-size-check", dest="reference_size_check",
                        action="store_false", default=None,
                        help="accept input_reference images of any dimensions")
    parser.add_argument("--tls-port", type=int, default=None,
                        help="HTTPS port for the same APIs, 0 for any free one, -1 for none "
                             "(default: the port after --port, any free one with --port 0)")
    parser.add_argument("--tls-dir", default=None,
                        help="directory the generated certificate authority (ca.pem) is written "
                             "to; default: a fresh temporary directory")
    parser.add_argument("--media-cache-dir", default=None,
                        help="directory that keeps rendered media between runs")
    parser.add_argument("--prewarm", action="store_true",
                        help="render every size/duration/variant before serving")


def config_from_options(options: Mapping[str, Any]) -> SimulatorConfig:
    """A config from parsed options; flags left out keep the config's defaults."""
    names = [dest for _, dest, _, _ in _VALUE_FLAGS]
    names += ["insufficient_quota", "api_keys", "reference_size_check"]
    return SimulatorConfig(**{name: options[name] for name in names
                              if options.get(name) is not None})


class StartError(Exception):
    """Bad options or an unusable address; the message is meant for the person starting it."""


def run(options: Mapping[str, Any], write: Callable[[str], object] = print) -> None:
    """Serve until Ctrl-C or SIGTERM; raises StartError if the simulator cannot start."""
    try:
        config = config_from_options(options)
    except ValueError as exc:
        raise StartError(f"invalid option: {exc}") from None
    host = options.get("host") or DEFAULT_HOST
    port = options.get("port")
    port = DEFAULT_PORT if port is None else int(port)
    try:
        tls_port = options.get("tls_port")
        if tls_port is None:
            tls_port = port + 1 if port else 0
        server = SimulatorServer(host, port, config,
                                 media_cache_dir=options.get("media_cache_dir"),
                                 tls_port=None if tls_port is not None and tls_port < 0
                                 else tls_port,
                                 tls_dir=options.get("tls_dir"))
    except OSError as exc:
        raise StartError(f"cannot listen on {host}:{port}: {exc}") from None
    if options.get("prewarm"):
        write("Rendering media ...")
        server.prewarm()
    url = server.url
    changed = {key: value for key, value in config_snapshot(config).items()
               if value != config_snapshot(SimulatorConfig())[key]}
    keys = "any non-empty key" if config.api_keys is None else "only --api-key keys"
    # One line per registered provider: where its simulated API is, as its base URL variable.
    apis = "".join(f"  {spec.label + ':':<30}{url}{spec.simulator_path}   "
                   f"(set {spec.base_url_env} to this)\n" for spec in PROVIDERS.values())
    write(
        f"Reelhouse provider simulator listening on {url} (accepts {keys})\n"
        f"{apis}"
        f"  {'Output files:':<30}{url}/cdn/...   (signed links, no key)\n"
        + (f"  {'HTTPS (same APIs):':<30}{server.tls_url}   (trust {server.ca_file})\n"
           if server.tls_url else "")
        + f"  switches set:     {json.dumps(changed) if changed else 'defaults'}\n"
        f"  state/counters:   curl {url}/_sim/state\n"
        f"  change switches:  curl -X POST {url}/_sim/config "
        "-H 'Content-Type: application/json' -d '{\"fail_5xx_rate\": 0.1, \"rpm_limit\": 30}'\n"
        f"  forget all jobs:  curl -X POST {url}/_sim/reset\n"
        f"  create log:       curl {url}/_sim/creates\n"
        "Press Ctrl-C to stop."
    )
    # Scripts read the URL from a pipe; don't leave it sitting in a buffer.
    sys.stdout.flush()
    if threading.current_thread() is threading.main_thread():
        # Let `kill` stop it as cleanly as Ctrl-C does.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        write("Stopping.")
    finally:
        server.stop()


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workspace.simulator",
        description="Run the Reelhouse provider simulator: " + ", ".join(
            f"{spec.label} under {spec.simulator_path}" for spec in PROVIDERS.values()) + ".",
    )
    add_arguments(parser)
    try:
        run(vars(parser.parse_args(argv)))
    except StartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
