"""Local mode's collector and Jaeger as :class:`LocalTelemetry` runs them, with the
real binaries of ``scripts/build-telemetry`` (the tests fail, not skip, when they
are not built) and the harness's real OTLP receiver.

What the service's SDK sends to the collector comes out three ways: in Jaeger's
query API exactly as the receiver gets it raw, metrics on the collector's
Prometheus exporter, and logs and metrics at the receiver. A binary that fails
to start is a :class:`StackError` naming it, its exit status and its last log lines.
"""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from conformance._exceptions import StackError
from conformance._ports import free_port
from conformance._wait import wait_until
from conformance.collect._jaeger import JaegerTraceStore
from conformance.collect._traces import wait_for_trace
from conformance.stack._otlp import OtlpReceiver
from conformance.stack._telemetry import LocalTelemetry, TelemetryBinaries, plan_local_telemetry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def binaries() -> TelemetryBinaries:
    plan = plan_local_telemetry({})
    if plan.binaries is None:
        pytest.fail(plan.reason, pytrace=False)
    return plan.binaries


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def running(
    binaries: TelemetryBinaries, tmp_path: Path, receiver: OtlpReceiver, *, http: bool
) -> LocalTelemetry:
    telemetry = LocalTelemetry(
        binaries,
        tmp_path,
        receiver_grpc_port=receiver.grpc_port,
        receiver_http_port=receiver.http_port if http else None,
        startup_timeout=30,
    )
    start(telemetry)
    return telemetry


def start(telemetry: LocalTelemetry) -> None:
    """What :class:`LocalStack` does, minus Prometheus in between."""
    telemetry.launch_jaeger()
    telemetry.start_collector()


def send_trace(exporter: SpanExporter, service: str) -> str:
    """A SERVER span with a failing CLIENT child, as one trace; its trace id in hex."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("obsconform.test", "0.1")
    with tracer.start_as_current_span(
        "GET /orders/{id}", kind=SpanKind.SERVER, attributes={"http.route": "/orders/{id}"}
    ) as server:
        with tracer.start_as_current_span("provider.call", kind=SpanKind.CLIENT) as child:
            child.add_event("retry", {"attempt": 2})
            child.set_status(Status(StatusCode.ERROR, "upstream timed out"))
        trace_id = format(server.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_jaeger_returns_the_spans_the_receiver_gets_raw(
    binaries: TelemetryBinaries, tmp_path: Path, receiver: OtlpReceiver, protocol: str
) -> None:
    http = protocol != "grpc"
    telemetry = running(binaries, tmp_path, receiver, http=http)
    service = f"svc-{uuid.uuid4().hex[:8]}"
    try:
        exporter: SpanExporter = (
            HttpSpanExporter(endpoint=f"{telemetry.otlp_http_endpoint}/v1/traces")
            if http
            else GrpcSpanExporter(endpoint=telemetry.otlp_grpc_endpoint, insecure=True)
        )
        trace_id = send_trace(exporter, service)
        with httpx.Client(timeout=5) as client:
            store = JaegerTraceStore(telemetry.query_url, client=client, all_services=True, raw=True)
            from_jaeger = wait_for_trace(store, trace_id, timeout=20, min_spans=2)
            raw = wait_for_trace(receiver, trace_id, timeout=5, min_spans=2)
            assert sorted(from_jaeger, key=lambda s: s.span_id) == sorted(raw, key=lambda s: s.span_id)
            assert {s.trace_id for s in store.spans()} == {trace_id}
            assert store.services() == [service]
        assert receiver.stats()["requests"]["http/protobuf" if http else "grpc"] > 0
    finally:
        telemetry.stop()
    assert not telemetry.collector.process.running and not telemetry.jaeger.process.running


def test_metrics_reach_the_prometheus_exporter_and_logs_and_metrics_the_receiver(
    binaries: TelemetryBinaries, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    telemetry = running(binaries, tmp_path, receiver, http=False)
    resource = Resource.create({"service.name": "svc-metrics"})
    try:
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{telemetry.otlp_http_endpoint}/v1/metrics"),
            export_interval_millis=60_000,
        )
        meters = MeterProvider(resource=resource, metric_readers=[reader])
        meters.get_meter("obsconform.test").create_counter("orders_placed", unit="1").add(3)
        meters.force_flush()
        meters.shutdown()
        logs = LoggerProvider(resource=resource)
        logs.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=telemetry.otlp_grpc_endpoint, insecure=True))
        )
        logs.get_logger("obsconform.test").emit(LogRecord(body="order placed", severity_text="INFO"))
        logs.shutdown()

        url = f"http://{telemetry.prometheus_exporter_address}/metrics"

        def exposed() -> tuple[str | None, str]:
            text = httpx.get(url, timeout=5).text
            line = next((ln for ln in text.splitlines() if ln.startswith("orders_placed")), None)
            return line, f"{len(text.splitlines())} lines"

        line = wait_until(exposed, awaited=f"orders_placed on {url}", timeout=20)
        assert line.rsplit(" ", 1)[-1] == "3", line
        wait_until(
            lambda: (
                True if receiver.log_records() and receiver.metric_names() else None,
                str(receiver.stats()),
            ),
            awaited="a log record and a metric at the receiver",
            timeout=20,
        )
        assert "orders_placed" in receiver.metric_names()
        assert [r.body for r in receiver.log_records()] == ["order placed"]
    finally:
        telemetry.stop()


def failing_binary(tmp_path: Path, name: str) -> Path:
    binary = tmp_path / "bin" / name
    binary.parent.mkdir(exist_ok=True)
    binary.write_text(
        "#!/bin/sh\n"
        "echo 'starting' >&2\n"
        "echo 'error: cannot unmarshal the configuration: bad key' >&2\n"
        "exit 3\n"
    )
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return binary


@pytest.mark.parametrize("broken", ["jaeger", "otelcol"])
def test_a_component_that_exits_at_start_is_a_stack_error_with_its_exit_status_and_log(
    binaries: TelemetryBinaries, tmp_path: Path, receiver: OtlpReceiver, broken: str
) -> None:
    paths = {"otelcol": binaries.otelcol, "jaeger": binaries.jaeger}
    paths[broken] = failing_binary(tmp_path, broken)
    telemetry = LocalTelemetry(
        TelemetryBinaries(**paths),
        tmp_path / "work",
        receiver_grpc_port=receiver.grpc_port,
        receiver_http_port=None,
        startup_timeout=30,
    )
    try:
        with pytest.raises(StackError) as caught:
            start(telemetry)
    finally:
        telemetry.stop()
    title = "Jaeger" if broken == "jaeger" else "the OpenTelemetry Collector (otelcol-obsconform)"
    assert str(caught.value).startswith(f"{title} exited with code 3 during start-up; last log lines: ")
    assert "starting | error: cannot unmarshal the configuration: bad key" in str(caught.value)
    assert not telemetry.collector.process.running and not telemetry.jaeger.process.running


def test_a_collector_refusing_its_config_is_a_stack_error_with_its_own_complaint(
    binaries: TelemetryBinaries, tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real binary, a config naming a component it does not carry: it exits, and the error
    quotes what the collector said about it."""
    telemetry = LocalTelemetry(
        binaries, tmp_path / "work", receiver_grpc_port=receiver.grpc_port, receiver_http_port=None
    )
    broken = telemetry.collector_config()
    broken["exporters"]["zipkin"] = {"endpoint": "http://127.0.0.1:9/api/v2/spans"}
    broken["service"]["pipelines"]["traces"]["exporters"].append("zipkin")
    monkeypatch.setattr(telemetry, "collector_config", lambda: broken)
    try:
        with pytest.raises(StackError) as caught:
            start(telemetry)
    finally:
        telemetry.stop()
    message = str(caught.value)
    title = "the OpenTelemetry Collector (otelcol-obsconform)"
    assert message.startswith(f"{title} exited with code 1 during start-up; last log lines: "), message
    assert "zipkin" in message
    assert caught.value.hint is not None and "otel-collector.yaml" in caught.value.hint
    assert not telemetry.collector.process.running and not telemetry.jaeger.process.running


def test_a_binary_that_cannot_be_executed_is_a_stack_error_naming_it(
    binaries: TelemetryBinaries, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    missing = tmp_path / "bin" / "jaeger"
    telemetry = LocalTelemetry(
        TelemetryBinaries(otelcol=binaries.otelcol, jaeger=missing),
        tmp_path / "work",
        receiver_grpc_port=receiver.grpc_port,
        receiver_http_port=None,
    )
    try:
        with pytest.raises(StackError) as caught:
            start(telemetry)
    finally:
        telemetry.stop()
    assert str(caught.value).startswith(f"Jaeger could not be started ({missing}): ")
    assert not telemetry.collector.process.running


def test_the_collector_counts_what_it_accepted_and_what_it_failed_to_send(
    binaries: TelemetryBinaries, tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own metrics, as the report carries them: the receiver's and Jaeger's exporters each
    sent what it accepted; one more exporter, to a closed port and without retries, failed to
    send the same spans, and the counts name it."""
    telemetry = LocalTelemetry(
        binaries, tmp_path / "work", receiver_grpc_port=receiver.grpc_port, receiver_http_port=None
    )
    config = telemetry.collector_config()
    config["exporters"]["otlp_grpc/nowhere"] = {
        "endpoint": f"127.0.0.1:{free_port()}",
        "tls": {"insecure": True},
        "retry_on_failure": {"enabled": False},
        "timeout": "2s",
    }
    config["service"]["pipelines"]["traces"]["exporters"].append("otlp_grpc/nowhere")
    monkeypatch.setattr(telemetry, "collector_config", lambda: config)
    try:
        start(telemetry)
        send_trace(GrpcSpanExporter(endpoint=telemetry.otlp_grpc_endpoint, insecure=True), "svc-counts")

        def counted() -> tuple[dict[str, Any] | None, str]:
            # The three exporters send concurrently: the refused one may be counted before the
            # other two have finished theirs.
            counts = telemetry.pipeline_counts()
            failed, sent = counts.get("send_failed", {}), counts.get("sent", {})
            done = failed.get("spans") == 2 and sent.get("spans") == 4
            return (counts if done else None), str(counts)

        counts = wait_until(counted, awaited="the collector to count every send", timeout=30)
        assert counts["accepted"] == {"spans": 2}
        assert counts["sent"] == {"spans": 4}  # to the receiver and to Jaeger
        assert counts["lost"] == 2
        assert counts["problems"] == ["exporter otlp_grpc/nowhere failed to send 2 spans"]
        described = telemetry.describe(service_protocol="grpc")[0]
        assert described["pipeline"]["problems"] == counts["problems"]
    finally:
        telemetry.stop()
    # Stopped: the last counts, read just before it stopped, are still there.
    assert telemetry.pipeline_counts()["accepted"] == {"spans": 2}
