"""The Jaeger query client against a double of Jaeger's query API.

The documented response shapes are tested here against
:class:`JaegerQueryDouble`, a real HTTP server on
loopback that serves spans made by the real OpenTelemetry SDK in the shapes
Jaeger documents: ``/api/v3/traces/{id}`` as OTLP ``TracesData`` JSON in the
gRPC gateway's ``{"result": …}`` envelope (jaeger-idl ``api_v3/query_service.proto``,
ids in hex, enums as numbers as in Jaeger's own ``GetTrace.json`` snapshot),
and ``/api/traces/{id}`` in the UI's JSON (``model/json/model.go``: typed tags,
``CHILD_OF`` references, microsecond times, processes), with Jaeger's 404 bodies.
Both must come out as the same spans the embedded OTLP receiver makes of the
same SDK spans. The real Jaeger v2 that ``scripts/build-telemetry`` builds is read
with this client in ``test_local_telemetry.py`` (its raw API v3 answers the very
spans the receiver gets).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from conformance._exceptions import StackError, WaitTimeout
from conformance._ports import LOOPBACK
from conformance.collect._jaeger import JaegerTraceStore, spans_from_jaeger_v1, spans_from_jaeger_v3
from conformance.collect._traces import wait_for_trace
from conformance.stack._otlp import spans_from_proto

REMOTE_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
REMOTE_PARENT = 0x00F067AA0BA902B7
TRACE_HEX = format(REMOTE_TRACE, "032x")
T0 = 1_733_480_000_000_000_000  # ns, a whole number of microseconds (Jaeger v1 keeps µs)


def sdk_spans() -> list[ReadableSpan]:
    """A SERVER span continuing a remote parent (with tracestate) and a failing CLIENT child."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc", "service.version": "1.2.3"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("obsconform.test", "0.1")
    remote = SpanContext(
        REMOTE_TRACE,
        REMOTE_PARENT,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("congo", "t61rcWkgMzE")]),
    )
    server = tracer.start_span(
        "GET /models",
        context=set_span_in_context(NonRecordingSpan(remote)),
        kind=SpanKind.SERVER,
        start_time=T0,
        attributes={
            "http.request.method": "GET",
            "http.response.status_code": 200,
            "user_agent.original": "obsconform-probe/1",
            "ok": True,
        },
    )
    child = tracer.start_span(
        "provider.call",
        context=set_span_in_context(server),
        kind=SpanKind.CLIENT,
        start_time=T0 + 1_000,
        attributes={"llm.model": "fake", "ratio": 0.5},
    )
    child.add_event("retry", {"attempt": 2}, timestamp=T0 + 2_000)
    child.set_status(Status(StatusCode.ERROR, "upstream timed out"))
    child.end(end_time=T0 + 5_000)
    server.end(end_time=T0 + 9_000)
    provider.shutdown()
    return list(exporter.get_finished_spans())


def _hex_ids(node: Any) -> Any:
    """protobuf's JSON mapping writes bytes in base64; Jaeger's jsonpb writes ids in hex."""
    if isinstance(node, dict):
        return {
            k: (base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") else _hex_ids(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


def v3_body(spans: Sequence[ReadableSpan]) -> bytes:
    data = json_format.MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    return json.dumps({"result": _hex_ids(data)}).encode()


def _tag(key: str, value: Any) -> dict[str, Any]:
    kind = (
        "bool"
        if isinstance(value, bool)
        else "int64"
        if isinstance(value, int)
        else "float64"
        if isinstance(value, float)
        else "string"
    )
    return {"key": key, "type": kind, "value": value}


def v1_body(spans: Sequence[ReadableSpan]) -> bytes:
    """Jaeger's OTLP→model translation of ``spans``, rendered as the UI JSON."""
    out = []
    for s in spans:
        assert s.context is not None
        tags = [_tag(k, v) for k, v in (s.attributes or {}).items()]
        tags.append(_tag("span.kind", s.kind.name.lower()))
        tags.append(_tag("otel.scope.name", s.instrumentation_scope.name if s.instrumentation_scope else ""))
        if s.status.status_code is StatusCode.ERROR:
            tags += [
                _tag("otel.status_code", "ERROR"),
                _tag("error", True),
                _tag("otel.status_description", s.status.description or ""),
            ]
        if s.context.trace_state:
            tags.append(_tag("w3c.tracestate", s.context.trace_state.to_header()))
        refs = (
            [
                {
                    "refType": "CHILD_OF",
                    "traceID": format(s.context.trace_id, "032x"),
                    "spanID": format(s.parent.span_id, "016x"),
                }
            ]
            if s.parent
            else []
        )
        assert s.start_time is not None and s.end_time is not None
        out.append(
            {
                "traceID": format(s.context.trace_id, "032x"),
                "spanID": format(s.context.span_id, "016x"),
                "flags": 1,
                "operationName": s.name,
                "references": refs,
                "startTime": s.start_time // 1000,
                "duration": (s.end_time - s.start_time) // 1000,
                "tags": tags,
                "processID": "p1",
                "warnings": None,
                "logs": [
                    {
                        "timestamp": e.timestamp // 1000,
                        "fields": [
                            _tag("event", e.name),
                            *(_tag(k, v) for k, v in (e.attributes or {}).items()),
                        ],
                    }
                    for e in s.events
                ],
            }
        )
    resource = dict(spans[0].resource.attributes) if spans else {}
    process = {
        "serviceName": resource.pop("service.name", ""),
        "tags": [_tag(k, v) for k, v in resource.items()],
    }
    trace = {"traceID": TRACE_HEX, "spans": out, "processes": {"p1": process}, "warnings": None}
    return json.dumps({"data": [trace], "total": 0, "limit": 0, "offset": 0, "errors": None}).encode()


class JaegerQueryDouble:
    """Test double of Jaeger's query service (``/api/v3/traces…`` and ``/api/traces…``).

    Jaeger itself cannot run here, so this serves the documented response shapes
    for the spans the test ``publish``-es; ``on_request`` lets a test change what
    is published as polling goes on, and ``fail_with`` makes every answer an error.
    """

    def __init__(self) -> None:
        self.published: list[ReadableSpan] = []
        self.requests: list[str] = []
        self.on_request: Callable[[int], None] = lambda n: None
        self.fail_with: int | None = None
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                double.requests.append(self.path)
                double.on_request(len(double.requests))
                status, body = double.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def publish(self, *spans: ReadableSpan) -> None:
        self.published.extend(spans)

    def answer(self, path: str) -> tuple[int, bytes]:
        if self.fail_with is not None:
            return self.fail_with, b'{"error": "storage unavailable"}'
        parts = urlsplit(path)
        v3 = parts.path.startswith("/api/v3/")
        if parts.path in ("/api/v3/traces", "/api/traces"):
            service = parse_qs(parts.query).get("query.service_name" if v3 else "service", [""])[0]
            found = [s for s in self.published if s.resource.attributes.get("service.name") == service]
        else:
            wanted = parts.path.rsplit("/", 1)[-1]
            found = [s for s in self.published if s.context and format(s.context.trace_id, "032x") == wanted]
        if not found:
            if v3:
                return 404, json.dumps(
                    {
                        "error": {
                            "grpcCode": 5,
                            "httpCode": 404,
                            "message": "trace not found",
                            "httpStatus": "Not Found",
                        }
                    }
                ).encode()
            return 404, json.dumps(
                {
                    "data": None,
                    "total": 0,
                    "limit": 0,
                    "offset": 0,
                    "errors": [{"code": 404, "msg": "trace not found"}],
                }
            ).encode()
        return 200, v3_body(found) if v3 else v1_body(found)

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(5)
        self._server.server_close()


@pytest.fixture
def jaeger() -> Iterator[JaegerQueryDouble]:
    double = JaegerQueryDouble()
    yield double
    double.close()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.mark.parametrize("api", ["v3", "v1"])
def test_both_apis_give_the_span_model_of_the_otlp_receiver(
    jaeger: JaegerQueryDouble, http: httpx.Client, api: str
) -> None:
    spans = sdk_spans()
    jaeger.publish(*spans)
    store = JaegerTraceStore(jaeger.url, client=http, api=api)

    got = store.spans(TRACE_HEX.upper())

    expected = spans_from_proto(encode_spans(spans))
    assert sorted(got, key=lambda s: s.span_id) == sorted(expected, key=lambda s: s.span_id)
    server = next(s for s in got if s.kind == "SERVER")
    assert server.parent_span_id == format(REMOTE_PARENT, "016x")
    assert server.trace_state == "congo=t61rcWkgMzE"
    assert server.service_name == "svc"
    child = next(s for s in got if s.kind == "CLIENT")
    assert (child.status_code, child.status_message) == ("ERROR", "upstream timed out")
    assert child.events[0].name == "retry" and dict(child.events[0].attributes) == {"attempt": 2}
    assert jaeger.requests[-1] == (
        f"/api/v3/traces/{TRACE_HEX}" if api == "v3" else f"/api/traces/{TRACE_HEX}"
    )


@pytest.mark.parametrize("api", ["v3", "v1"])
def test_a_trace_jaeger_does_not_have_is_no_spans_yet(
    jaeger: JaegerQueryDouble, http: httpx.Client, api: str
) -> None:
    assert JaegerTraceStore(jaeger.url, client=http, api=api).spans("1" * 32) == []


@pytest.mark.parametrize("api", ["v3", "v1"])
def test_wait_for_trace_polls_until_the_trace_stops_growing(
    jaeger: JaegerQueryDouble, http: httpx.Client, api: str
) -> None:
    child, server = sdk_spans()

    def arrive_late(request_number: int) -> None:
        # The child is exported first, the server span two polls later: the trace grows.
        if request_number == 3:
            jaeger.publish(child)
        if request_number == 6:
            jaeger.publish(server)

    jaeger.on_request = arrive_late
    store = JaegerTraceStore(jaeger.url, client=http, api=api)

    spans = wait_for_trace(store, TRACE_HEX, timeout=10, quiet_period=0.3, min_spans=1)

    assert {s.kind for s in spans} == {"SERVER", "CLIENT"}
    assert len(jaeger.requests) > 6


def test_a_trace_that_never_arrives_says_where_it_was_expected(
    jaeger: JaegerQueryDouble, http: httpx.Client
) -> None:
    store = JaegerTraceStore(jaeger.url, client=http)

    with pytest.raises(WaitTimeout) as info:
        wait_for_trace(
            store,
            TRACE_HEX,
            timeout=0.5,
            quiet_period=0.1,
            expected_exporter="the service's OTLP grpc exporter",
        )

    message = str(info.value)
    assert f"Jaeger query API at {jaeger.url}/api/v3/traces" in message
    assert "the service's OTLP grpc exporter" in message
    assert "no span of this trace arrived" in message


@pytest.mark.parametrize("api", ["v3", "v1"])
def test_a_failing_jaeger_is_a_stack_error(jaeger: JaegerQueryDouble, http: httpx.Client, api: str) -> None:
    jaeger.fail_with = 503
    with pytest.raises(StackError, match="Jaeger answered 503"):
        JaegerTraceStore(jaeger.url, client=http, api=api).spans(TRACE_HEX)


def test_unreachable_jaeger_is_a_stack_error(http: httpx.Client) -> None:
    double = JaegerQueryDouble()
    url = double.url
    double.close()
    with pytest.raises(StackError, match="cannot reach Jaeger"):
        JaegerTraceStore(url, client=http).spans(TRACE_HEX)


@pytest.mark.parametrize("api", ["v3", "v1"])
def test_listing_spans_searches_the_service(jaeger: JaegerQueryDouble, http: httpx.Client, api: str) -> None:
    jaeger.publish(*sdk_spans())
    store = JaegerTraceStore(
        jaeger.url, client=http, api=api, service_name="svc", clock=lambda: 1_733_480_000
    )

    assert len(store.spans()) == 2
    query = parse_qs(urlsplit(jaeger.requests[-1]).query)
    if api == "v3":
        assert query["query.service_name"] == ["svc"]
        assert query["query.start_time_min"] == ["2024-12-06T09:13:20Z"]
    else:
        assert query["service"] == ["svc"] and query["start"] == ["1733476400000000"]


def test_listing_spans_needs_a_service_name(jaeger: JaegerQueryDouble, http: httpx.Client) -> None:
    with pytest.raises(StackError, match="service name"):
        JaegerTraceStore(jaeger.url, client=http).spans()


# ------------------------------------------------------------------ documented shapes, parsed directly

#: Jaeger's own snapshot of GetTrace over HTTP (cmd/query/app/apiv3/snapshots/GetTrace.json),
#: a bare TracesData.
GET_TRACE_SNAPSHOT = {
    "resourceSpans": [
        {
            "resource": {},
            "scopeSpans": [
                {
                    "scope": {},
                    "spans": [
                        {
                            "endTimeUnixNano": "11651379494838206464",
                            "kind": 2,
                            "name": "foobar",
                            "parentSpanId": "",
                            "spanId": "00000000000000b4",
                            "startTimeUnixNano": "11651379494838206464",
                            "status": {"code": 2},
                            "traceId": "000000000000009600000000000000a0",
                        }
                    ],
                }
            ],
        }
    ],
}


def test_v3_bare_snapshot_envelope_and_streamed_chunks() -> None:
    bare = json.dumps(GET_TRACE_SNAPSHOT).encode()
    enveloped = json.dumps({"result": GET_TRACE_SNAPSHOT}).encode()
    (span,) = spans_from_jaeger_v3(bare)
    assert (span.trace_id, span.span_id, span.parent_span_id) == (
        "000000000000009600000000000000a0",
        "00000000000000b4",
        None,
    )
    assert (span.kind, span.status_code) == ("SERVER", "ERROR")
    assert spans_from_jaeger_v3(enveloped) == [span]
    assert spans_from_jaeger_v3(enveloped + b"\n" + enveloped) == [span, span]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>", "not JSON"),
        (b'{"error": {"httpCode": 500, "message": "boom"}}', "answered an error: boom"),
        (b"[1]", "not an object"),
        (b'{"result": {"resourceSpans": 5}}', "not OTLP JSON"),
    ],
)
def test_v3_bodies_that_are_not_traces(body: bytes, problem: str) -> None:
    with pytest.raises(StackError, match=problem):
        spans_from_jaeger_v3(body)


def test_v1_short_ids_parent_span_id_and_missing_kind() -> None:
    body = {
        "data": [
            {
                "traceID": "a0",
                "processes": {},
                "spans": [
                    {
                        "traceID": "a0",
                        "spanID": "b4",
                        "parentSpanID": "c5",
                        "operationName": "x",
                        "startTime": 5,
                        "duration": 2,
                        "tags": [{"key": "n", "type": "int64", "value": "7"}],
                        "processID": "p9",
                    }
                ],
            }
        ],
        "errors": None,
    }
    (span,) = spans_from_jaeger_v1(json.dumps(body).encode())
    assert (span.trace_id, span.span_id, span.parent_span_id) == (
        "0" * 30 + "a0",
        "0" * 14 + "b4",
        "0" * 14 + "c5",
    )
    assert (span.kind, span.status_code, span.start_time_unix_nano, span.end_time_unix_nano) == (
        "UNSPECIFIED",
        "UNSET",
        5000,
        7000,
    )
    assert dict(span.attributes) == {"n": 7}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"nope", "not JSON"),
        (b'{"data": null, "errors": [{"code": 500, "msg": "storage down"}]}', "storage down"),
        (b'{"data": [{"spans": [{"spanID": "1"}]}]}', "unexpected trace shape"),
    ],
)
def test_v1_bodies_that_are_not_traces(body: bytes, problem: str) -> None:
    with pytest.raises(StackError, match=problem):
        spans_from_jaeger_v1(body)
