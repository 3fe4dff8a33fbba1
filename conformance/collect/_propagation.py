"""Sending propagation probes and waiting for what the service made of them.

A probe is one request whose headers are given exactly: the per-endpoint
join requests (a fresh ``traceparent``/``tracestate`` made with OpenTelemetry's
own propagator), the W3C trace-context vectors, the correlation-id probes.
Every probe carries a unique ``User-Agent`` (:data:`MARKER_PREFIX`), which HTTP
server instrumentations record on the SERVER span (``user_agent.original``,
or ``http.user_agent`` in the older semantic conventions), so the span a
request produced can be found even when the service ignored the trace
context it was sent.

Headers that an HTTP client library refuses or normalises (leading
whitespace, duplicated ``traceparent``, a bare CR, odd name casing) go over a
raw socket (:func:`send_raw`) to 127.0.0.1, written byte for byte.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

from conformance._exceptions import HarnessError, WaitTimeout
from conformance._ports import LOOPBACK
from conformance._profile import Endpoint
from conformance._wait import Clock, wait_until
from conformance.collect._traces import TraceStore
from conformance.telemetry import HttpExchange, Span, trace_hex

__all__ = [
    "CORRELATION",
    "MALFORMED_CORRELATION_IDS",
    "MARKER_ATTRIBUTES",
    "MARKER_PREFIX",
    "ProbeRequest",
    "fill_placeholders",
    "fresh_ids",
    "malformed_correlation_probes",
    "marker_of",
    "send_probes",
    "send_raw",
    "wait_for_probe_logs",
    "wait_for_probe_spans",
]

#: Every probe's ``User-Agent`` starts with this; the rest is unique per request.
MARKER_PREFIX = "obsconform-probe/"
#: Span attributes that carry the request's User-Agent (current, then pre-1.26 HTTP semconv).
MARKER_ATTRIBUTES = ("user_agent.original", "http.user_agent")

#: Largest response the raw sender reads; probes only need the status line and headers.
MAX_RAW_RESPONSE_BYTES = 1024 * 1024

_LOOPBACK_HOSTS = frozenset({LOOPBACK, "localhost", "::1"})
_ids = RandomIdGenerator()


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """One request, its extra headers in order (names as written, duplicates kept).

    ``raw`` sends it over a socket exactly as written; otherwise through the
    httpx client (which adds the client's own headers, e.g. the rate-limit key).
    ``ids`` records the values that filled the placeholders of a W3C vector.
    """

    name: str
    endpoint: Endpoint
    headers: tuple[tuple[str, str], ...] = ()
    raw: bool = False
    ids: Mapping[str, str] = field(default_factory=dict)


#: Name prefix of the malformed correlation-id probes.
CORRELATION = "correlation id: "

#: Correlation ids no service should take as given: (what, value). Sent over a raw socket.
MALFORMED_CORRELATION_IDS = (
    ("a 10 kB value", "a" * 10240),
    ("a bare CR smuggling a header", "obsconform\rX-Injected: yes"),
    ("a percent-encoded CRLF", "obsconform%0D%0AX-Injected:%20yes"),
    ("a tab inside", "obs\tconform"),
    ("markup", '"><script>alert(1)</script>'),
    ("an empty value", ""),
    ("non-ASCII", "obsconform-\u00e9"),
)


def malformed_correlation_probes(endpoint: Endpoint, header: str) -> list[ProbeRequest]:
    """One raw-socket request per malformed correlation id, named ``correlation id: <what>``."""
    return [
        ProbeRequest(CORRELATION + what, endpoint, ((header, value),), raw=True)
        for what, value in MALFORMED_CORRELATION_IDS
    ]


def fresh_ids() -> dict[str, str]:
    """Values for the vector placeholders, new for every case so each is its own trace."""
    trace_id = format(_ids.generate_trace_id(), "032x")
    parent_id = format(_ids.generate_span_id(), "016x")
    return {
        "trace_id": trace_id,
        "trace_id_2": format(_ids.generate_trace_id(), "032x"),
        "parent_id": parent_id,
        "trace_id_31": trace_id[:31],
        "parent_id_15": parent_id[:15],
    }


def fill_placeholders(
    headers: Iterable[Sequence[str]], ids: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    """``{trace_id}`` etc. replaced by ``ids``; anything else (``{|}`` in a tracestate value) kept."""
    filled = []
    for name, value in headers:
        for key, replacement in ids.items():
            value = value.replace("{" + key + "}", replacement)
        filled.append((name, value))
    return tuple(filled)


def marker_of(exchange: HttpExchange) -> str:
    """The probe marker (User-Agent) a request was sent with, or ``""``."""
    for name, value in exchange.request_headers:
        if name.lower() == "user-agent" and value.startswith(MARKER_PREFIX):
            return value
    return ""


# --------------------------------------------------------------------------- sending


def _target(endpoint: Endpoint) -> tuple[str, bytes, list[tuple[str, str]]]:
    """(path with query, body, content headers) of an endpoint's request."""
    request = httpx.Request(
        endpoint.method,
        "http://placeholder" + endpoint.concrete_path(),
        params=dict(endpoint.query) or None,
        json=endpoint.json if endpoint.has_json else None,
    )
    target = request.url.raw_path.decode("ascii")
    body = request.read()
    content = [(k, v) for k, v in request.headers.items() if k.lower() == "content-type"]
    return target, body, content


def send_raw(
    base_url: httpx.URL,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    *,
    body: bytes = b"",
    timeout: float = 10.0,
) -> tuple[int | None, tuple[tuple[str, str], ...], bytes, str]:
    """One HTTP/1.1 request written byte for byte (``Connection: close``).

    Returns ``(status, response headers, body, error)``; a response header line
    without a colon comes back with an empty name, so a split header is visible.
    Only loopback addresses are allowed.
    """
    host = base_url.host
    if host not in _LOOPBACK_HOSTS:
        raise HarnessError(f"raw probes go to loopback only, not {host!r}")
    port = base_url.port or 80
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    payload = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body
    received = bytearray()
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(payload)
            while len(received) <= MAX_RAW_RESPONSE_BYTES and not _complete(received):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
    except OSError as exc:
        if not received:
            return None, (), b"", f"{type(exc).__name__}: {exc}"
    head, sep, rest = bytes(received).partition(b"\r\n\r\n")
    if not sep:
        return None, (), b"", f"incomplete response ({len(received)} bytes, no end of headers)"
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None, (), b"", f"not an HTTP status line: {status_line[:80]!r}"
    parsed = []
    for line in header_lines:
        name, colon, value = line.partition(":")
        parsed.append((name, value.strip(" \t")) if colon else ("", line))
    return int(parts[1]), tuple(parsed), rest, ""


def _complete(received: bytes | bytearray) -> bool:
    """Whether a response with a Content-Length has fully arrived (else read to EOF)."""
    head, sep, body = bytes(received).partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value.strip())
    return False


def _send_one(client: httpx.Client, probe: ProbeRequest) -> HttpExchange:
    marker = MARKER_PREFIX + uuid.uuid4().hex
    headers = [("User-Agent", marker), *((k, v) for k, v in probe.endpoint.headers.items()), *probe.headers]
    target, body, content = _target(probe.endpoint)
    url = str(client.base_url.join(target))
    started, started_at = time.perf_counter(), time.time()
    if probe.raw:
        client_headers = [
            (k, v) for k, v in client.headers.items() if k.lower() in _client_header_names(client)
        ]
        sent = [*client_headers, *content, *headers]
        status, response_headers, response_body, error = send_raw(
            client.base_url,
            probe.endpoint.method,
            target,
            sent,
            body=body,
            timeout=client.timeout.read or 10.0,
        )
        return HttpExchange(
            endpoint=probe.endpoint.name,
            method=probe.endpoint.method,
            url=url,
            path=probe.endpoint.concrete_path(),
            request_headers=tuple(sent),
            status_code=status,
            response_headers=response_headers,
            body=response_body,
            elapsed_seconds=time.perf_counter() - started,
            started_at=started_at,
            error=error,
            sent_traceparent=_first(sent, "traceparent"),
        )
    request = client.build_request(
        probe.endpoint.method, target, headers=[*content, *headers], content=body or None
    )
    try:
        response = client.send(request)
        response_body = response.read()
    except httpx.HTTPError as exc:
        return HttpExchange(
            endpoint=probe.endpoint.name,
            method=probe.endpoint.method,
            url=url,
            path=probe.endpoint.concrete_path(),
            request_headers=tuple(request.headers.multi_items()),
            status_code=None,
            elapsed_seconds=time.perf_counter() - started,
            started_at=started_at,
            error=f"{type(exc).__name__}: {exc}",
            sent_traceparent=_first(request.headers.multi_items(), "traceparent"),
        )
    return HttpExchange(
        endpoint=probe.endpoint.name,
        method=probe.endpoint.method,
        url=url,
        path=probe.endpoint.concrete_path(),
        request_headers=tuple(request.headers.multi_items()),
        status_code=response.status_code,
        response_headers=tuple(response.headers.multi_items()),
        body=response_body,
        elapsed_seconds=time.perf_counter() - started,
        started_at=started_at,
        sent_traceparent=_first(request.headers.multi_items(), "traceparent"),
    )


def _client_header_names(client: httpx.Client) -> set[str]:
    """Headers the session set on the client on purpose (not httpx's defaults)."""
    defaults = {"accept", "accept-encoding", "connection", "user-agent"}
    return {k.lower() for k in client.headers if k.lower() not in defaults}


def _first(headers: Iterable[tuple[str, str]], name: str) -> str:
    return next((v for k, v in headers if k.lower() == name), "")


def send_probes(
    batches: Sequence[tuple[httpx.Client, Sequence[ProbeRequest]]],
    *,
    concurrency: int = 8,
    deadline: float | None = None,
    clock: Clock = time.monotonic,
) -> dict[str, HttpExchange]:
    """Send every probe, ``concurrency`` at a time; each batch through its own client.

    Probes not yet started when ``deadline`` (a ``clock()`` value) passes are
    not sent and are absent from the result. Transport errors are recorded in
    the exchange, not raised.
    """
    work = [(client, probe) for client, probes in batches for probe in probes]
    names = [probe.name for _, probe in work]
    if len(set(names)) != len(names):
        raise ValueError("probe names must be unique")

    def run(item: tuple[httpx.Client, ProbeRequest]) -> HttpExchange | None:
        if deadline is not None and clock() > deadline:
            return None
        return _send_one(*item)

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="obsconform-probe") as pool:
        results = list(pool.map(run, work))
    return {probe.name: x for (_, probe), x in zip(work, results, strict=True) if x is not None}


# --------------------------------------------------------------------------- waiting


def _carries_marker(span: Span, markers: set[str]) -> str:
    for key in MARKER_ATTRIBUTES:
        value = span.attributes.get(key)
        if isinstance(value, str) and value in markers:
            return value
    return ""


def wait_for_probe_spans(
    store: TraceStore,
    exchanges: Mapping[str, HttpExchange],
    *,
    timeout: float,
    continued: Mapping[str, tuple[str, str]] | None = None,
    quiet_period: float = 0.3,
    stall_period: float = 6.0,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Span]:
    """The store's spans once every probe in ``exchanges`` has a SERVER span, and
    then nothing new arrived for ``quiet_period`` (child spans, late batches).
    The wait also ends when spans have arrived but none new for ``stall_period``
    (longer than the usual 5 s batch export delay of an SDK left at its default).

    A probe's span is the SERVER span carrying its marker or, for probes in
    ``continued`` (name → sent trace id, parent id), one in that trace with
    that parent. When ``timeout`` runs out the spans seen so far are returned:
    the checks report which requests have none, and where they were expected from.
    """
    continued = continued or {}
    markers = {name: marker_of(x) for name, x in exchanges.items()}

    def missing(spans: list[Span]) -> list[str]:
        servers = [span for span in spans if span.kind == "SERVER"]
        seen = {_carries_marker(span, set(markers.values())) for span in servers}
        pairs = {(span.trace_id, span.parent_span_id) for span in servers}
        return [
            name
            for name in exchanges
            if markers[name] not in seen and continued.get(name, ("", "")) not in pairs
        ]

    arrived = [-1, clock()]

    def all_located() -> tuple[list[Span] | None, str]:
        spans = store.spans()
        if len(spans) != arrived[0]:
            arrived[:] = [len(spans), clock()]
        left = missing(spans)
        # Spans stopped arriving: the rest cannot be located (a service that records no
        # User-Agent and does not continue the trace), and waiting longer finds nothing.
        stalled = bool(spans) and clock() - arrived[1] >= stall_period
        return (
            spans if not left or stalled else None
        ), f"{len(spans)} span(s); no SERVER span yet for {len(left)} probe(s)"

    try:
        wait_until(
            all_located,
            awaited=f"SERVER spans of {len(exchanges)} probe request(s) in {store.describe()}",
            timeout=timeout,
            clock=clock,
            sleep=sleep,
        )
    except WaitTimeout:
        return store.spans()
    count, changed_at = -1, clock()

    def quiet() -> tuple[list[Span] | None, str]:
        nonlocal count, changed_at
        spans = store.spans()
        if len(spans) != count:
            count, changed_at = len(spans), clock()
        return (
            spans if clock() - changed_at >= quiet_period else None
        ), f"{len(spans)} span(s), still arriving"

    try:
        return wait_until(
            quiet,
            awaited="the trace store to go quiet",
            timeout=max(quiet_period * 4, 1.0),
            clock=clock,
            sleep=sleep,
        )
    except WaitTimeout:
        return store.spans()




def wait_for_probe_logs(
    read_records: Callable[[], Sequence[Mapping[str, Any]]],
    keys: Mapping[str, Iterable[str]],
    *,
    completed_message: str,
    timeout: float,
    quiet_period: float = 1.5,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Mapping[str, Any]]:
    """Canonical log records once every probe has its ``completed_message`` record.

    ``keys`` maps a probe to the values that identify its records: correlation
    ids (response header, supplied value) and trace ids (hex). A record
    belongs to the probe when its ``correlation_id`` or its trace id is one of
    them. The wait also ends when no new record arrived for ``quiet_period``
    (a service whose records cannot be matched, or that logs no such record,
    has written all it will), and when ``timeout`` runs out; the records read
    so far are returned and the checks say what is missing.
    """
    wanted = {name: {str(k).lower() for k in values if k} for name, values in keys.items()}
    last_change = [clock(), -1]

    def probe() -> tuple[list[Mapping[str, Any]] | None, str]:
        records = list(read_records())
        if len(records) != last_change[1]:
            last_change[:] = [clock(), len(records)]
        found: set[str] = set()
        for record in records:
            if record.get("message") != completed_message:
                continue
            ids = {str(record.get("correlation_id", "")).lower(), trace_hex(record.get("trace_id", ""))}
            found.update(name for name, values in wanted.items() if ids & values)
        left = len(wanted) - len(found)
        quiet = clock() - last_change[0] >= quiet_period
        return (
            records if left == 0 or quiet else None
        ), f"{len(records)} record(s); {left} probe(s) not logged yet"

    try:
        return wait_until(
            probe,
            awaited=f"{completed_message} records of {len(keys)} probe request(s)",
            timeout=timeout,
            clock=clock,
            sleep=sleep,
        )
    except WaitTimeout:
        return list(read_records())
