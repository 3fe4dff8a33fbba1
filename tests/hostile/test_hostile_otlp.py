"""Hostile OTLP payloads at the harness's own receiver, sized by the profile's
``telemetry.max_request_body_size`` (the Collector's confighttp ``max_request_body_size``):
each is refused or kept within bounds, and the receiver keeps working.
"""

from __future__ import annotations

import resource
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from conformance import load_profile
from conformance.stack._local import LocalStack
from conformance.stack._otlp import OtlpReceiver
from conformance.stack._telemetry import TelemetryPlan

pytestmark = pytest.mark.hostile

PROFILE = Path(__file__).resolve().parent / "otlp-payloads" / "conformance.yaml"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
MIB = 1024 * 1024


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[OtlpReceiver]:
    """The receiver exactly as local mode builds it from the profile."""
    stack = LocalStack(load_profile(PROFILE), tmp_path, telemetry=TelemetryPlan(None, "not needed"))
    assert stack.receiver.max_request_bytes == MIB
    stack.receiver.start()
    try:
        yield stack.receiver
    finally:
        stack.receiver.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, trust_env=False) as client:
        yield client


def _span_request(attributes: int = 1) -> bytes:
    span = ProtoSpan(
        trace_id=bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736"),
        span_id=bytes.fromhex("00f067aa0ba902b7"),
        name="hostile",
        kind=ProtoSpan.SPAN_KIND_SERVER,
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes=[KeyValue(key=f"attr.{i}", value=AnyValue(string_value="v")) for i in range(attributes)],
    )
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    )
    return request.SerializeToString()


def _gzip_bomb(inflated: int) -> bytes:
    """``inflated`` bytes of zeros, gzipped (about 1000:1), built without holding them."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MIB)
    parts = [compressor.compress(zeros) for _ in range(inflated // MIB)]
    return b"".join(parts) + compressor.flush()


def _post(http: httpx.Client, receiver: OtlpReceiver, body: bytes, **headers: str) -> httpx.Response:
    return http.post(f"{receiver.http_endpoint}/v1/traces", content=body, headers={**PROTOBUF, **headers})


def _healthy(http: httpx.Client, receiver: OtlpReceiver) -> None:
    assert _post(http, receiver, _span_request()).status_code == 200


def test_oversized_payload_is_refused(receiver: OtlpReceiver, http: httpx.Client) -> None:
    assert _post(http, receiver, bytes(2 * MIB)).status_code == 413
    assert receiver.stats()["rejected"]["too_large"] == 1
    _healthy(http, receiver)


def test_gzip_bomb_is_refused_without_inflating_it(receiver: OtlpReceiver, http: httpx.Client) -> None:
    bomb = _gzip_bomb(512 * MIB)
    assert len(bomb) < MIB  # it passes the size check on the wire
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    response = _post(http, receiver, bomb, **{"Content-Encoding": "gzip"})
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert response.status_code == 413
    assert "inflates to more than" in response.text
    assert peak_after - peak_before < 64 * MIB  # the receiver stopped at the limit, never 512 MiB
    _healthy(http, receiver)


def test_malformed_protobuf_is_refused(receiver: OtlpReceiver, http: httpx.Client) -> None:
    assert _post(http, receiver, b"\x0a\xff\xff\xff\xff\x0f" + bytes(100)).status_code == 400
    _healthy(http, receiver)


def test_a_span_with_10000_attributes_is_kept_within_the_limit(
    receiver: OtlpReceiver, http: httpx.Client
) -> None:
    body = _span_request(attributes=10_000)
    assert len(body) < MIB
    assert _post(http, receiver, body).status_code == 200
    (span,) = [s for s in receiver.spans() if len(s.attributes) > 1]
    assert len(span.attributes) == 10_000
    _healthy(http, receiver)
