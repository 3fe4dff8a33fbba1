"""The team's own collector pipeline as :class:`LocalTelemetry` runs it, with the real
binaries of ``scripts/build-telemetry`` (the tests fail, not skip, when they are not
built): the configs the harness makes of teams' configs load in our build, a span
and a log record go through the team's processors into the after-pipeline receiver
while the raw receiver keeps them as sent, and a team config the collector refuses at
start-up is a :class:`StackError` naming the team's collector, its exit status and
its last log lines.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from conformance._exceptions import StackError
from conformance._wait import wait_until
from conformance.stack._collector import CollectorListen, team_pipeline_config, team_pipeline_processors
from conformance.stack._otlp import OtlpReceiver
from conformance.stack._telemetry import LocalTelemetry, TeamPipeline, TelemetryBinaries, plan_local_telemetry

pytestmark = pytest.mark.integration

TEAM_CONFIGS = Path(__file__).resolve().parents[1] / "data" / "team_collectors"
EMAIL = "jane.doe@corp.example.io"


@pytest.fixture(scope="module")
def binaries() -> TelemetryBinaries:
    plan = plan_local_telemetry({})
    if plan.binaries is None:
        pytest.fail(plan.reason, pytrace=False)
    return plan.binaries


@pytest.fixture
def receivers() -> Iterator[tuple[OtlpReceiver, OtlpReceiver]]:
    with OtlpReceiver() as raw, OtlpReceiver() as after:
        yield raw, after


@pytest.mark.parametrize("name", sorted(p.stem for p in TEAM_CONFIGS.glob("*.yaml")))
def test_the_runnable_config_of_each_team_config_loads_in_our_build(
    binaries: TelemetryBinaries, tmp_path: Path, name: str
) -> None:
    team = yaml.safe_load((TEAM_CONFIGS / f"{name}.yaml").read_text())
    config = team_pipeline_config(
        team,
        listen=CollectorListen(host="127.0.0.1", telemetry=None),
        to_receiver="127.0.0.1:4317",
        jaeger="127.0.0.1:14317",
        prometheus=True,
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = subprocess.run(
        [str(binaries.otelcol), "validate", f"--config={path}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def team_pipeline(config: dict[str, Any], path: Path, after: OtlpReceiver) -> TeamPipeline:
    processors = {k: tuple(v) for k, v in team_pipeline_processors(config).items()}
    return TeamPipeline(
        config_file=path,
        config=config,
        processors=processors,
        signals=frozenset(p.partition("/")[0] for p in processors),
        receiver_grpc_port=after.grpc_port,
    )


def test_telemetry_goes_through_the_team_processors_and_stays_raw_at_the_receiver(
    binaries: TelemetryBinaries, tmp_path: Path, receivers: tuple[OtlpReceiver, OtlpReceiver]
) -> None:
    raw, after = receivers
    team_file = TEAM_CONFIGS / "redaction.yaml"
    team = yaml.safe_load(team_file.read_text())
    telemetry = LocalTelemetry(
        binaries,
        tmp_path,
        receiver_grpc_port=raw.grpc_port,
        receiver_http_port=None,
        startup_timeout=30,
        team=team_pipeline(team, team_file, after),
    )
    try:
        telemetry.launch_jaeger()
        telemetry.start_collector()
        resource = Resource.create({"service.name": "team-pipeline-test"})
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=telemetry.otlp_grpc_endpoint, insecure=True))
        )
        with tracer_provider.get_tracer("t").start_as_current_span(
            "POST /login", kind=SpanKind.SERVER
        ) as span:
            span.set_attribute("user.email", EMAIL)
        tracer_provider.shutdown()
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=telemetry.otlp_grpc_endpoint, insecure=True))
        )
        logger_provider.get_logger("t").emit(LogRecord(body=f"login by {EMAIL}", attributes={"user": EMAIL}))
        logger_provider.shutdown()

        def arrived() -> tuple[bool | None, str]:
            seen = f"after the pipeline: {len(after.spans())} spans, {len(after.log_records())} log records"
            return (True if after.spans() and after.log_records() and raw.log_records() else None), seen

        wait_until(arrived, awaited="the span and the log record after the team's pipeline", timeout=20)
        (raw_span,) = raw.spans()
        (after_span,) = after.spans()
        assert raw_span.attributes["user.email"] == EMAIL
        assert after_span.span_id == raw_span.span_id
        assert after_span.attributes["user.email"] == "****"
        (after_record,) = after.log_records()
        assert EMAIL not in str(after_record.body) and EMAIL not in str(after_record.attributes)
        (raw_record,) = raw.log_records()
        assert raw_record.body == f"login by {EMAIL}"
        described = {c["name"]: c for c in telemetry.describe(service_protocol="grpc")}
        team_component = described["otel-collector-team"]
        assert team_component["team_config_file"] == str(team_file)
        assert team_component["processors"] == {
            "traces": ["redaction", "batch"],
            "logs": ["redaction", "batch"],
        }
        assert team_component["pipeline"]["accepted"] == {"log_records": 1, "spans": 1}
    finally:
        telemetry.stop()
    assert not telemetry.team_collector or not telemetry.team_collector.process.running


def test_a_team_config_the_collector_refuses_at_start_up_names_it(
    binaries: TelemetryBinaries, tmp_path: Path, receivers: tuple[OtlpReceiver, OtlpReceiver]
) -> None:
    raw, after = receivers
    team = yaml.safe_load((TEAM_CONFIGS / "transform.yaml").read_text())
    # Passes the harness's load-time check (the processor exists); only the collector parses OTTL.
    team["processors"]["transform"]["trace_statements"][0]["statements"] = ['set(attributes["x"], nonsense(']
    path = tmp_path / "team.yaml"
    telemetry = LocalTelemetry(
        binaries,
        tmp_path,
        receiver_grpc_port=raw.grpc_port,
        receiver_http_port=None,
        startup_timeout=30,
        team=team_pipeline(team, path, after),
    )
    try:
        telemetry.launch_jaeger()
        with pytest.raises(StackError) as caught:
            telemetry.start_collector()
    finally:
        telemetry.stop()
    message = str(caught.value)
    assert message.startswith(
        "the team's collector pipeline (team.yaml, run by otelcol-obsconform) exited with code "
    )
    assert "last log lines:" in message and "transform" in message
    assert f"the team's config is {path}" in caught.value.hint
    # The harness's own collector was never started.
    assert telemetry.collector.process.poll() is None and not telemetry.collector.process.running


def test_metric_points_go_through_the_team_attributes_processor(
    binaries: TelemetryBinaries, tmp_path: Path, receivers: tuple[OtlpReceiver, OtlpReceiver]
) -> None:
    raw, after = receivers
    team = {
        "receivers": {"otlp": {"protocols": {"grpc": {}}}},
        "processors": {"attributes/pii": {"actions": [{"key": "user.email", "action": "delete"}]}},
        "exporters": {"otlp": {"endpoint": "metrics-gateway:4317"}},
        "service": {
            "pipelines": {
                "metrics": {"receivers": ["otlp"], "processors": ["attributes/pii"], "exporters": ["otlp"]}
            }
        },
    }
    telemetry = LocalTelemetry(
        binaries,
        tmp_path,
        receiver_grpc_port=raw.grpc_port,
        receiver_http_port=None,
        startup_timeout=30,
        team=team_pipeline(team, tmp_path / "team.yaml", after),
    )
    try:
        telemetry.launch_jaeger()
        telemetry.start_collector()
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=telemetry.otlp_grpc_endpoint, insecure=True),
            export_interval_millis=60_000,
        )
        provider = MeterProvider(resource=Resource.create({"service.name": "svc"}), metric_readers=[reader])
        provider.get_meter("t").create_counter("logins").add(1, {"user.email": EMAIL, "outcome": "ok"})
        provider.shutdown()  # exports once

        def arrived() -> tuple[bool | None, str]:
            return (
                True if after.metric_points() and raw.metric_points() else None
            ), f"{after.metric_points()}"

        wait_until(arrived, awaited="the metric points after the team's pipeline", timeout=20)
        (raw_point,) = [p for p in raw.metric_points() if p.name == "logins"]
        (after_point,) = [p for p in after.metric_points() if p.name == "logins"]
        assert raw_point.attributes == {"user.email": EMAIL, "outcome": "ok"}
        assert after_point.attributes == {"outcome": "ok"}
    finally:
        telemetry.stop()
