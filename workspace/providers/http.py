"""The one HTTP layer every provider call goes through.

- Every call has explicit connect/read/write/pool timeouts; there is no way to make one without.
- Nothing is ever retried here: httpx's transport retries are off, and a create that failed is
  re-sent only by the generation state machine after it has ruled out a paid duplicate.
- Failures leave as ``ProviderError`` with a class, classified once: network failures here,
  HTTP answers by the adapter's ``classify`` function.
- The API key never appears in an exception, a log line or a message: provider error texts are
  scrubbed of it before they go anywhere.
- The key is sent only to URLs under the channel's base URL (same scheme, host and port, and a
  path below the base path). Provider outputs live on CDNs and storage hosts: ``download_url``
  fetches those without any header that carries the key, and follows redirects itself so a
  redirect can never carry the key to another host either.
- Outputs come only from public addresses, checked when connecting (addresses.py), unless they
  share the base URL's origin or the channel lists their host in ``private_output_hosts``.
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import re
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO, Protocol

import httpcore
import httpx

from workspace.providers.addresses import OutputPolicy, OutputRefused, VettedBackend
from workspace.providers.errors import CreateOutcome, ErrorClass, ProviderError

Classifier = Callable[[httpx.Response], ProviderError]

# When the provider gives no hint with a 429, the whole channel pauses this long.
DEFAULT_PUSHBACK_SECONDS = 10.0
# Redirects followed (by hand, see download_url) before a download gives up.
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Circuit(Protocol):
    """The channel's circuit breaker, as the HTTP layer uses it (see circuit.py)."""

    def allow(self) -> None: ...

    def record(self, *, ok: bool) -> str: ...


class Pacer(Protocol):
    """The channel's shared limiter, as the HTTP layer uses it (see limiter.py)."""

    def acquire(self, kind: str, *, max_wait: float) -> float: ...

    def pushback(self, seconds: float) -> None: ...


class CallCounter(Protocol):
    """Counts every call that reached the provider, by outcome (see call_counts.py)."""

    def count(self, *, outcome: str, error_class: str) -> None: ...


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str) -> float | None:
    """Parse OpenAI-style reset durations such as ``1s``, ``6m0s``, ``1.5s`` or ``20ms``."""
    value = value.strip()
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * scale[unit] for number, unit in parts)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The longest wait any of the provider's retry hints asks for, in seconds."""
    hints: list[float] = []
    if (ms := headers.get("retry-after-ms")) is not None:
        with contextlib.suppress(ValueError):
            hints.append(float(ms) / 1000)
    if (ra := headers.get("retry-after")) is not None:
        try:
            hints.append(float(ra))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(ra) if ra else None
            if parsed is not None:
                hints.append(max(0.0, parsed.timestamp() - time.time()))
    reset = headers.get("x-ratelimit-reset-requests")
    if reset is not None and (seconds := parse_duration(reset)) is not None:
        hints.append(seconds)
    return max(hints) if hints else None


def classify_file_response(response: httpx.Response) -> ProviderError:
    """A file host's answer to an output URL (a CDN, a storage bucket), not the provider's API.

    Signed URLs that have lapsed or files that were deleted answer 401/403/404/410 there: the
    output expired. Overload and rate limits mean the same as anywhere else.
    """
    status = response.status_code
    text = " ".join(response.text.split())[:300] or f"HTTP {status} {response.reason_phrase}"
    if status in (401, 403, 404, 410):
        return ProviderError(
            ErrorClass.EXPIRED, f"The output file is no longer available ({status}): {text}"
        )
    if status == 429:
        return ProviderError(
            ErrorClass.RATE_LIMITED, text, retry_after=retry_after_seconds(response.headers)
        )
    if status >= 500:
        return ProviderError(
            ErrorClass.OVERLOADED, text, retry_after=retry_after_seconds(response.headers)
        )
    return ProviderError(ErrorClass.PROVIDER_FAILED, f"The file host answered {status}: {text}")


_ssl_context: ssl.SSLContext | None = None


def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle costs ~40 ms, too much per job.

    Built when the app loads (ProvidersConfig.ready), so RQ's forked work horses inherit it.
    """
    global _ssl_context
    if _ssl_context is None:
        import certifi

        _ssl_context = ssl.create_default_context(cafile=certifi.where())
    return _ssl_context


# origin ("https://host:port") -> a CA file trusted for that origin only, beside the public
# roots. Set for the simulator's HTTPS port (settings.SIMULATOR_TLS_URL / SIMULATOR_CA_FILE), whose
# authority it generates at every start: no other host is ever vouched for by that authority.
_origin_ca_files: dict[str, str] = {}
_origin_contexts: dict[tuple[str, float], ssl.SSLContext] = {}


def _origin_key(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}:{url.port or _DEFAULT_PORTS.get(url.scheme, 0)}"


def trust_for_origin(origin: str, ca_file: str | os.PathLike[str] | None) -> None:
    """Trust ``ca_file`` for connections to ``origin`` only (None forgets the origin)."""
    key = _origin_key(httpx.URL(origin))
    if ca_file is None:
        _origin_ca_files.pop(key, None)
    else:
        _origin_ca_files[key] = os.fspath(ca_file)


def _origin_context(ca_file: str) -> ssl.SSLContext | None:
    """The public roots plus ``ca_file``; rebuilt when the file changes (a restarted simulator
    makes a new authority). None while the file does not exist yet: the simulator may start
    after the app, and until then its origin is simply not trusted."""
    try:
        changed = os.stat(ca_file).st_mtime
    except OSError:
        return None
    context = _origin_contexts.get((ca_file, changed))
    if context is None:
        import certifi

        context = ssl.create_default_context(cafile=certifi.where())
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError):
            return None
        _origin_contexts[(ca_file, changed)] = context
    return context


def _origin_mounts(policy: OutputPolicy | None) -> dict[str, httpx.BaseTransport]:
    """httpx mounts that use the extra authority for its origin and nowhere else."""
    mounts: dict[str, httpx.BaseTransport] = {}
    for origin, ca_file in _origin_ca_files.items():
        context = _origin_context(ca_file)
        if context is None:
            continue
        mounts[origin] = (
            _vetted_transport(policy, context)
            if policy is not None
            else httpx.HTTPTransport(retries=0, verify=context)
        )
    return mounts


def _vetted_transport(
    policy: OutputPolicy, context: ssl.SSLContext | None = None
) -> httpx.HTTPTransport:
    """An httpx transport whose every connection goes through ``VettedBackend``.

    httpx has no argument for httpcore's network backend, so the pool is rebuilt with one; its
    other settings are httpx's defaults (100 connections, 20 kept alive for 5 s).
    """
    context = context or shared_ssl_context()
    transport = httpx.HTTPTransport(retries=0, verify=context)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=context,
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        retries=0,
        network_backend=VettedBackend(policy),
    )
    return transport


def public_client(*, private_hosts: str, timeout: httpx.Timeout) -> httpx.Client:
    """A client that connects only to public addresses (and ``private_hosts``, an operator's
    list in ``private_output_hosts``' syntax), judged when connecting like provider outputs;
    it follows no redirects. A refused address raises ``addresses.OutputRefused``.

    For requests Reelhouse makes to URLs a member chose (the API's outgoing webhooks).
    """
    policy = OutputPolicy.for_channel(trusted=(), private_output_hosts=private_hosts)
    return httpx.Client(
        timeout=timeout, transport=_vetted_transport(policy), follow_redirects=False
    )


# The most an API answer (JSON, an error page) may carry; files go through ``download``, which
# writes to disk. Adapters whose answers carry the video itself raise it (Vertex's inline bytes).
MAX_ANSWER_BYTES = 16 * 1024**2


class ProviderHTTP:
    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        secret: str,
        classify: Classifier,
        connect_timeout: float,
        read_timeout: float,
        pacer: Pacer | None = None,
        circuit: Circuit | None = None,
        on_circuit_change: Callable[[str], None] | None = None,
        max_wait: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        private_output_hosts: str = "",
        counter: CallCounter | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self._max_answer_bytes = max_answer_bytes
        self._pacer = pacer
        self._counter = counter
        self._circuit = circuit
        self._on_circuit_change = on_circuit_change
        self._max_wait = max_wait
        self._secret = secret
        # Short-lived credentials set later (``authorize``), scrubbed like the key.
        self._tokens: set[str] = set()
        self._classify = classify
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout)
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers=dict(headers),
            timeout=self._timeout,
            transport=transport or httpx.HTTPTransport(retries=0, verify=shared_ssl_context()),
            mounts=None if transport else _origin_mounts(None),
            follow_redirects=False,
        )
        # For URLs outside the base URL (CDNs, storage): no header that carries the key. Built
        # on first use, since a client costs a TLS context (tens of milliseconds).
        self._bare_headers = {
            name: value for name, value in headers.items() if not (secret and secret in value)
        }
        self._transport = transport
        self._bare: httpx.Client | None = None
        base = self._client.base_url
        self._output_policy = OutputPolicy.for_channel(
            trusted=[(base.host, base.port or _DEFAULT_PORTS.get(base.scheme, 0))],
            private_output_hosts=private_output_hosts,
        )

    def close(self) -> None:
        self._client.close()
        if self._bare is not None:
            self._bare.close()

    def _bare_client(self) -> httpx.Client:
        if self._bare is None:
            self._bare = httpx.Client(
                headers=self._bare_headers,
                timeout=self._timeout,
                transport=self._transport or _vetted_transport(self._output_policy),
                mounts=None if self._transport else _origin_mounts(self._output_policy),
                follow_redirects=False,
            )
        return self._bare

    def in_scope(self, url: httpx.URL | str) -> bool:
        """Whether ``url`` lies under the channel's base URL, the only place the key may go."""
        target, base = httpx.URL(url), self._client.base_url

        def origin(u: httpx.URL) -> tuple[str, str, int | None]:
            return (u.scheme, u.host, u.port or _DEFAULT_PORTS.get(u.scheme))

        return origin(target) == origin(base) and target.path.startswith(base.path)

    def scrub(self, text: str) -> str:
        for secret in (self._secret, *self._tokens):
            if secret and secret in text:
                text = text.replace(secret, "[redacted]")
        return text

    def authorize(self, headers: Mapping[str, str], *, secret: str) -> None:
        """Send these credential headers from now on (a short-lived token the adapter obtained
        or refreshed). Only the client for the base URL carries them; ``secret`` is scrubbed
        from error texts like the key."""
        self._tokens.add(secret)
        self._client.headers.update(headers)

    def request(
        self,
        method: str,
        path: str,
        *,
        creates: bool = False,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Send one request; return a 2xx response or raise a classified ``ProviderError``.

        ``creates`` marks a call that may start a paid job, so a failure also says whether a
        job may now exist (``create_outcome``). Every call first waits for its slot from the
        channel's pacer, which may raise ``limiter.Throttled`` without sending anything.
        """
        self._pace("create" if creates else "other")
        request = self._client.build_request(
            method, path.lstrip("/"), params=params, json=json, data=data, files=files
        )
        try:
            response = self._client.send(request, stream=True)
            try:
                response = self._read_capped(response, creates=creates)
            finally:
                response.close()
        except httpx.HTTPError as exc:
            raise self._outcome(self._network_error(exc, creates=creates)) from None
        if response.is_success:
            self._observe(response)
            self._record(ok=True)
            self._count("ok")
            return response
        raise self._outcome(self._http_error(response, creates=creates))

    def _read_capped(self, response: httpx.Response, *, creates: bool) -> httpx.Response:
        """The answer read whole, but never more than ``max_answer_bytes`` of it: an answer is
        untrusted, and a gateway that streams without end must not fill this worker's memory."""
        limit = self._max_answer_bytes
        declared = response.headers.get("content-length", "")
        chunks: list[bytes] = []
        received = 0
        too_big = declared.isdigit() and (len(declared) > 18 or int(declared) > limit)
        if not too_big:
            for chunk in response.iter_bytes(1 << 16):
                received += len(chunk)
                if received > limit:
                    too_big = True
                    break
                chunks.append(chunk)
        if too_big:
            # A create's job may exist all the same (a 2xx said so, but its id is unreadable).
            outcome = None
            if creates:  # as _http_error: a 4xx is a refusal, a 2xx or 5xx may hide a job
                refused = 400 <= response.status_code < 500
                outcome = CreateOutcome.NOT_CREATED if refused else CreateOutcome.AMBIGUOUS
            raise self._outcome(
                ProviderError(
                    ErrorClass.PROVIDER_FAILED,
                    f"The provider answered {response.status_code} with more than {limit} "
                    "bytes; the answer was not read.",
                    http_status=response.status_code,
                    create_outcome=outcome,
                )
            )
        # Decoded already (gzip and the like): the copy must not claim an encoding again.
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=b"".join(chunks),
            request=response.request,
            extensions=response.extensions,
        )

    def download(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        destination: BinaryIO,
        timeout: float,
        max_bytes: int,
    ) -> str:
        """Stream a file into ``destination``; return its content type."""
        self._pace("other")
        try:
            content_type = self._stream(
                path, params=params, destination=destination, timeout=timeout, max_bytes=max_bytes
            )
        except ProviderError as error:
            raise self._outcome(error) from None
        self._record(ok=True)
        self._count("ok")
        return content_type

    def download_url(
        self,
        url: str,
        *,
        destination: BinaryIO,
        timeout: float,
        max_bytes: int,
        classify: Classifier | None = None,
    ) -> str:
        """Stream a file from an absolute URL (often a provider's CDN); return its content type.

        The key goes along only while the URL is under the base URL (``in_scope``); redirects
        are followed here, each hop judged again. ``classify`` maps the file host's error
        answers (an expired signed URL, say), which look nothing like the API's.
        """
        self._pace("other")
        try:
            content_type = self._stream_url(
                url,
                destination=destination,
                timeout=timeout,
                max_bytes=max_bytes,
                classify=classify,
            )
        except ProviderError as error:
            raise self._outcome(error) from None
        self._record(ok=True)
        self._count("ok")
        return content_type

    def _stream_url(
        self,
        url: str,
        *,
        destination: BinaryIO,
        timeout: float,
        max_bytes: int,
        classify: Classifier | None,
    ) -> str:
        stream_timeout = httpx.Timeout(timeout, connect=self._timeout.connect)
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL:
            raise ProviderError(
                ErrorClass.PROVIDER_FAILED, "The provider gave an invalid file URL."
            ) from None
        if target.scheme not in _DEFAULT_PORTS:
            raise ProviderError(
                ErrorClass.PROVIDER_FAILED, "The provider gave a file URL that is not http(s)."
            )
        for _ in range(MAX_REDIRECTS + 1):
            client = self._client if self.in_scope(target) else self._bare_client()
            try:
                with client.stream("GET", target, timeout=stream_timeout) as response:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise ProviderError(
                                ErrorClass.PROVIDER_FAILED,
                                f"The file host answered {response.status_code} without a "
                                "Location.",
                            )
                        target = target.join(location)
                        continue
                    if not response.is_success:
                        response.read()
                        raise self._http_error(response, creates=False, classify=classify)
                    return self._write(response, destination, max_bytes)
            except httpx.HTTPError as exc:
                raise self._network_error(exc, creates=False) from None
            except OutputRefused as refused:
                raise ProviderError(ErrorClass.PROVIDER_FAILED, str(refused)) from None
        raise ProviderError(
            ErrorClass.PROVIDER_FAILED, f"The file URL redirected more than {MAX_REDIRECTS} times."
        )

    def _write(self, response: httpx.Response, destination: BinaryIO, max_bytes: int) -> str:
        too_big = ProviderError(
            ErrorClass.PROVIDER_FAILED,
            f"The provider sent more than {max_bytes} bytes for one file; nothing was stored.",
        )
        declared = response.headers.get("content-length", "")
        # Refused before reading a byte when the file says up front that it is too big.
        if declared.isdigit() and (len(declared) > 18 or int(declared) > max_bytes):
            raise too_big
        written = 0
        for chunk in response.iter_bytes(1 << 16):
            written += len(chunk)
            if written > max_bytes:
                raise too_big
            destination.write(chunk)
        return response.headers.get("content-type", "application/octet-stream")

    def _stream(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        destination: BinaryIO,
        timeout: float,
        max_bytes: int,
    ) -> str:
        stream_timeout = httpx.Timeout(timeout, connect=self._timeout.connect)
        try:
            with self._client.stream(
                "GET", path.lstrip("/"), params=params, timeout=stream_timeout
            ) as response:
                if not response.is_success:
                    response.read()
                    raise self._http_error(response, creates=False)
                return self._write(response, destination, max_bytes)
        except httpx.HTTPError as exc:
            raise self._network_error(exc, creates=False) from None

    def _pace(self, kind: str) -> None:
        # The circuit first, so an open circuit does not use up a rate-limit slot.
        if self._circuit is not None:
            self._circuit.allow()
        if self._pacer is not None:
            self._pacer.acquire(kind, max_wait=self._max_wait)

    def _record(self, *, ok: bool) -> None:
        if self._circuit is None:
            return
        transition = self._circuit.record(ok=ok)
        if transition in ("opened", "reopened", "reclosed") and self._on_circuit_change:
            self._on_circuit_change(transition)

    def _count(self, outcome: str, error_class: str = "") -> None:
        if self._counter is not None:
            self._counter.count(outcome=outcome, error_class=error_class)

    def _outcome(self, error: ProviderError) -> ProviderError:
        self._count("error", str(error.error_class))
        # Only the provider's own trouble counts against its health; a rate limit or a
        # member's invalid prompt says nothing about whether the provider works.
        if error.error_class in (ErrorClass.OVERLOADED, ErrorClass.NETWORK):
            self._record(ok=False)
        elif error.error_class is not ErrorClass.RATE_LIMITED:
            self._record(ok=True)
        return error

    def _observe(self, response: httpx.Response) -> None:
        # The provider says the window is spent: wait for it rather than earn a 429.
        if self._pacer is None or response.headers.get("x-ratelimit-remaining-requests") != "0":
            return
        reset = parse_duration(response.headers.get("x-ratelimit-reset-requests", ""))
        if reset:
            self._pacer.pushback(reset)

    def _network_error(self, exc: httpx.HTTPError, *, creates: bool) -> ProviderError:
        # A connect failure means the request never left this machine; anything later (a reset,
        # a read timeout) may have reached the provider and started a paid job.
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        kind = type(exc).__name__
        message = self.scrub(f"{kind}: {exc}" if str(exc) else kind)
        outcome = None
        if creates:
            outcome = CreateOutcome.NOT_CREATED if never_sent else CreateOutcome.AMBIGUOUS
        return ProviderError(ErrorClass.NETWORK, message, create_outcome=outcome)

    def _http_error(
        self, response: httpx.Response, *, creates: bool, classify: Classifier | None = None
    ) -> ProviderError:
        error = (classify or self._classify)(response)
        error.message = self.scrub(error.message)
        error.http_status = response.status_code
        if self._pacer is not None:
            if error.error_class is ErrorClass.RATE_LIMITED:
                self._pacer.pushback(error.retry_after or DEFAULT_PUSHBACK_SECONDS)
            elif error.error_class is ErrorClass.OVERLOADED and error.retry_after:
                self._pacer.pushback(error.retry_after)
        if creates:
            # A 4xx is a refusal; a 5xx may come from a proxy after the job was created.
            error.create_outcome = (
                CreateOutcome.AMBIGUOUS
                if response.status_code >= 500
                else CreateOutcome.NOT_CREATED
            )
        return error
