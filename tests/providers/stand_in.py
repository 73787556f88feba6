"""Small real HTTP servers on 127.0.0.1 for the output-address and hostile-provider tests.

A ``StandIn`` answers each path with a function of the request; it records every request, so a
test can prove an "internal service" was never reached.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest


@dataclass
class Answer:
    status: int = 200
    body: bytes | Iterator[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Answer:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json"})

    @classmethod
    def redirect(cls, location: str) -> Answer:
        return cls(302, b"", {"Location": location})


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


Route = Callable[[Seen], Answer]


class StandIn:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.prefix_routes: list[tuple[str, str, Route]] = []
        self.requests: list[Seen] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                seen = Seen(self.command, parts.path, parts.query,
                            {k.lower(): v for k, v in self.headers.items()},
                            self.rfile.read(length) if length else b"")
                stand_in.requests.append(seen)
                answer = stand_in.answer(seen)
                self.send_response(answer.status)
                headers = {k.lower(): v for k, v in answer.headers.items()}
                chunked = not isinstance(answer.body, bytes) and "content-length" not in headers
                if chunked:
                    headers["transfer-encoding"] = "chunked"
                elif "content-length" not in headers:
                    assert isinstance(answer.body, bytes)
                    headers["content-length"] = str(len(answer.body))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    if isinstance(answer.body, bytes):
                        self.wfile.write(answer.body)
                    elif not chunked:  # a declared length, the body streamed as it comes
                        for chunk in answer.body:
                            self.wfile.write(chunk)
                            self.wfile.flush()
                    else:
                        for chunk in answer.body:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def route(self, method: str, path: str, answer: Route | Answer, *, prefix: bool = False) -> None:
        handler = answer if callable(answer) else (lambda _seen, fixed=answer: fixed)
        if prefix:
            self.prefix_routes.append((method, path, handler))
        else:
            self.routes[(method, path)] = handler

    def answer(self, seen: Seen) -> Answer:
        handler = self.routes.get((seen.method, seen.path))
        if handler is None:
            for method, prefix, candidate in self.prefix_routes:
                if method == seen.method and seen.path.startswith(prefix):
                    handler = candidate
                    break
        if handler is None:
            return Answer(404, b"not here", {"Content-Type": "text/plain"})
        return handler(seen)

    def start(self) -> StandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def stand_ins() -> Iterator[Callable[[], StandIn]]:
    started: list[StandIn] = []

    def start() -> StandIn:
        server = StandIn().start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def outside_connects(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every attempt to connect to a non-loopback address, each refused before it leaves.

    These tests make addresses such as 10.0.0.5 and 169.254.169.254 look reachable; should the
    code under test ever try one, this stops the packet and the test sees the attempt.
    """
    attempts: list[object] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def loopback(sock: socket.socket, address: Any) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return True
        try:
            return ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback
        except ValueError:
            return False

    def connect(sock: socket.socket, address: Any) -> None:
        if not loopback(sock, address):
            attempts.append(address)
            raise OSError("the test guard refused a connection to a non-loopback address")
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if not loopback(sock, address):
            attempts.append(address)
            return 111
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return attempts


def fake_dns(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> None:
    """Make made-up host names resolve to the given addresses; real names resolve as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        if host in names:
            results = []
            for address in names[host]:
                if ":" in address:
                    results.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "",
                                    (address, int(port), 0, 0)))
                else:
                    results.append((socket.AF_INET, socket.SOCK_STREAM, 6, "",
                                    (address, int(port))))
            return results
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
