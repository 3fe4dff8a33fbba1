"""The embedded OTLP receiver against the real OpenTelemetry SDK exporters.

Every test talks to a receiver on free loopback ports over real sockets: spans,
logs and metrics come from the SDK's OTLP exporters (HTTP with and without
gzip, gRPC), OTLP/JSON and broken requests are posted with httpx.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from conformance._exceptions import StackError
from conformance._ports import LOOPBACK
from conformance._wait import wait_until
from conformance.collect._traces import TraceStore, wait_for_trace
from conformance.stack._otlp import (
    OtlpDecodeError,
    OtlpReceiver,
    log_records_from_json,
    metric_points_from_json,
    spans_from_json,
    spans_from_proto,
)

REMOTE_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
REMOTE_SPAN_ID = 0xB7AD6B7169203331
TRACE_HEX = f"{REMOTE_TRACE_ID:032x}"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
SMALL_LIMIT = 64 * 1024

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "grpc_proxy")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exporters read OTEL_* and proxy variables; none from the developer's shell may leak in."""
    for name in list(os.environ):
        if name.startswith("OTEL_") or name.lower() in _PROXY_VARIABLES:
            monkeypatch.delenv(name)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as started:
        yield started


@pytest.fixture
def small_receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver(max_request_bytes=SMALL_LIMIT) as started:
        yield started


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def _resource() -> Resource:
    return Resource.create({"service.name": "orders-test", "deployment.environment": "test"})


def _remote_parent() -> Any:
    """A context continuing a traceparent (with tracestate) the harness would have sent."""
    parent = SpanContext(
        trace_id=REMOTE_TRACE_ID,
        span_id=REMOTE_SPAN_ID,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "opaque")]),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def _assert_receiver_healthy(receiver: OtlpReceiver, http: httpx.Client) -> None:
    response = http.post(f"{receiver.http_endpoint}/v1/traces", content=b"", headers=PROTOBUF)
    assert response.status_code == 200


# --------------------------------------------------------------------------- SDK exporters

EXPORTERS: dict[str, Callable[[OtlpReceiver], SpanExporter]] = {
    "http/protobuf": lambda r: HttpSpanExporter(endpoint=f"{r.http_endpoint}/v1/traces", timeout=5),
    "http/protobuf+gzip": lambda r: HttpSpanExporter(
        endpoint=f"{r.http_endpoint}/v1/traces", timeout=5, compression=Compression.Gzip
    ),
    "http/protobuf+deflate": lambda r: HttpSpanExporter(
        endpoint=f"{r.http_endpoint}/v1/traces", timeout=5, compression=Compression.Deflate
    ),
    "grpc": lambda r: GrpcSpanExporter(endpoint=r.grpc_endpoint, insecure=True, timeout=5),
    "grpc+gzip": lambda r: GrpcSpanExporter(
        endpoint=r.grpc_endpoint, insecure=True, timeout=5, compression=grpc.Compression.Gzip
    ),
}


@pytest.mark.parametrize("exporter_name", list(EXPORTERS))
def test_sdk_spans_arrive_normalised(receiver: OtlpReceiver, exporter_name: str) -> None:
    provider = TracerProvider(resource=_resource(), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(EXPORTERS[exporter_name](receiver)))
    tracer = provider.get_tracer("conformance.tests", "1.0")
    try:
        with tracer.start_as_current_span(
            "GET /orders/{id}",
            context=_remote_parent(),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "GET",
                "http.response.status_code": 500,
                "load.ratio": 0.25,
                "cache.hit": False,
                "tags": ["a", "b"],
                "codes": [1, 2],
            },
        ) as server:
            server.add_event("cache.miss", {"cache.key": "orders:1", "attempt": 2})
            with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT):
                pass
            server.set_status(Status(StatusCode.ERROR, "upstream failed"))
    finally:
        provider.shutdown()

    spans = {span.name: span for span in wait_for_trace(receiver, TRACE_HEX, timeout=10, quiet_period=0.05)}
    assert set(spans) == {"GET /orders/{id}", "SELECT orders"}
    server_span, client_span = spans["GET /orders/{id}"], spans["SELECT orders"]

    assert server_span.trace_id == client_span.trace_id == TRACE_HEX
    assert server_span.parent_span_id == f"{REMOTE_SPAN_ID:016x}"
    assert client_span.parent_span_id == server_span.span_id
    assert len(server_span.span_id) == 16
    assert server_span.span_id == server_span.span_id.lower()
    assert (server_span.kind, client_span.kind) == ("SERVER", "CLIENT")
    assert server_span.attributes == {
        "http.request.method": "GET",
        "http.response.status_code": 500,
        "load.ratio": 0.25,
        "cache.hit": False,
        "tags": ("a", "b"),
        "codes": (1, 2),
    }
    (event,) = server_span.events
    assert event.name == "cache.miss"
    assert event.attributes == {"cache.key": "orders:1", "attempt": 2}
    assert server_span.start_time_unix_nano <= event.time_unix_nano <= server_span.end_time_unix_nano
    assert server_span.resource_attributes["service.name"] == "orders-test"
    assert server_span.resource_attributes["deployment.environment"] == "test"
    assert server_span.service_name == "orders-test"
    assert server_span.trace_state == client_span.trace_state == "vendor=opaque"
    assert (server_span.status_code, server_span.status_message) == ("ERROR", "upstream failed")
    assert client_span.status_code == "UNSET"
    assert server_span.scope_name == "conformance.tests"

    protocol = "grpc" if exporter_name.startswith("grpc") else "http/protobuf"
    stats = receiver.stats()
    assert stats["requests"][protocol] == 2
    assert stats["spans"] == {"received": 2, "stored": 2, "dropped": 0, "rejected": 0}


def test_sdk_log_records_arrive_normalised(receiver: OtlpReceiver) -> None:
    provider = LoggerProvider(resource=_resource(), shutdown_on_exit=False)
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{receiver.http_endpoint}/v1/logs", timeout=5))
    )
    try:
        provider.get_logger("conformance.tests").emit(
            timestamp=1_700_000_000_000_000_000,
            context=_remote_parent(),
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body={"message": "disk low", "free_mb": 3},
            attributes={"component": "disk"},
        )
    finally:
        provider.shutdown()

    (record,) = wait_until(
        lambda: (receiver.log_records() or None, f"{len(receiver.log_records())} log record(s)"),
        awaited="the exported log record",
        timeout=10,
    )
    assert record.time_unix_nano == 1_700_000_000_000_000_000
    assert record.severity_text == "WARN"
    assert record.body == {"message": "disk low", "free_mb": 3}
    assert record.attributes == {"component": "disk"}
    assert record.resource_attributes["service.name"] == "orders-test"
    assert (record.trace_id, record.span_id) == (TRACE_HEX, f"{REMOTE_SPAN_ID:016x}")
    assert receiver.stats()["log_records"]["received"] == 1


def test_sdk_metrics_are_counted_by_name(receiver: OtlpReceiver) -> None:
    exporter = OTLPMetricExporter(endpoint=f"{receiver.http_endpoint}/v1/metrics", timeout=5)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader], resource=_resource(), shutdown_on_exit=False)
    try:
        meter = provider.get_meter("conformance.tests")
        created = meter.create_counter("orders.created")
        created.add(1, {"region": "eu"})
        created.add(2, {"region": "us"})
        meter.create_histogram("http.server.request.duration", unit="s").record(0.2)
        assert provider.force_flush(timeout_millis=10_000)
        assert receiver.metric_names() == ["http.server.request.duration", "orders.created"]
        assert receiver.stats()["metric_points"]["received"] == 3
    finally:
        provider.shutdown()


# --------------------------------------------------------------------------- OTLP/JSON


def _json_span(span_id: str, name: str, **fields: Any) -> dict[str, Any]:
    return {
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": span_id,
        "name": name,
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        **fields,
    }


JSON_TRACES: dict[str, Any] = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "json-scope", "version": "1"},
                    "spans": [
                        _json_span(
                            "EEE19B7EC3C1B174",
                            "server",
                            parentSpanId="",
                            kind=2,
                            traceState="congo=t61rcWkgMzE",
                            attributes=[
                                {"key": "s", "value": {"stringValue": "text"}},
                                {"key": "b", "value": {"boolValue": True}},
                                {"key": "i_string", "value": {"intValue": "42"}},
                                {"key": "i_number", "value": {"intValue": 7}},
                                {"key": "d", "value": {"doubleValue": 1.5}},
                                {
                                    "key": "raw",
                                    "value": {"bytesValue": base64.b64encode(b"\x00\x01").decode()},
                                },
                                {
                                    "key": "arr",
                                    "value": {
                                        "arrayValue": {"values": [{"stringValue": "x"}, {"intValue": "1"}]}
                                    },
                                },
                                {
                                    "key": "kv",
                                    "value": {
                                        "kvlistValue": {
                                            "values": [{"key": "inner", "value": {"boolValue": False}}]
                                        }
                                    },
                                },
                                {"key": "empty", "value": {}},
                            ],
                            events=[
                                {
                                    "timeUnixNano": "1544712660500000000",
                                    "name": "retry",
                                    "attributes": [{"key": "attempt", "value": {"intValue": "2"}}],
                                }
                            ],
                            status={"code": 2, "message": "boom"},
                            futureField={"ignored": True},
                        ),
                        _json_span(
                            "0102030405060708",
                            "client",
                            parentSpanId="eee19b7ec3c1b174",
                            kind="SPAN_KIND_CLIENT",
                            status={"code": "STATUS_CODE_OK"},
                        ),
                    ],
                }
            ],
        }
    ]
}


def test_otlp_json_spans_are_normalised(receiver: OtlpReceiver, http: httpx.Client) -> None:
    response = http.post(f"{receiver.http_endpoint}/v1/traces", json=JSON_TRACES)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    spans = {span.name: span for span in receiver.spans("5b8efff798038103d269b633813fc60c")}
    server, client = spans["server"], spans["client"]
    assert server.trace_id == "5b8efff798038103d269b633813fc60c"
    assert (server.span_id, server.parent_span_id) == ("eee19b7ec3c1b174", None)
    assert client.parent_span_id == "eee19b7ec3c1b174"
    assert (server.kind, client.kind) == ("SERVER", "CLIENT")
    assert server.attributes == {
        "s": "text",
        "b": True,
        "i_string": 42,
        "i_number": 7,
        "d": 1.5,
        "raw": b"\x00\x01",
        "arr": ("x", 1),
        "kv": {"inner": False},
        "empty": None,
    }
    assert server.events[0].name == "retry"
    assert server.events[0].time_unix_nano == 1544712660500000000
    assert server.events[0].attributes == {"attempt": 2}
    assert (server.status_code, server.status_message, client.status_code) == ("ERROR", "boom", "OK")
    assert server.start_time_unix_nano == 1544712660000000000
    assert server.trace_state == "congo=t61rcWkgMzE"
    assert server.resource_attributes == {"service.name": "json-svc"}
    assert server.scope_name == "json-scope"
    assert receiver.stats()["requests"]["http/json"] == 1


def test_spans_from_json_equals_the_protobuf_path() -> None:
    from_json = spans_from_json(json.dumps(JSON_TRACES).encode())
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[
                    ScopeSpans(
                        spans=[
                            ProtoSpan(
                                trace_id=bytes.fromhex("5b8efff798038103d269b633813fc60c"),
                                span_id=bytes.fromhex("0102030405060708"),
                                parent_span_id=bytes.fromhex("eee19b7ec3c1b174"),
                                name="client",
                                kind=ProtoSpan.SPAN_KIND_CLIENT,
                            )
                        ]
                    )
                ]
            )
        ]
    )
    (from_proto,) = spans_from_proto(request)
    assert [span.span_id for span in from_json] == ["eee19b7ec3c1b174", "0102030405060708"]
    assert (from_proto.trace_id, from_proto.parent_span_id, from_proto.kind) == (
        from_json[1].trace_id,
        from_json[1].parent_span_id,
        from_json[1].kind,
    )


def test_json_with_protobuf_style_base64_ids_is_accepted() -> None:
    trace_id = bytes.fromhex("5b8efff798038103d269b633813fc60c")
    payload = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": base64.b64encode(trace_id).decode(),
                                "spanId": base64.b64encode(bytes.fromhex("0102030405060708")).decode(),
                                "name": "b64",
                            }
                        ]
                    }
                ]
            }
        ]
    }
    (span,) = spans_from_json(json.dumps(payload).encode())
    assert (span.trace_id, span.span_id) == (trace_id.hex(), "0102030405060708")


@pytest.mark.parametrize("payload", [b"", b"[]", b"{", b'{"resourceSpans": 3}', b"\xff\xfe"])
def test_spans_from_json_raises_decode_error(payload: bytes) -> None:
    with pytest.raises(OtlpDecodeError):
        spans_from_json(payload)


def test_metric_points_from_json_counts_points() -> None:
    payload = {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {
                        "metrics": [
                            {"name": "up", "gauge": {"dataPoints": [{"asInt": "1"}, {"asDouble": 0.5}]}},
                            {"name": "empty"},
                        ]
                    }
                ]
            }
        ]
    }
    assert metric_points_from_json(json.dumps(payload).encode()) == {"up": 2, "empty": 0}


def test_log_records_from_json_reads_hex_ids_and_bodies() -> None:
    payload = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "observedTimeUnixNano": "1544712660300000000",
                                "severityNumber": 10,
                                "severityText": "Information",
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "EEE19B7EC3C1B174",
                                "body": {"stringValue": "Example log record"},
                                "attributes": [{"key": "string.attribute", "value": {"stringValue": "some"}}],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    (record,) = log_records_from_json(json.dumps(payload).encode())
    assert record.time_unix_nano == 1544712660300000000  # observed time stands in for a missing time
    assert (record.severity_text, record.body) == ("Information", "Example log record")
    assert (record.trace_id, record.span_id) == ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
    assert record.attributes == {"string.attribute": "some"}
    assert record.resource_attributes == {"service.name": "json-svc"}


def test_grpc_refuses_oversized_messages_and_reports_malformed_spans(small_receiver: OtlpReceiver) -> None:
    oversized = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[
                    ScopeSpans(
                        spans=[ProtoSpan(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="x" * SMALL_LIMIT)]
                    )
                ]
            )
        ]
    )
    malformed = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(scope_spans=[ScopeSpans(spans=[ProtoSpan(trace_id=b"\x01", name="short")])])
        ]
    )
    with grpc.insecure_channel(f"{LOOPBACK}:{small_receiver.grpc_port}") as channel:
        stub = TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Export(oversized, timeout=5)
        response = stub.Export(malformed, timeout=5)

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert response.partial_success.rejected_spans == 1
    assert "trace_id must be 16 bytes" in response.partial_success.error_message
    assert small_receiver.stats()["requests"]["grpc"] == 1


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_malformed_spans_are_refused_as_partial_success(
    receiver: OtlpReceiver, http: httpx.Client, encoding: str
) -> None:
    valid = ProtoSpan(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="valid")
    zero_trace = ProtoSpan(trace_id=bytes(16), span_id=b"\x03" * 8, name="zero-trace")
    short_span_id = ProtoSpan(trace_id=b"\x01" * 16, span_id=b"\x04" * 3, name="short-span-id")
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[valid, zero_trace, short_span_id])])]
    )
    if encoding == "json":
        document = {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {"traceId": "01" * 16, "spanId": "02" * 8, "name": "valid"},
                                {"traceId": "00" * 16, "spanId": "03" * 8, "name": "zero-trace"},
                                {"traceId": "01" * 16, "spanId": "040404", "name": "short-span-id"},
                            ]
                        }
                    ]
                }
            ]
        }
        response = http.post(f"{receiver.http_endpoint}/v1/traces", json=document)
        partial = response.json()["partialSuccess"]
        rejected, message = int(partial["rejectedSpans"]), partial["errorMessage"]
    else:
        response = http.post(
            f"{receiver.http_endpoint}/v1/traces", content=request.SerializeToString(), headers=PROTOBUF
        )
        parsed = ExportTraceServiceResponse.FromString(response.content)
        rejected, message = parsed.partial_success.rejected_spans, parsed.partial_success.error_message

    assert response.status_code == 200
    assert rejected == 2
    assert "zero-trace" in message
    assert "short-span-id" in message
    assert [span.name for span in receiver.spans()] == ["valid"]
    assert receiver.stats()["spans"]["rejected"] == 2


# --------------------------------------------------------------------------- refusals


def _gzip_bomb() -> bytes:
    return gzip.compress(bytes(16 * 1024 * 1024), compresslevel=9)


REFUSALS: list[tuple[str, str, str, dict[str, str], Callable[[], bytes], int]] = [
    ("garbage protobuf", "POST", "/v1/traces", PROTOBUF, lambda: b"\xff\xff\xff\xff", 400),
    ("garbage json", "POST", "/v1/logs", JSON, lambda: b"{not json", 400),
    ("json array", "POST", "/v1/metrics", JSON, lambda: b"[1, 2]", 400),
    ("json wrong type", "POST", "/v1/traces", JSON, lambda: b'{"resourceSpans": {"x": 1}}', 400),
    (
        "truncated gzip",
        "POST",
        "/v1/traces",
        {**PROTOBUF, "Content-Encoding": "gzip"},
        lambda: b"\x1f\x8b\x08",
        400,
    ),
    ("text/plain", "POST", "/v1/traces", {"Content-Type": "text/plain"}, lambda: b"hello", 415),
    ("no content type", "POST", "/v1/traces", {}, lambda: b"", 415),
    ("brotli", "POST", "/v1/traces", {**PROTOBUF, "Content-Encoding": "br"}, lambda: b"", 415),
    ("oversized", "POST", "/v1/traces", PROTOBUF, lambda: bytes(SMALL_LIMIT + 1), 413),
    ("gzip bomb", "POST", "/v1/traces", {**JSON, "Content-Encoding": "gzip"}, _gzip_bomb, 413),
    ("GET", "GET", "/v1/traces", {}, lambda: b"", 405),
    ("PUT", "PUT", "/v1/logs", PROTOBUF, lambda: b"", 405),
    ("HEAD", "HEAD", "/v1/metrics", {}, lambda: b"", 405),
    ("unknown path", "POST", "/v2/traces", PROTOBUF, lambda: b"", 404),
    ("GET unknown path", "GET", "/metrics", {}, lambda: b"", 404),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_bad_requests_are_refused_and_the_receiver_keeps_working(
    small_receiver: OtlpReceiver,
    http: httpx.Client,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Callable[[], bytes],
    status: int,
) -> None:
    response = http.request(method, f"{small_receiver.http_endpoint}{path}", content=body(), headers=headers)

    assert response.status_code == status
    if status == 405:
        assert response.headers["allow"] == "POST"
    if status in (400, 413) and headers.get("Content-Type") == "application/json":
        assert response.json()["message"]
    elif status in (400, 413, 415):
        # google.rpc.Status with only the message field (2, length-delimited).
        assert response.content.startswith(b"\x12")
    if method == "HEAD":
        assert response.content == b""
    assert sum(small_receiver.stats()["rejected"].values()) == 1
    _assert_receiver_healthy(small_receiver, http)


def test_chunked_bodies_are_read_and_bounded(small_receiver: OtlpReceiver, http: httpx.Client) -> None:
    url = f"{small_receiver.http_endpoint}/v1/traces"
    small = http.post(url, content=iter([b"{", b"}"]), headers=JSON)
    big = http.post(url, content=iter([bytes(SMALL_LIMIT // 2)] * 3), headers=PROTOBUF)

    assert (small.status_code, big.status_code) == (200, 413)
    _assert_receiver_healthy(small_receiver, http)


def test_expect_continue_with_oversized_length_is_refused_before_the_body(
    small_receiver: OtlpReceiver,
) -> None:
    with socket.create_connection((LOOPBACK, small_receiver.http_port), timeout=5) as connection:
        connection.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 999999999\r\nExpect: 100-continue\r\n\r\n"
        )
        status_line = connection.makefile("rb").readline()
    assert status_line.split()[1] == b"413"


#: Field names that steer generated JSON into the OTLP parser's deeper paths.
OTLP_JSON_KEYS = (
    *("resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "kind", "attributes", "status"),
    *("key", "value", "arrayValue", "kvlistValue", "values", "resourceLogs", "scopeLogs", "logRecords"),
    *("body", "resourceMetrics", "scopeMetrics", "metrics", "gauge", "dataPoints"),
)


@settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=st.one_of(
        st.binary(max_size=512),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(
                    st.sampled_from(OTLP_JSON_KEYS) | st.text(max_size=6),
                    children,
                    max_size=4,
                )
            ),
            max_leaves=24,
        ).map(lambda document: json.dumps(document).encode()),
    ),
    content_type=st.sampled_from(["application/x-protobuf", "application/json"]),
    path=st.sampled_from(["/v1/traces", "/v1/logs", "/v1/metrics"]),
)
def test_arbitrary_bodies_never_break_the_receiver(
    receiver: OtlpReceiver, http: httpx.Client, body: bytes, content_type: str, path: str
) -> None:
    # The receiver is shared by all examples on purpose: it must survive all of them.
    response = http.post(
        f"{receiver.http_endpoint}{path}", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code in (200, 400)
    assert receiver.stats()["rejected"]["internal_error"] == 0
    _assert_receiver_healthy(receiver, http)


# --------------------------------------------------------------------------- lifecycle


@pytest.mark.parametrize("host", ["0.0.0.0", "localhost", "::1", "192.0.2.10"])
def test_only_loopback_can_be_bound(host: str) -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        OtlpReceiver(host=host)


def test_stop_is_idempotent_and_frees_both_ports(http: httpx.Client) -> None:
    receiver = OtlpReceiver()
    receiver.stop()  # before start: nothing to do
    receiver.start()
    ports = (receiver.http_port, receiver.grpc_port)
    _assert_receiver_healthy(receiver, http)  # leaves a kept-alive connection open

    receiver.stop()
    receiver.stop()

    with pytest.raises(StackError, match="not running"):
        _ = receiver.http_endpoint
    with OtlpReceiver(http_port=ports[0], grpc_port=ports[1]) as again:
        assert (again.http_port, again.grpc_port) == ports
        _assert_receiver_healthy(again, http)


@pytest.mark.parametrize("taken", ["http", "grpc"])
def test_a_taken_port_is_a_stack_error(taken: str) -> None:
    with socket.socket() as blocker:
        blocker.bind((LOOPBACK, 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        receiver = OtlpReceiver(**{f"{taken}_port": port})
        with pytest.raises(StackError, match=f"{LOOPBACK}:{port}"):
            receiver.start()
        assert receiver.describe() == "embedded OTLP receiver (not running)"
        receiver.stop()


def test_the_receiver_is_a_trace_store(receiver: OtlpReceiver) -> None:
    store: TraceStore = receiver
    assert store.spans() == []
    assert store.describe() == (
        f"embedded OTLP receiver at {receiver.http_endpoint} (http/protobuf, http/json)"
        f" and {receiver.grpc_endpoint} (grpc)"
    )
    assert receiver.http_endpoint == f"http://127.0.0.1:{receiver.http_port}"
    assert receiver.grpc_endpoint == f"http://127.0.0.1:{receiver.grpc_port}"


def test_stored_spans_are_capped_and_drops_counted(http: httpx.Client) -> None:
    spans = [
        ProtoSpan(trace_id=b"\x01" * 16, span_id=bytes([0, 0, 0, 0, 0, 0, 0, n]), name=f"s{n}")
        for n in range(1, 6)
    ]
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
    with OtlpReceiver(max_stored_items=3) as receiver:
        response = http.post(
            f"{receiver.http_endpoint}/v1/traces", content=request.SerializeToString(), headers=PROTOBUF
        )
        assert response.status_code == 200
        assert [span.name for span in receiver.spans("01" * 16)] == ["s1", "s2", "s3"]
        assert receiver.stats()["spans"] == {"received": 5, "stored": 3, "dropped": 2, "rejected": 0}
