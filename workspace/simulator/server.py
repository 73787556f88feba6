"""The simulator's HTTP server: one real socket that speaks each simulated provider protocol.

``SimulatorServer`` is what tests, benchmarks and the ``simulate_provider`` command run. It must
not import Django so it can run inside a test thread or as a bare ``python -m`` process.

Which APIs it serves, and where, comes from the provider registry (workspace/providers/
registry.py): each provider's spec names its simulated API and the path it is mounted at.

Every API request goes through the same pipeline, whatever the protocol (see ``_api``):
count -> latency -> connection reset -> injected 5xx -> auth -> rate limit -> handler ->
after-create faults -> slow answer. The control endpoints under ``/_sim/`` skip all of it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import logging
import math
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final, cast
from urllib.parse import parse_qs, urlsplit

from workspace.providers.registry import PROVIDERS
from workspace.providers.spec import ProviderSpec, SpecError
from workspace.simulator.core import (
    RateVerdict,
    SimContext,
    SimRequest,
    SimResponse,
    SimulatedAPI,
    SimulatorConfig,
    config_snapshot,
    validate_config_changes,
)
from workspace.simulator.media import MediaCache, media_cache
from workspace.simulator.protocols.common import MediaHost
from workspace.simulator.protocols.openai_videos import SECONDS, SIZES, error_response
from workspace.simulator.tls import SimulatorTLS
from workspace.simulator.tls import generate as generate_tls

__all__ = ["SimulatorConfig", "SimulatorServer"]

logger = logging.getLogger("workspace.simulator")

MAX_BODY_BYTES: Final = 64 * 1024 * 1024
# Idle keep-alive connections are closed after this many real seconds.
IDLE_CONNECTION_TIMEOUT: Final = 120
_ALL_SECONDS: Final = tuple(int(value) for value in SECONDS)


# How the server builds every provider's simulated API: (context, media, the shared file host).
APIFactory = Callable[[SimContext, MediaCache, MediaHost], SimulatedAPI]


def simulated_api_class(spec: ProviderSpec) -> APIFactory:
    """The simulated API a provider's spec names; ``SpecError`` when it is missing or is
    mounted elsewhere than the spec says (channels would then reach the wrong routes)."""
    module_name, _, class_name = spec.simulator.partition(":")
    try:
        api_class = getattr(importlib.import_module(module_name), class_name, None)
    except ImportError as error:
        raise SpecError(f"provider {spec.kind!r}: cannot import {module_name}: {error}") from None
    if not (isinstance(api_class, type) and issubclass(api_class, SimulatedAPI)):
        raise SpecError(f"provider {spec.kind!r}: {spec.simulator} is not a SimulatedAPI.")
    prefix = getattr(api_class, "prefix", None)
    if prefix != spec.simulator_path:
        raise SpecError(f"provider {spec.kind!r}: {spec.simulator} serves {prefix!r}, but "
                        f"the spec mounts it at {spec.simulator_path!r}.")
    return cast("APIFactory", api_class)


@functools.cache
def _process_tls() -> SimulatorTLS:
    """One authority per process: every server of a test run is trusted through one CA file."""
    return generate_tls()


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Benchmarks open many connections at once; the default backlog of 5 refuses some.
    request_queue_size = 256

    scheme = "http"

    def __init__(self, address: tuple[str, int], sim: SimulatorServer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sim = sim
        super().__init__(address, _Handler)


class _HTTPSServer(_HTTPServer):
    """The same simulator over TLS; the handshake runs in the handler's thread, never in the
    accept loop, so one stalled client cannot hold up the others."""

    scheme = "https"

    def __init__(self, address: tuple[str, int], sim: SimulatorServer,
                 context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(address, sim)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        wrapped = self.context.wrap_socket(connection, server_side=True,
                                           do_handshake_on_connect=False)
        return wrapped, address


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ReelhouseSimulator/1.0"
    sys_version = ""
    timeout = IDLE_CONNECTION_TIMEOUT
    # Buffered, so headers and a small body leave in one segment (flushed per response).
    wbufsize = 64 * 1024
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()  # sets the idle timeout, which also bounds the TLS handshake
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (OSError, ssl.SSLError):
                # A client that does not trust the certificate hangs up here: nothing to serve.
                self.close_connection = True
                self.rfile = io.BytesIO()
        # Without this, Nagle plus the client's delayed ACK adds ~40 ms to every answer.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.sim._track(self.connection, add=True)

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            # The client went away mid-answer; nothing to report.
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sim._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        # Only the request line is logged, never headers: they carry the API key.
        logger.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            self._send(error_response(exc.status, exc.message))
            return
        split = urlsplit(self.path)
        request = SimRequest(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            scheme=self.server.scheme,
        )
        try:
            response = self.server.sim._respond(request)
        except Exception:
            logger.exception("simulator failed on %s %s", self.command, split.path)
            response = error_response(500, "The simulator failed on this request.",
                                      type_="server_error")
        if response is None:
            self._drop()
        else:
            self._send(response)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            return self._read_chunked()
        length_text = self.headers.get("content-length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            raise _BodyError(400, "Invalid Content-Length header.") from None
        if length < 0:
            raise _BodyError(400, "Invalid Content-Length header.")
        if length > MAX_BODY_BYTES:
            raise _BodyError(413, f"Request body too large (maximum {MAX_BODY_BYTES} bytes).")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BodyError(400, "Invalid chunked request body.") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers carry nothing the simulator uses
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyError(413, f"Request body too large (maximum {MAX_BODY_BYTES} bytes).")
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, response: SimResponse) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(response.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (typically a read timeout on a slow answer).
            self.close_connection = True

    def _drop(self) -> None:
        # The body was read in full first, so the peer sees a clean close with no response
        # ("Server disconnected without sending a response") rather than a write error.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class SimulatorServer:
    """A simulated video provider on a real local port.

    ``config`` is live: change it with ``update_config`` (validated) or ``POST /_sim/config``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 config: SimulatorConfig | None = None, *,
                 media_cache_dir: str | Path | None = None,
                 tls_port: int | None = 0, tls_dir: str | Path | None = None) -> None:
        self._ctx = SimContext(config if config is not None else SimulatorConfig())
        self._media = media_cache(Path(media_cache_dir) if media_cache_dir else None)
        # Output files that providers hand out as URLs (Runway, fal, Gemini) live on the
        # simulated CDN under /cdn.
        cdn = MediaHost(self._ctx, self._media)
        self._apis: list[SimulatedAPI] = [
            simulated_api_class(spec)(self._ctx, self._media, cdn) for spec in PROVIDERS.values()
        ]
        self._apis.append(cdn)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._serving = False
        self._closed = False
        self._httpd = _HTTPServer((host, port), self)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        url_host = f"[{host}]" if ":" in host else host
        self.url = f"http://{url_host}:{self.port}"
        # The same API over HTTPS on a second port (None: plain HTTP only), for clients that
        # speak only TLS to the real service. ``ca_file`` is the authority to trust.
        self.tls: SimulatorTLS | None = None
        self._httpsd: _HTTPSServer | None = None
        self.tls_port: int | None = None
        self.tls_url: str | None = None
        if tls_port is not None:
            self.tls = generate_tls(Path(tls_dir)) if tls_dir else _process_tls()
            self._httpsd = _HTTPSServer((host, tls_port), self, self.tls.server_context())
            self.tls_port = int(self._httpsd.server_address[1])
            self.tls_url = f"https://{url_host}:{self.tls_port}"
        self._tls_thread: threading.Thread | None = None

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> SimulatorServer:
        """Serve in a background daemon thread; the socket already listens, so no wait."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.serve_forever,
                                            name=f"simulator-{self.port}", daemon=True)
            self._thread.start()
        self._start_tls()
        return self

    @property
    def ca_file(self) -> Path | None:
        return self.tls.ca_file if self.tls else None

    def _start_tls(self) -> None:
        if self._httpsd is not None and self._tls_thread is None:
            httpsd = self._httpsd
            self._tls_thread = threading.Thread(
                target=lambda: httpsd.serve_forever(poll_interval=0.02),
                name=f"simulator-tls-{self.tls_port}", daemon=True)
            self._tls_thread.start()

    def serve_forever(self) -> None:
        """Serve until ``stop()`` (from another thread) or KeyboardInterrupt."""
        self._start_tls()
        self._serving = True
        try:
            # A short poll keeps stop() fast (it waits one poll); 50 wake-ups/s cost nothing.
            self._httpd.serve_forever(poll_interval=0.02)
        finally:
            self._serving = False

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Wake every handler sleeping on latency or a slow answer so nothing lingers.
        self._ctx.stop_event.set()
        if self._serving:
            self._httpd.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd.server_close()
        if self._httpsd is not None:
            if self._tls_thread is not None:
                self._httpsd.shutdown()
                self._tls_thread.join(timeout=5)
            self._httpsd.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    # ---- configuration and inspection -------------------------------------------------------

    @property
    def config(self) -> SimulatorConfig:
        return self._ctx.config

    @config.setter
    def config(self, config: SimulatorConfig) -> None:
        self._ctx.replace_config(config)

    def update_config(self, **changes: Any) -> None:
        """Apply validated changes; an unknown key or a bad value raises ValueError."""
        validated = validate_config_changes(changes)
        with self._ctx.lock:
            if "time_scale" in validated:
                self._ctx.clock.now()  # settle time at the old scale first
            for name, value in validated.items():
                setattr(self._ctx.config, name, value)

    def counters(self) -> dict[str, int | float]:
        with self._ctx.lock:
            for api in self._apis:
                api.sweep()
            return dict(self._ctx.counters)

    def creates(self) -> list[dict[str, Any]]:
        """Every job created since the last reset, oldest first (copies)."""
        with self._ctx.lock:
            for api in self._apis:
                api.sweep()
            return [dict(entry) for entry in self._ctx.create_log]

    @property
    def routes(self) -> dict[str, SimulatedAPI]:
        """Each mounted API by the path it serves."""
        return {api.prefix: api for api in self._apis}

    def state(self) -> dict[str, Any]:
        return {"config": config_snapshot(self.config), "counters": self.counters()}

    def reset(self) -> None:
        """Forget jobs, counters, the create log and rate windows; the config stays."""
        with self._ctx.lock:
            self._ctx.clear()
            for api in self._apis:
                api.reset()

    def prewarm(self, sizes: tuple[str, ...] = SIZES,
                seconds: tuple[int, ...] = _ALL_SECONDS) -> None:
        """Render every asset up front so the first downloads are as fast as later ones."""
        self._media.prewarm(sizes, seconds)

    # ---- request pipeline -------------------------------------------------------------------

    def _respond(self, request: SimRequest) -> SimResponse | None:
        """The answer to one request, or None to drop the connection without one."""
        if request.path == "/_sim" or request.path.startswith("/_sim/"):
            return self._control(request)
        for api in self._apis:
            if request.path.startswith(api.prefix + "/"):
                return self._api(api, request)
        return error_response(404, f"Invalid URL ({request.method} {request.path})")

    def _api(self, api: SimulatedAPI, request: SimRequest) -> SimResponse | None:
        ctx = self._ctx
        config = ctx.config
        started = time.monotonic()
        request.seq = seq = ctx.next_seq()
        kind, variant = api.classify(request)
        ctx.inc("requests_total")
        ctx.count_call(kind, variant)
        ctx.sleep(config.latency_ms / 1000)

        if ctx.dice.hit(config.reset_rate, seq, "reset"):
            ctx.inc("connections_reset")
            return None
        limited = config.rpm_limit is not None and (
            config.rpm_scope == "all" or kind == "create"
        )
        verdict: RateVerdict | None = None
        response: SimResponse | None = None
        created: str | None = None
        slow = False
        if ctx.dice.hit(config.fail_5xx_rate, seq, "fail_5xx"):
            response = api.server_error(ctx.dice.roll(seq, "fail_5xx_kind") < 0.5)
        else:
            key = api.api_key(request)
            if key is None or (config.api_keys is not None and key not in config.api_keys):
                ctx.inc("unauthorized_401")
                response = api.unauthorized(key)
            elif limited and config.rpm_limit is not None:
                with ctx.lock:
                    verdict = ctx.rate_window.admit(config.rpm_limit, ctx.clock.now())
                if not verdict.allowed:
                    ctx.inc("rate_limited_429")
                    retry_after = max(1, math.ceil(ctx.clock.to_real(verdict.next_slot_in)))
                    response = api.rate_limited(verdict, retry_after)
        if response is None:
            response = api.handle(request)
            forced = response.forced_faults
            slow = "slow" in forced or ctx.dice.hit(config.slow_rate, seq, "slow")
            created = response.created_job_id
            if created is not None:
                if ("reset_after_create" in forced
                        or ctx.dice.hit(config.reset_after_create_rate, seq, "reset_after_create")):
                    ctx.annotate_create(created, answer="connection_reset", slow=slow)
                    if slow:
                        ctx.inc("slow_responses")
                        ctx.sleep(config.slow_seconds)
                    ctx.inc("connections_reset")
                    return None
                if ("fail_5xx_after_create" in forced or ctx.dice.hit(
                        config.fail_5xx_after_create_rate, seq, "fail_5xx_after_create")):
                    response = api.server_error(False)
                    ctx.annotate_create(created, answer="server_error", slow=slow)
                else:
                    ctx.annotate_create(created, slow=slow)

        if response.status >= 500:
            ctx.inc("errors_5xx_sent")
        if kind == "create" and 400 <= response.status < 500:
            ctx.inc("creates_rejected")
        if limited and config.rpm_limit is not None:
            if verdict is None:
                # Requests refused before the window (auth, injected 5xx) still show its state.
                with ctx.lock:
                    verdict = ctx.rate_window.peek(config.rpm_limit, ctx.clock.now())
            response.headers.update(api.rate_headers(verdict))
        if slow:
            ctx.inc("slow_responses")
            ctx.sleep(config.slow_seconds)
        response.headers[api.request_id_header] = "req_" + secrets.token_hex(16)
        if api.processing_time_header:
            elapsed_ms = int((time.monotonic() - started) * 1000)
            response.headers[api.processing_time_header] = str(elapsed_ms)
        return response

    # ---- control endpoints ------------------------------------------------------------------

    def _control(self, request: SimRequest) -> SimResponse:
        route = (request.method, request.path.rstrip("/"))
        if route == ("GET", "/_sim/state"):
            return SimResponse.json(200, self.state())
        if route == ("GET", "/_sim/creates"):
            return SimResponse.json(200, self.creates())
        if route == ("POST", "/_sim/reset"):
            self.reset()
            return SimResponse.json(200, self.state())
        if route == ("POST", "/_sim/config"):
            try:
                changes = json.loads(request.body or b"{}")
            except (ValueError, UnicodeDecodeError):
                return error_response(400, "The body must be a JSON object of config changes.")
            if not isinstance(changes, dict):
                return error_response(400, "The body must be a JSON object of config changes.")
            try:
                self.update_config(**changes)
            except ValueError as exc:
                return error_response(400, str(exc), code="invalid_config")
            return SimResponse.json(200, self.state())
        known = {"/_sim/state", "/_sim/creates", "/_sim/reset", "/_sim/config"}
        if route[1] in known:
            return error_response(405, f"Method {request.method} is not allowed on {route[1]}.")
        return error_response(404, f"Unknown control endpoint {request.path}; known: "
                              f"{', '.join(sorted(known))}.")
