"""The embedded OTLP receiver: where the service under test sends its telemetry.

The stack starts one :class:`OtlpReceiver` per run and points the service's
OTLP exporter at it, so trace checks need no Jaeger or Collector. It speaks
OTLP/HTTP (binary protobuf and JSON, optionally gzip/deflate-compressed) and
OTLP/gRPC, on 127.0.0.1 only, and keeps what arrives as the normalised values of
:mod:`conformance.telemetry`. It implements the ``TraceStore`` protocol of
:mod:`conformance.collect._traces`.

The conversion functions are pure and usable on their own (e.g. on a captured
payload). Spec followed: opentelemetry-proto ``docs/specification.md`` (OTLP/HTTP
request, response and failure sections; JSON Protobuf Encoding).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import socket
import socketserver
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import grpc  # type: ignore[import-untyped]
from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError, Message  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

from conformance._exceptions import StackError
from conformance._ports import LOOPBACK
from conformance.telemetry import OtlpLogRecord, OtlpMetricPoints, Span, SpanEvent

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_MAX_STORED_ITEMS",
    "OtlpDecodeError",
    "OtlpReceiver",
    "log_records_from_json",
    "log_records_from_proto",
    "metric_points_from_json",
    "metric_points_from_proto",
    "spans_from_json",
    "spans_from_proto",
]

_logger = logging.getLogger(__name__)

#: Largest request body accepted, before and after decompression. The spec
#: recommends 20 MiB for a shared collector; one service under test needs far less.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024

#: Spans (and, separately, log records) kept in memory; beyond this they are counted as dropped.
DEFAULT_MAX_STORED_ITEMS = 200_000

_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"

_M = TypeVar("_M", bound=Message)


class OtlpDecodeError(ValueError):
    """A payload that is not a valid OTLP request; the receiver answers it with HTTP 400."""


# --------------------------------------------------------------------------- conversion


def _any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as a plain Python value; arrays become tuples, kvlists dicts."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(_any_value(item) for item in value.array_value.values)
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, which)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _any_value(pair.value) for pair in pairs}


def _enum_name(name_of: Callable[[int], str], number: int, prefix: str) -> str:
    """``SPAN_KIND_SERVER`` -> ``SERVER``; a number the schema does not know stays a number."""
    try:
        return name_of(number).removeprefix(prefix)
    except ValueError:
        return str(number)


def _id_problem(field: str, raw: bytes, size: int, *, optional: bool = False) -> str:
    if optional and raw in (b"", bytes(size)):
        return ""
    if len(raw) != size:
        return f"{field} must be {size} bytes, got {len(raw)}"
    if raw == bytes(size):
        return f"{field} must not be all zeros"
    return ""


def _convert_trace_request(request: ExportTraceServiceRequest) -> tuple[list[Span], list[str]]:
    """The valid spans of a request, and one problem line per span left out."""
    spans: list[Span] = []
    problems: list[str] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name
            for span in scope_spans.spans:
                problem = (
                    _id_problem("trace_id", span.trace_id, 16)
                    or _id_problem("span_id", span.span_id, 8)
                    or _id_problem("parent_span_id", span.parent_span_id, 8, optional=True)
                )
                if problem:
                    problems.append(f"span {span.name!r}: {problem}")
                    continue
                parent = span.parent_span_id
                spans.append(
                    Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=parent.hex() if parent and parent != bytes(8) else None,
                        name=span.name,
                        kind=_enum_name(trace_pb2.Span.SpanKind.Name, span.kind, "SPAN_KIND_"),
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                        attributes=_attributes(span.attributes),
                        resource_attributes=dict(resource),
                        events=tuple(
                            SpanEvent(
                                name=event.name,
                                time_unix_nano=event.time_unix_nano,
                                attributes=_attributes(event.attributes),
                            )
                            for event in span.events
                        ),
                        status_code=_enum_name(
                            trace_pb2.Status.StatusCode.Name, span.status.code, "STATUS_CODE_"
                        ),
                        status_message=span.status.message,
                        trace_state=span.trace_state,
                        scope_name=scope_name,
                    )
                )
    return spans, problems


def _convert_logs_request(request: ExportLogsServiceRequest) -> list[OtlpLogRecord]:
    records: list[OtlpLogRecord] = []
    for resource_logs in request.resource_logs:
        resource = _attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            scope_name = scope_logs.scope.name
            for record in scope_logs.log_records:
                records.append(
                    OtlpLogRecord(
                        # time_unix_nano is optional in OTLP; observed time is the fallback.
                        time_unix_nano=record.time_unix_nano or record.observed_time_unix_nano,
                        severity_text=record.severity_text,
                        body=_any_value(record.body),
                        attributes=_attributes(record.attributes),
                        resource_attributes=dict(resource),
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        severity_number=record.severity_number,
                        scope_name=scope_name,
                    )
                )
    return records


def _frozen(value: Any) -> Any:
    """A hashable stand-in for an attribute value (kvlists are dicts)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, tuple | list):
        return tuple(_frozen(v) for v in value)
    return value


def _metric_attribute_sets(request: ExportMetricsServiceRequest) -> dict[Any, OtlpMetricPoints]:
    """Each distinct (metric name, point attributes, resource) of a request, with its point count."""
    first: dict[Any, tuple[str, dict[str, Any], dict[str, Any]]] = {}
    counts: Counter[Any] = Counter()
    for resource_metrics in request.resource_metrics:
        resource = _attributes(resource_metrics.resource.attributes)
        resource_key = _frozen(resource)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                data = metric.WhichOneof("data")
                for point in getattr(metric, data).data_points if data else ():
                    attributes = _attributes(point.attributes)
                    key = (metric.name, _frozen(attributes), resource_key)
                    counts[key] += 1
                    first.setdefault(key, (metric.name, attributes, resource))
    return {key: OtlpMetricPoints(*first[key], count) for key, count in counts.items()}


def _convert_metrics_request(request: ExportMetricsServiceRequest) -> dict[str, int]:
    points: dict[str, int] = {}
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                data = metric.WhichOneof("data")
                count = len(getattr(metric, data).data_points) if data else 0
                points[metric.name] = points.get(metric.name, 0) + count
    return points


# OTLP/JSON deviates from protobuf's JSON mapping only in its ids: hex, not base64.
# json_format handles everything else (camelCase or original names, int64 as
# string or number, enums as int or name, bytes values in base64), so the ids
# are rewritten to base64 before parsing. A string that is not even-length hex
# is left alone: some exporters send protobuf's base64 ids, and a correctly
# sized base64 id always carries "=" padding, so the two cannot be confused.
_JSON_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    # Iterative, so a deeply nested payload cannot exhaust the Python stack.
    pending: list[Any] = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _JSON_ID_KEYS and isinstance(value, str) and _HEX.fullmatch(value):
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                elif isinstance(value, dict | list):
                    pending.append(value)
        elif isinstance(node, list):
            pending.extend(item for item in node if isinstance(item, dict | list))


def _parse_json(payload: bytes, message: _M) -> _M:
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise OtlpDecodeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise OtlpDecodeError("an OTLP/JSON body must be a JSON object")
    _hex_ids_to_base64(document)
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise OtlpDecodeError(f"body is not a valid {message.DESCRIPTOR.name}: {exc}") from None
    return message


def _parse_protobuf(payload: bytes, message: _M) -> _M:
    try:
        message.ParseFromString(payload)
    except (DecodeError, ValueError, RecursionError) as exc:
        raise OtlpDecodeError(f"body is not a valid {message.DESCRIPTOR.name}: {exc}") from None
    return message


def spans_from_proto(request: ExportTraceServiceRequest) -> list[Span]:
    """The spans of a decoded request, normalised.

    Spans whose trace or span id is malformed (wrong length, all zeros) are left
    out; the receiver reports them to the exporter as a partial success.
    """
    return _convert_trace_request(request)[0]


def spans_from_json(payload: bytes) -> list[Span]:
    """The spans of an OTLP/JSON ``ExportTraceServiceRequest`` body; raises :class:`OtlpDecodeError`."""
    return spans_from_proto(_parse_json(payload, ExportTraceServiceRequest()))


def log_records_from_proto(request: ExportLogsServiceRequest) -> list[OtlpLogRecord]:
    return _convert_logs_request(request)


def log_records_from_json(payload: bytes) -> list[OtlpLogRecord]:
    """The records of an OTLP/JSON ``ExportLogsServiceRequest`` body; raises :class:`OtlpDecodeError`."""
    return _convert_logs_request(_parse_json(payload, ExportLogsServiceRequest()))


def metric_points_from_proto(request: ExportMetricsServiceRequest) -> dict[str, int]:
    """Metric name -> number of data points in the request (values are not kept)."""
    return _convert_metrics_request(request)


def metric_points_from_json(payload: bytes) -> dict[str, int]:
    """Like :func:`metric_points_from_proto` for an OTLP/JSON body; raises :class:`OtlpDecodeError`."""
    return _convert_metrics_request(_parse_json(payload, ExportMetricsServiceRequest()))


# --------------------------------------------------------------------------- OTLP/HTTP


class _Rejected(Exception):
    """Ends an OTLP/HTTP request with an error status; ``reason`` keys the stats."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


_REJECTION_REASONS = (
    "bad_request",
    "internal_error",
    "length_required",
    "method_not_allowed",
    "not_found",
    "too_large",
    "unsupported_media_type",
)


def _status_body(message: str, media_type: str) -> bytes:
    """A ``google.rpc.Status`` carrying only ``message``, as the spec asks of 4xx/5xx bodies.

    Encoded by hand: the generated class lives in googleapis-common-protos, which
    is not a dependency, and the message is one string field (number 2).
    """
    if media_type == _JSON:
        return json.dumps({"message": message}).encode()
    text = message.encode()
    length = bytearray()
    remaining = len(text)
    while True:
        byte, remaining = remaining & 0x7F, remaining >> 7
        length.append(byte | (0x80 if remaining else 0))
        if not remaining:
            break
    return b"\x12" + bytes(length) + text


def _media_type(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


def _decompress(body: bytes, content_encoding: str, limit: int) -> bytes:
    """Inflate ``body`` without ever holding more than ``limit`` + 1 bytes of output."""
    if content_encoding in ("", "identity"):
        return body
    # gzip may hold several members; "deflate" is zlib-wrapped (RFC 9110), raw deflate is
    # accepted too because some clients send it.
    wbits = 16 + zlib.MAX_WBITS if content_encoding == "gzip" else zlib.MAX_WBITS
    output = bytearray()
    data = body
    while data:
        inflater = zlib.decompressobj(wbits)
        try:
            output += inflater.decompress(data, limit + 1 - len(output))
        except zlib.error as exc:
            if content_encoding == "deflate" and wbits == zlib.MAX_WBITS and not output:
                wbits = -zlib.MAX_WBITS
                continue
            raise _Rejected(400, "bad_request", f"cannot {content_encoding}-decode the body: {exc}") from None
        if len(output) > limit:
            raise _Rejected(413, "too_large", f"body inflates to more than {limit} bytes")
        if not inflater.eof:
            raise _Rejected(400, "bad_request", f"{content_encoding} body is truncated")
        data = inflater.unused_data
        if data and content_encoding != "gzip":
            raise _Rejected(400, "bad_request", f"trailing bytes after the {content_encoding} stream")
    return bytes(output)


@dataclass(frozen=True, slots=True)
class _Signal:
    new_request: Callable[[], Message]
    ingest: Callable[[Any, str], Message]


_MAX_LINE = 4096
_DRAIN_LIMIT = 16 * 1024 * 1024
_HEX_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")


class _OtlpHttpHandler(BaseHTTPRequestHandler):
    server: _OtlpHttpServer
    protocol_version = "HTTP/1.1"
    server_version = "obsconform-otlp"
    sys_version = ""
    #: Socket timeout, so a stalled client cannot hold a handler thread forever.
    timeout = 30
    #: Headers and body go out in separate writes; with Nagle on, the body waits
    #: for the client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True
    #: Whether the current request's body is still unread on the socket.
    _body_pending = False

    def parse_request(self) -> bool:
        self._body_pending = True
        return super().parse_request()

    def do_POST(self) -> None:
        media_type = ""
        try:
            path = urlsplit(self.path).path
            signal = self.server.receiver._signals.get(path)
            if signal is None:
                raise _Rejected(
                    404, "not_found", f"no OTLP endpoint at {path}; use /v1/traces, /v1/logs or /v1/metrics"
                )
            media_type = _media_type(self.headers.get("Content-Type", ""))
            if media_type not in (_PROTOBUF, _JSON):
                received = media_type or "none"
                media_type = ""
                raise _Rejected(
                    415,
                    "unsupported_media_type",
                    f"Content-Type must be {_PROTOBUF} or {_JSON}, got {received}",
                )
            content_encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
            if content_encoding not in ("", "identity", "gzip", "deflate"):
                raise _Rejected(
                    415,
                    "unsupported_media_type",
                    f"Content-Encoding {content_encoding} is not supported; use gzip",
                )
            limit = self.server.receiver.max_request_bytes
            payload = _decompress(self._read_body(limit), content_encoding, limit)
            try:
                if media_type == _JSON:
                    request = _parse_json(payload, signal.new_request())
                else:
                    request = _parse_protobuf(payload, signal.new_request())
            except OtlpDecodeError as exc:
                raise _Rejected(400, "bad_request", str(exc)) from None
            protocol = "http/json" if media_type == _JSON else "http/protobuf"
            response = signal.ingest(request, protocol)
            if media_type == _JSON:
                body = json_format.MessageToJson(response, indent=None).encode()
            else:
                body = response.SerializeToString()
            self._send(200, media_type, body)
        except _Rejected as rejection:
            self._send_rejection(rejection, media_type)
        except OSError:
            self.close_connection = True  # the client went away or stalled; nobody to answer
        except Exception:
            _logger.exception("OTLP receiver failed on POST %s", self.path)
            failure = _Rejected(500, "internal_error", "the receiver failed; see the harness log")
            self._send_rejection(failure, "")

    def _not_post(self) -> None:
        path = urlsplit(self.path).path
        if path in self.server.receiver._signals:
            message = f"{self.command} is not allowed; OTLP/HTTP uses POST"
            rejection = _Rejected(405, "method_not_allowed", message)
        else:
            rejection = _Rejected(404, "not_found", f"no OTLP endpoint at {path}")
        self._send_rejection(rejection, "", allow="POST" if rejection.status == 405 else "")

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_post

    def handle_expect_100(self) -> bool:
        # Refuse an announced oversized body before the client sends it.
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.server.receiver.max_request_bytes:
            self._body_pending = False  # the client waits for our answer before sending it
            self.close_connection = True
            self._send_rejection(self._too_large(int(length)), "")
            return False
        return super().handle_expect_100()

    def _too_large(self, length: int) -> _Rejected:
        limit = self.server.receiver.max_request_bytes
        return _Rejected(413, "too_large", f"body of {length} bytes exceeds the {limit}-byte limit")

    def _read_body(self, limit: int) -> bytes:
        self._body_pending = False
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        header = self.headers.get("Content-Length")
        if header is None:
            self.close_connection = True
            raise _Rejected(411, "length_required", "send Content-Length or chunked Transfer-Encoding")
        if not header.strip().isdigit():
            self.close_connection = True
            raise _Rejected(400, "bad_request", f"invalid Content-Length {header!r}")
        length = int(header)
        if length > limit:
            self._body_pending = True  # discarded when the 413 is sent
            raise self._too_large(length)
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            raise _Rejected(400, "bad_request", "body is shorter than Content-Length")
        return body

    def _discard_body(self) -> None:
        """Read and throw away a refused request's body, then close the connection.

        Closing alone would leave the body to be parsed as the next request, or,
        with unread data on the socket, make the kernel reset the connection
        before the client reads the answer.
        """
        self._body_pending = False
        self.close_connection = True
        header = self.headers.get("Content-Length", "").strip()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower() or not header.isdigit():
            return
        remaining = int(header) if int(header) <= _DRAIN_LIMIT else 0
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_field = self._read_line().split(b";", 1)[0].strip()
            if not _HEX_SIZE.fullmatch(size_field):
                self.close_connection = True
                raise _Rejected(400, "bad_request", "malformed chunk size")
            size = int(size_field, 16)
            if size == 0:
                break
            total += size
            if total > limit:
                self.close_connection = True
                raise self._too_large(total)
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.read(2) != b"\r\n":
                self.close_connection = True
                raise _Rejected(400, "bad_request", "truncated chunk")
            parts.append(chunk)
        while self._read_line() not in (b"\r\n", b"\n"):  # trailer fields, ignored
            pass
        return b"".join(parts)

    def _read_line(self) -> bytes:
        line = self.rfile.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE or not line.endswith(b"\n"):
            self.close_connection = True
            raise _Rejected(400, "bad_request", "malformed chunked body")
        return line

    def _send_rejection(self, rejection: _Rejected, media_type: str, *, allow: str = "") -> None:
        self.server.receiver._count_rejection(rejection.reason)
        if rejection.status in (404, 405):
            content_type, body = "text/plain; charset=utf-8", rejection.message.encode()
        else:
            content_type = media_type or _PROTOBUF
            body = _status_body(rejection.message, content_type)
        try:
            if self._body_pending:
                self._discard_body()
            self._send(rejection.status, content_type, body, allow=allow)
        except OSError:
            self.close_connection = True

    def _send(self, status: int, content_type: str, body: bytes, *, allow: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if allow:
            self.send_header("Allow", allow)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        _logger.debug("OTLP/HTTP %s " + format, self.client_address[0], *args)


class _OtlpHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, receiver: OtlpReceiver) -> None:
        self.receiver = receiver
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__((LOOPBACK, port), _OtlpHttpHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host name (getfqdn), which can stall.
        socketserver.TCPServer.server_bind(self)
        self.server_name = LOOPBACK
        self.server_port = self.server_address[1]

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections[request] = threading.current_thread()
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(request, None)

    def close_connections(self, timeout: float) -> None:
        """End kept-alive connections and wait (bounded) for their handler threads."""
        with self._connections_lock:
            connections = list(self._connections.items())
        for connection, _ in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in connections:
            thread.join(max(deadline - time.monotonic(), 0))


# --------------------------------------------------------------------------- OTLP/gRPC


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
        return self._receiver._ingest_traces(request, "grpc")


class _LogsServicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: ExportLogsServiceRequest, context: Any) -> ExportLogsServiceResponse:
        return self._receiver._ingest_logs(request, "grpc")


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: ExportMetricsServiceRequest, context: Any) -> ExportMetricsServiceResponse:
        return self._receiver._ingest_metrics(request, "grpc")


# --------------------------------------------------------------------------- the receiver


_PROTOCOLS = ("http/protobuf", "http/json", "grpc")


class OtlpReceiver:
    """OTLP/HTTP and OTLP/gRPC on 127.0.0.1, keeping spans, log records, metric names and
    the distinct attribute sets of metric points.

    Port 0 lets the OS pick (the default, and what tests should use). Storage is
    thread-safe and bounded: past ``max_stored_items`` spans (or log records) new
    ones are counted as dropped rather than kept. Malformed spans are refused
    with an OTLP partial success, so the exporter learns about them.
    """

    def __init__(
        self,
        host: str = LOOPBACK,
        http_port: int = 0,
        grpc_port: int = 0,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        *,
        max_stored_items: int = DEFAULT_MAX_STORED_ITEMS,
        stop_timeout: float = 5.0,
    ) -> None:
        if host != LOOPBACK:
            raise ValueError(f"the OTLP receiver binds {LOOPBACK} only, not {host!r}")
        for name, port in (("http_port", http_port), ("grpc_port", grpc_port)):
            if not 0 <= port <= 65535:
                raise ValueError(f"{name} must be 0..65535, got {port}")
        if max_request_bytes < 1:
            raise ValueError(f"max_request_bytes must be positive, got {max_request_bytes}")
        self._max_request_bytes = max_request_bytes
        self._requested_ports = (http_port, grpc_port)
        self._max_stored = max_stored_items
        self._stop_timeout = stop_timeout
        self._signals: dict[str, _Signal] = {
            "/v1/traces": _Signal(ExportTraceServiceRequest, self._ingest_traces),
            "/v1/logs": _Signal(ExportLogsServiceRequest, self._ingest_logs),
            "/v1/metrics": _Signal(ExportMetricsServiceRequest, self._ingest_metrics),
        }
        self._lock = threading.Lock()
        self._spans: list[Span] = []
        self._spans_by_trace: dict[str, list[Span]] = {}
        self._log_records: list[OtlpLogRecord] = []
        self._metric_points: dict[str, int] = {}
        self._metric_sets: dict[Any, OtlpMetricPoints] = {}
        self._requests: Counter[str] = Counter(dict.fromkeys(_PROTOCOLS, 0))
        self._rejected: Counter[str] = Counter(dict.fromkeys(_REJECTION_REASONS, 0))
        self._counts: Counter[str] = Counter()
        self._http_server: _OtlpHttpServer | None = None
        self._http_thread: threading.Thread | None = None
        self._grpc_server: Any = None
        self._grpc_executor: ThreadPoolExecutor | None = None
        self._ports: tuple[int, int] | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> OtlpReceiver:
        if self._ports is not None:
            raise StackError("the OTLP receiver is already running", hint="call stop() first")
        http_port, grpc_port = self._requested_ports
        try:
            self._http_server = _OtlpHttpServer(http_port, self)
        except OSError as exc:
            raise StackError(
                f"the OTLP receiver could not bind OTLP/HTTP on {LOOPBACK}:{http_port}: {exc}",
                hint="use port 0 to let the OS pick a free port",
            ) from exc
        self._http_thread = threading.Thread(
            target=self._http_server.serve_forever,
            kwargs={"poll_interval": 0.05},  # also how long stop() waits for it
            name="otlp-http-receiver",
            daemon=True,
        )
        self._http_thread.start()
        try:
            bound_grpc_port = self._start_grpc(grpc_port)
        except BaseException:
            self._stop_http()
            raise
        self._ports = (self._http_server.server_address[1], bound_grpc_port)
        _logger.info("started %s", self.describe())
        return self

    def _start_grpc(self, port: int) -> int:
        self._grpc_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="otlp-grpc-receiver")
        server = grpc.server(
            self._grpc_executor,
            options=[
                ("grpc.max_receive_message_length", self._max_request_bytes),
                # Without this a second server could silently share the port.
                ("grpc.so_reuseport", 0),
            ],
        )
        registrations: tuple[tuple[Callable[[Any, Any], None], object], ...] = (
            (trace_service_pb2_grpc.add_TraceServiceServicer_to_server, _TraceServicer(self)),
            (logs_service_pb2_grpc.add_LogsServiceServicer_to_server, _LogsServicer(self)),
            (metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server, _MetricsServicer(self)),
        )
        for register, servicer in registrations:
            register(servicer, server)
        try:
            bound: int = server.add_insecure_port(f"{LOOPBACK}:{port}")
        except RuntimeError as exc:
            bound, failure = 0, str(exc)
        else:
            failure = "port unavailable"
        if not bound:
            self._grpc_executor.shutdown(wait=False)
            self._grpc_executor = None
            raise StackError(
                f"the OTLP receiver could not bind OTLP/gRPC on {LOOPBACK}:{port}: {failure}",
                hint="use port 0 to let the OS pick a free port",
            )
        server.start()
        self._grpc_server = server
        return bound

    def stop(self) -> None:
        """Stop both servers; safe to call twice or before :meth:`start`."""
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None).wait(self._stop_timeout)
            self._grpc_server = None
        if self._grpc_executor is not None:
            self._grpc_executor.shutdown(wait=False, cancel_futures=True)
            self._grpc_executor = None
        self._stop_http()
        self._ports = None

    def _stop_http(self) -> None:
        server, thread = self._http_server, self._http_thread
        self._http_server = self._http_thread = None
        if server is None:
            return
        if thread is not None and thread.is_alive():
            server.shutdown()
            thread.join(self._stop_timeout)
        server.server_close()
        server.close_connections(self._stop_timeout)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- addresses

    @property
    def max_request_bytes(self) -> int:
        """Largest request accepted, compressed or not (HTTP answers 413, gRPC RESOURCE_EXHAUSTED)."""
        return self._max_request_bytes

    def _bound_ports(self) -> tuple[int, int]:
        if self._ports is None:
            raise StackError("the OTLP receiver is not running", hint="call start() first")
        return self._ports

    @property
    def http_port(self) -> int:
        return self._bound_ports()[0]

    @property
    def grpc_port(self) -> int:
        return self._bound_ports()[1]

    @property
    def http_endpoint(self) -> str:
        """Base URL for OTLP/HTTP; exporters append ``/v1/traces`` etc."""
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.grpc_port}"

    def describe(self) -> str:
        if self._ports is None:
            return "embedded OTLP receiver (not running)"
        return (
            f"embedded OTLP receiver at {self.http_endpoint} (http/protobuf, http/json)"
            f" and {self.grpc_endpoint} (grpc)"
        )

    # ----------------------------------------------------------------- ingestion

    def _ingest_traces(self, request: ExportTraceServiceRequest, protocol: str) -> ExportTraceServiceResponse:
        spans, problems = _convert_trace_request(request)
        with self._lock:
            self._requests[protocol] += 1
            kept = spans[: max(self._max_stored - len(self._spans), 0)]
            self._spans.extend(kept)
            for span in kept:
                self._spans_by_trace.setdefault(span.trace_id, []).append(span)
            self._counts["spans_received"] += len(spans)
            self._counts["spans_dropped"] += len(spans) - len(kept)
            self._counts["spans_rejected"] += len(problems)
        response = ExportTraceServiceResponse()
        if problems:
            response.partial_success.rejected_spans = len(problems)
            shown = "; ".join(problems[:3])
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            response.partial_success.error_message = f"rejected malformed spans: {shown}{more}"
        return response

    def _ingest_logs(self, request: ExportLogsServiceRequest, protocol: str) -> ExportLogsServiceResponse:
        records = _convert_logs_request(request)
        with self._lock:
            self._requests[protocol] += 1
            kept = records[: max(self._max_stored - len(self._log_records), 0)]
            self._log_records.extend(kept)
            self._counts["log_records_received"] += len(records)
            self._counts["log_records_dropped"] += len(records) - len(kept)
        return ExportLogsServiceResponse()

    def _ingest_metrics(
        self, request: ExportMetricsServiceRequest, protocol: str
    ) -> ExportMetricsServiceResponse:
        points = _convert_metrics_request(request)
        sets = _metric_attribute_sets(request)
        with self._lock:
            self._requests[protocol] += 1
            for name, count in points.items():
                self._metric_points[name] = self._metric_points.get(name, 0) + count
            for key, found in sets.items():
                kept = self._metric_sets.get(key)
                if kept is not None:
                    self._metric_sets[key] = OtlpMetricPoints(
                        found.name, found.attributes, found.resource_attributes, kept.count + found.count
                    )
                elif len(self._metric_sets) < self._max_stored:
                    self._metric_sets[key] = found
            self._counts["metric_points_received"] += sum(points.values())
        return ExportMetricsServiceResponse()

    def _count_rejection(self, reason: str) -> None:
        with self._lock:
            self._rejected[reason] += 1

    # ----------------------------------------------------------------- accessors

    def spans(self, trace_id: str | None = None) -> list[Span]:
        """Spans received so far, in arrival order; only one trace's when ``trace_id`` is given."""
        with self._lock:
            if trace_id is None:
                return list(self._spans)
            return list(self._spans_by_trace.get(trace_id.lower(), ()))

    def log_records(self) -> list[OtlpLogRecord]:
        with self._lock:
            return list(self._log_records)

    def metric_points(self) -> list[OtlpMetricPoints]:
        """Each distinct metric name, point attributes and resource received so far, in
        arrival order (at most ``max_stored_items`` of them), with how many points had them."""
        with self._lock:
            return list(self._metric_sets.values())

    def metric_names(self) -> list[str]:
        """Names of the metrics received so far, sorted."""
        with self._lock:
            return sorted(self._metric_points)

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters for the report and for diagnosing a missing trace.

        ``requests`` counts accepted requests per protocol; ``rejected`` counts
        HTTP requests refused, by reason (gRPC refuses oversized messages itself,
        uncounted); ``spans``/``log_records``/``metric_points`` count items.
        """
        with self._lock:
            counts = self._counts
            return {
                "requests": dict(self._requests),
                "rejected": dict(self._rejected),
                "spans": {
                    "received": counts["spans_received"],
                    "stored": len(self._spans),
                    "dropped": counts["spans_dropped"],
                    "rejected": counts["spans_rejected"],
                },
                "log_records": {
                    "received": counts["log_records_received"],
                    "stored": len(self._log_records),
                    "dropped": counts["log_records_dropped"],
                },
                "metric_points": {"received": counts["metric_points_received"]},
            }
