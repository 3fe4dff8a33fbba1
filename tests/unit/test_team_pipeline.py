"""The team's own collector pipeline (``telemetry.collector_config``), without running it:
the config the harness makes of the team's (``team_pipeline_config``), the profile key,
the harness collector's fan-out, and the PII findings per view (at the service, after
the pipeline)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format  # type: ignore[import-untyped]
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conformance import ProfileError, load_profile
from conformance._sections.telemetry import KEY, TelemetrySection
from conformance.checks import pii
from conformance.collect._canaries import Canary, CanaryGenerator
from conformance.stack._collector import (
    AFTER_PIPELINE_EXPORTER,
    OUR_BUILD,
    CollectorListen,
    TeamConfigError,
    collector_config,
    team_pipeline_config,
    team_pipeline_processors,
)
from conformance.stack._local import LocalStack
from conformance.stack._otlp import OtlpReceiver
from conformance.stack._telemetry import AfterTeamPipeline, TelemetryPlan
from conformance.telemetry import OtlpLogRecord, OtlpMetricPoints, Span

from .test_containers_config import collector_structure_problems

REPO = Path(__file__).resolve().parents[2]
TEAM_CONFIGS = REPO / "tests/data/team_collectors"
LISTEN = CollectorListen(
    host="127.0.0.1", otlp_grpc=4101, otlp_http=4102, health=4103, prometheus_exporter=4104, telemetry=4105
)
TO_RECEIVER = "127.0.0.1:5101"


def team(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((TEAM_CONFIGS / f"{name}.yaml").read_text())
    return loaded


def runnable(config: Any, *, jaeger: str | None = None, prometheus: bool = False) -> dict[str, Any]:
    return team_pipeline_config(
        config, listen=LISTEN, to_receiver=TO_RECEIVER, jaeger=jaeger, prometheus=prometheus
    )


# --------------------------------------------------------------------------- team_pipeline_config


@pytest.mark.parametrize("name", ["attributes", "redaction", "transform", "production"])
def test_every_team_config_becomes_a_config_of_the_documented_structure(name: str) -> None:
    config = runnable(team(name), jaeger="127.0.0.1:6101", prometheus=True)
    # The structure check knows receivers/processors/exporters; connectors are pipelines' ends too.
    connectors = set(config.get("connectors", {}))
    plain = json.loads(json.dumps(config))
    for pipeline in plain["service"]["pipelines"].values():
        pipeline["receivers"] = [r for r in pipeline["receivers"] if r not in connectors]
        pipeline["exporters"] = [e for e in pipeline["exporters"] if e not in connectors]
        if not pipeline["receivers"]:
            pipeline["receivers"] = ["otlp"]
    plain.pop("connectors", None)
    assert collector_structure_problems(plain) == []


def test_processors_and_their_order_are_kept_as_written() -> None:
    config = runnable(team("production"))
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["processors"] == [
        "memory_limiter",
        "attributes/pii",
        "redaction",
        "transform",
        "batch",
    ]
    assert pipelines["logs"]["processors"] == ["redaction", "batch"]
    source = team("production")["processors"]
    assert config["processors"]["attributes/pii"] == source["attributes/pii"]
    assert config["processors"]["redaction"] == source["redaction"]
    assert config["processors"]["transform"] == source["transform"]


def test_receivers_become_one_otlp_receiver_on_the_harness_ports() -> None:
    config = runnable(team("production"))
    assert config["receivers"] == {
        "otlp": {
            "protocols": {
                "grpc": {"endpoint": "127.0.0.1:4101"},
                "http": {"endpoint": "127.0.0.1:4102"},
            }
        }
    }
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["receivers"] == ["otlp"]
    # hostmetrics is gone; the spanmetrics connector still feeds the metrics pipeline.
    assert pipelines["metrics"]["receivers"] == ["otlp", "spanmetrics"]


def test_exporters_go_to_the_stack_and_connectors_stay() -> None:
    config = runnable(team("production"), jaeger="127.0.0.1:6101", prometheus=True)
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == [
        "spanmetrics",
        AFTER_PIPELINE_EXPORTER,
        "otlp_grpc/obsconform_jaeger",
    ]
    assert pipelines["metrics"]["exporters"] == [AFTER_PIPELINE_EXPORTER, "prometheus/obsconform"]
    assert pipelines["logs"]["exporters"] == [AFTER_PIPELINE_EXPORTER]
    exporters = config["exporters"]
    assert exporters[AFTER_PIPELINE_EXPORTER] == {"endpoint": TO_RECEIVER, "tls": {"insecure": True}}
    assert exporters["otlp_grpc/obsconform_jaeger"]["endpoint"] == "127.0.0.1:6101"
    assert exporters["prometheus/obsconform"] == {"endpoint": "127.0.0.1:4104"}
    # Nothing of the team's exporters survives: no endpoint outside 127.0.0.1, no credentials.
    text = json.dumps(config)
    assert "honeycomb" not in text and "datadog" not in text and "HONEYCOMB_KEY" not in text
    assert config["connectors"] == {"spanmetrics": {}}


def test_without_jaeger_and_prometheus_only_the_after_pipeline_receiver_is_exported_to() -> None:
    config = runnable(team("production"))
    assert set(config["exporters"]) == {AFTER_PIPELINE_EXPORTER}
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["spanmetrics", AFTER_PIPELINE_EXPORTER]


def test_extensions_other_than_the_harness_health_check_are_dropped() -> None:
    config = runnable(team("production"))
    assert config["extensions"] == {"health_check": {"endpoint": "127.0.0.1:4103"}}
    assert config["service"]["extensions"] == ["health_check"]
    # The team's own telemetry settings give way to a free port for its own metrics.
    readers = config["service"]["telemetry"]["metrics"]["readers"]
    assert readers == [{"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": 4105}}}}]


def test_batch_timeouts_are_capped_and_the_rest_of_the_batch_config_kept() -> None:
    assert runnable(team("redaction"))["processors"]["batch"] == {"send_batch_size": 8192, "timeout": "200ms"}
    assert runnable(team("production"))["processors"]["batch"] == {"timeout": "200ms"}


def test_unused_processors_are_left_out() -> None:
    source = team("attributes")
    source["processors"]["k8sattributes"] = {"auth_type": "serviceAccount"}
    assert set(runnable(source)["processors"]) == {"attributes/pii"}


def test_each_pipeline_lists_its_processors_in_order() -> None:
    assert team_pipeline_processors(team("transform")) == {
        "traces": ["filter/health", "transform"],
        "logs": ["transform"],
    }


def test_a_component_our_build_lacks_names_itself_its_pipeline_and_what_the_build_has() -> None:
    source = team("attributes")
    source["processors"]["k8sattributes"] = {}
    source["service"]["pipelines"]["traces"]["processors"] = ["k8sattributes", "attributes/pii"]
    with pytest.raises(TeamConfigError) as caught:
        runnable(source)
    assert caught.value.path == "service.pipelines.traces.processors[0]"
    problem = caught.value.problem
    assert "pipeline traces uses processor 'k8sattributes' (k8sattributes)" in problem
    assert "does not contain" in problem and ", ".join(OUR_BUILD["processors"]) in problem


def test_a_connector_our_build_lacks_is_refused() -> None:
    source = team("production")
    source["connectors"] = {"servicegraph": {}}
    source["service"]["pipelines"]["traces"]["exporters"] = ["servicegraph"]
    source["service"]["pipelines"]["metrics"]["receivers"] = ["servicegraph"]
    with pytest.raises(TeamConfigError, match="connector 'servicegraph'") as caught:
        runnable(source)
    assert caught.value.path == "service.pipelines.traces.exporters[0]"


@pytest.mark.parametrize(
    ("change", "path", "problem"),
    [
        (lambda c: c["service"].pop("pipelines"), "service.pipelines", "no pipeline"),
        (lambda c: c["service"].update(pipelines=[]), "service.pipelines", "must be a mapping"),
        (
            lambda c: c["service"]["pipelines"]["traces"].update(processors=["attributes/missing"]),
            "service.pipelines.traces.processors[0]",
            "not defined under processors (defined: attributes/pii)",
        ),
        (
            lambda c: c["service"]["pipelines"].update(profiles={"receivers": ["otlp"]}),
            "service.pipelines.profiles",
            "signal 'profiles' is not one the harness runs",
        ),
        (
            lambda c: c["service"]["pipelines"]["traces"].update(processors="attributes/pii"),
            "service.pipelines.traces.processors",
            "must be a list of component ids",
        ),
        (
            lambda c: c["service"]["pipelines"]["traces"].update(receivers=[]),
            "service.pipelines.traces.receivers",
            "has no receiver",
        ),
    ],
)
def test_a_config_of_the_wrong_shape_says_where(change: Any, path: str, problem: str) -> None:
    source = team("attributes")
    change(source)
    with pytest.raises(TeamConfigError) as caught:
        runnable(source)
    assert caught.value.path == path
    assert problem in caught.value.problem


def test_a_config_that_is_no_mapping_is_refused() -> None:
    with pytest.raises(TeamConfigError, match="a collector config is a mapping, got list"):
        runnable(["receivers"])


# --------------------------------------------------------------------------- the harness's fan-out


def test_the_harness_collector_fans_out_only_the_signals_the_team_pipelines_carry() -> None:
    config = collector_config(
        receiver_host="127.0.0.1",
        receiver_grpc_port=5001,
        jaeger_host="127.0.0.1",
        jaeger_grpc_port=6001,
        listen=LISTEN,
        renamed_exporters=True,
        metrics_to_receiver=True,
        debug=False,
        team_grpc_port=7001,
        team_signals=frozenset({"traces", "logs"}),
    )
    assert config["exporters"]["otlp_grpc/team"] == {"endpoint": "127.0.0.1:7001", "tls": {"insecure": True}}
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["exporters"][-1] == "otlp_grpc/team"
    assert pipelines["logs"]["exporters"][-1] == "otlp_grpc/team"
    assert "otlp_grpc/team" not in pipelines["metrics"]["exporters"]
    # The raw view is kept as before: the receiver and Jaeger still get what the service sent.
    assert pipelines["traces"]["exporters"][:2] == ["otlp_grpc/receiver", "otlp_grpc/jaeger"]


# --------------------------------------------------------------------------- the profile key


def profile_with(tmp_path: Path, collector: str | None, name: str = "team.yaml") -> Path:
    if collector is not None:
        (tmp_path / name).write_text(collector)
    profile = tmp_path / "conformance.yaml"
    profile.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            service: {{name: svc, command: ["true"]}}
            telemetry: {{collector_config: {name}}}
            endpoints: [{{name: health, path: /health}}]
            """
        )
    )
    return profile


def test_the_profile_key_reads_the_team_config_relative_to_the_profile(tmp_path: Path) -> None:
    text = (TEAM_CONFIGS / "redaction.yaml").read_text()
    section: TelemetrySection = load_profile(profile_with(tmp_path, text)).section(KEY)
    assert section.collector_config is not None
    assert section.collector_config.path == tmp_path / "team.yaml"
    assert section.collector_config.processors == {
        "traces": ("redaction", "batch"),
        "logs": ("redaction", "batch"),
    }
    assert section.collector_config.signals == {"traces", "logs"}


def test_without_the_key_there_is_no_team_pipeline() -> None:
    section: TelemetrySection = load_profile(REPO / "fixtures/reference_service/conformance.yaml").section(
        KEY
    )
    assert section.collector_config is None


def test_a_missing_team_config_is_a_profile_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(profile_with(tmp_path, None))
    assert caught.value.path == "telemetry.collector_config"
    assert "file not found: team.yaml" in caught.value.problem


def test_invalid_yaml_in_the_team_config_names_its_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(profile_with(tmp_path, "service: [\n"))
    assert caught.value.file == str(tmp_path / "team.yaml")
    assert caught.value.path.startswith("line ")


def test_an_empty_team_config_is_a_profile_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="file is empty"):
        load_profile(profile_with(tmp_path, ""))


def test_a_team_config_our_build_cannot_run_is_a_profile_error_at_load_time(tmp_path: Path) -> None:
    source = team("attributes")
    source["processors"]["tail_sampling"] = {"decision_wait": "10s"}
    source["service"]["pipelines"]["traces"]["processors"] = ["attributes/pii", "tail_sampling"]
    with pytest.raises(ProfileError) as caught:
        load_profile(profile_with(tmp_path, yaml.safe_dump(source)))
    assert caught.value.file == str(tmp_path / "team.yaml")
    assert caught.value.path == "service.pipelines.traces.processors[1]"
    assert "'tail_sampling'" in caught.value.problem
    assert "telemetry.collector_config" in caught.value.problem
    assert "tools/otelcol/builder-config.yaml" in caught.value.problem


def test_the_schema_refuses_a_collector_config_that_is_no_path(tmp_path: Path) -> None:
    profile = tmp_path / "conformance.yaml"
    profile.write_text(
        "version: 1\nservice: {name: svc, command: [sh]}\ntelemetry: {collector_config: 3}\n"
        "endpoints: [{name: health, path: /health}]\n"
    )
    with pytest.raises(ProfileError) as caught:
        load_profile(profile)
    assert caught.value.path == "telemetry.collector_config"


# --------------------------------------------------------------------------- PII, two views


def login_span(attributes: dict[str, Any], span_id: str = "00f067aa0ba902b7") -> Span:
    return Span(
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id=span_id,
        parent_span_id=None,
        name="POST /auth/login",
        kind="SERVER",
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes=attributes,
        resource_attributes={"service.name": "svc"},
    )


def email_canary() -> Canary:
    return CanaryGenerator("unit").new("email", endpoint="login", slot="json $.email", request=0)


def views(
    at_service: list[Span], after: list[Span], canary: Canary, processors: tuple[str, ...] = ("redaction",)
) -> tuple[list[pii.Hit], pii.AfterPipeline]:
    scanner = pii.PiiScanner([canary])
    pipeline = pii.AfterPipeline(
        "team.yaml",
        {"traces": processors},
        scanner.scan(pii.span_texts(after)),
        {"traces": f"{len(after)} spans after the team's pipeline"},
    )
    return scanner.scan(pii.span_texts(at_service)), pipeline


def test_a_leak_the_team_pipeline_removes_is_its_own_finding() -> None:
    canary = email_canary()
    hits, pipeline = views(
        [login_span({"user.email": canary.value})], [login_span({"user.email": "****"})], canary
    )
    (finding,) = pii.check_canary_leaks(hits, "traces", pipeline=pipeline)
    assert finding.requirement_id == "PII-002"
    assert finding.message.startswith("traces (spans): the email canary sent in ")
    assert 'at attributes["user.email"]' in finding.message
    assert finding.message.endswith(
        "; the team's collector pipeline (team.yaml; processors: redaction) removes it: "
        "the service leaks it, the collector hides it"
    )
    assert finding.evidence["view"] == pii.VIEW_REMOVED
    assert finding.evidence["field"] == 'attributes["user.email"]'
    assert finding.evidence["after_pipeline"] == {
        "found": None,
        "searched": "1 spans after the team's pipeline",
        "processors": ["redaction"],
    }
    assert canary.value not in json.dumps(finding.to_dict())


def test_a_leak_still_there_after_the_pipeline_is_a_plain_finding_naming_both_views() -> None:
    canary = email_canary()
    hits, pipeline = views(
        [login_span({"user.email": canary.value})],
        [login_span({"enduser.email": canary.value})],
        canary,
        ("attributes/rename",),
    )
    (finding,) = pii.check_canary_leaks(hits, "traces", pipeline=pipeline)
    assert finding.evidence["view"] == pii.VIEW_BOTH
    assert finding.message.endswith(
        "; still there after the team's collector pipeline (team.yaml; processors: attributes/rename)"
    )
    assert finding.evidence["after_pipeline"]["field"] == 'attributes["enduser.email"]'
    assert finding.evidence["after_pipeline"]["occurrences"] == 1


def test_a_leak_only_after_the_pipeline_blames_the_pipeline() -> None:
    canary = email_canary()
    hits, pipeline = views(
        [login_span({"http.route": "/auth/login"})],
        [login_span({"http.route": "/auth/login", "copied": canary.value})],
        canary,
        ("transform",),
    )
    (finding,) = pii.check_canary_leaks(hits, "traces", pipeline=pipeline)
    assert finding.evidence["view"] == pii.VIEW_ADDED
    assert finding.message.startswith(
        "traces (spans): after the team's collector pipeline (team.yaml; processors: transform) only: "
        "the email canary sent in "
    )
    assert finding.message.endswith("; the service does not emit it, the pipeline adds it")


def test_no_leak_in_either_view_passes() -> None:
    canary = email_canary()
    clean = [login_span({"http.route": "/auth/login"})]
    hits, pipeline = views(clean, clean, canary)
    assert pii.check_canary_leaks(hits, "traces", pipeline=pipeline) == []
    assert pii.check_unknown_pii(hits, pipeline=pipeline) == []


def test_channels_the_pipeline_does_not_carry_keep_their_plain_findings() -> None:
    canary = email_canary()
    scanner = pii.PiiScanner([canary])
    line = pii.ChannelText("logs", "stdout line 1", f'{{"email": "{canary.value}"}}')
    hits = scanner.scan([line])
    pipeline = pii.AfterPipeline("team.yaml", {"traces": ("redaction",)}, (), {})
    (finding,) = pii.check_canary_leaks(hits, "logs", pipeline=pipeline)
    assert "view" not in finding.evidence
    assert finding == pii.check_canary_leaks(hits, "logs")[0]


def test_pii_nobody_sent_removed_by_the_pipeline_is_reported_as_removed() -> None:
    hits, pipeline = views(
        [login_span({"note": "write to jane.doe@example.org"})],
        [login_span({"note": "write to ****"})],
        email_canary(),
    )
    (finding,) = pii.check_unknown_pii(hits, pipeline=pipeline)
    assert finding.requirement_id == "PII-006"
    assert finding.evidence["view"] == pii.VIEW_REMOVED


def test_a_partial_leak_removed_by_the_pipeline_is_reported_as_removed() -> None:
    canary = email_canary()
    local_part = canary.value.split("@")[0]
    hits, pipeline = views(
        [login_span({"user": local_part})], [login_span({"user": "****"})], canary, ("attributes/pii",)
    )
    findings = pii.check_partial_leaks(hits, pipeline=pipeline)
    assert findings and all(f.evidence["view"] == pii.VIEW_REMOVED for f in findings)


def test_otlp_log_records_are_searched_body_attributes_and_resource() -> None:
    canary = email_canary()
    record = OtlpLogRecord(
        1,
        "INFO",
        f"login by {canary.value}",
        {"user.email": canary.value, "attempt": 2},
        {"service.name": "svc"},
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    )
    hits = pii.PiiScanner([canary]).scan(pii.log_record_texts([record]))
    findings = pii.check_canary_leaks(hits, "log_records")
    assert [f.requirement_id for f in findings] == ["PII-001", "PII-001"]
    assert [f.evidence["field"] for f in findings] == ["body", 'attributes["user.email"]']
    assert findings[0].message.startswith("logs (OTLP log records): the email canary sent in ")
    assert "OTLP log record 1 in trace 4bf92f3577b34da6a3ce929d0e0e4736" in findings[0].message


def test_an_otlp_log_record_leak_the_team_pipeline_removes_is_its_own_finding() -> None:
    canary = email_canary()
    scanner = pii.PiiScanner([canary])
    raw = [OtlpLogRecord(1, "INFO", f"login by {canary.value}")]
    after = [OtlpLogRecord(1, "INFO", "login by ****")]
    pipeline = pii.AfterPipeline(
        "team.yaml",
        {"log_records": ("redaction", "batch")},
        scanner.scan(pii.log_record_texts(after)),
        {"log_records": "1 log records after the team's pipeline"},
    )
    (finding,) = pii.check_canary_leaks(
        scanner.scan(pii.log_record_texts(raw)), "log_records", pipeline=pipeline
    )
    assert finding.evidence["view"] == pii.VIEW_REMOVED
    assert "(team.yaml; processors: redaction, batch) removes it" in finding.message


def test_the_receiver_keeps_each_distinct_metric_attribute_set_once_with_its_count() -> None:
    request = json_format.ParseDict(
        {
            "resourceMetrics": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                    "scopeMetrics": [
                        {
                            "metrics": [
                                {
                                    "name": "logins",
                                    "sum": {
                                        "dataPoints": [
                                            {"asInt": "1", "attributes": [_kv("user", "a@example.org")]},
                                            {"asInt": "2", "attributes": [_kv("user", "a@example.org")]},
                                            {"asInt": "3", "attributes": [_kv("user", "b@example.org")]},
                                        ]
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        },
        ExportMetricsServiceRequest(),
    )
    with OtlpReceiver() as receiver:
        receiver._ingest_metrics(request, "grpc")
        receiver._ingest_metrics(request, "grpc")
        points = receiver.metric_points()
    assert [(p.name, dict(p.attributes), p.count) for p in points] == [
        ("logins", {"user": "a@example.org"}, 4),
        ("logins", {"user": "b@example.org"}, 2),
    ]
    assert points[0].resource_attributes == {"service.name": "svc"}


def _kv(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def test_a_metric_label_leak_the_team_pipeline_removes_is_its_own_finding() -> None:
    canary = email_canary()
    scanner = pii.PiiScanner([canary])
    raw = [OtlpMetricPoints("logins", {"user.email": canary.value, "outcome": "ok"})]
    after = [OtlpMetricPoints("logins", {"outcome": "ok"})]
    pipeline = pii.AfterPipeline(
        "team.yaml",
        {"otlp_metrics": ("attributes/pii",)},
        scanner.scan(pii.metric_point_texts(after)),
        {"otlp_metrics": "1 metric attribute sets after the team's pipeline"},
    )
    (finding,) = pii.check_canary_leaks(
        scanner.scan(pii.metric_point_texts(raw)), "otlp_metrics", pipeline=pipeline
    )
    assert finding.requirement_id == "PII-003"
    assert finding.message.startswith("metrics (OTLP metric points): the email canary sent in ")
    assert 'in OTLP metric points of logins at attributes["user.email"]' in finding.message
    assert finding.evidence["view"] == pii.VIEW_REMOVED


# --------------------------------------------------------------------------- local mode, without running


def test_without_the_collector_the_team_pipeline_is_reported_as_not_run_and_why(tmp_path: Path) -> None:
    profile = load_profile(profile_with(tmp_path, (TEAM_CONFIGS / "redaction.yaml").read_text()))
    stack = LocalStack(
        profile, tmp_path / "work", telemetry=TelemetryPlan(None, "OBSCONFORM_TELEMETRY=embedded")
    )
    after = stack.team_pipeline
    assert after is not None and not after.running
    assert after.reason == (
        "the team's collector pipeline did not run: the collector is not running "
        "(OBSCONFORM_TELEMETRY=embedded)"
    )
    assert after.spans() == [] and after.settle(1.0) == after.reason
    components = {c["name"]: c for c in stack.describe()["components"]}
    assert components["otel-collector-team"] == {
        "name": "otel-collector-team",
        "kind": "process",
        "status": "not running",
        "reason": "OBSCONFORM_TELEMETRY=embedded",
    }
    assert "otlp-receiver-after-pipeline" not in components


def test_without_the_key_local_mode_has_no_team_pipeline(tmp_path: Path) -> None:
    stack = LocalStack(
        load_profile(REPO / "fixtures/reference_service/conformance.yaml"),
        tmp_path,
        telemetry=TelemetryPlan(None, "test"),
    )
    assert stack.team_pipeline is None
    assert "otel-collector-team" not in {c["name"] for c in stack.describe()["components"]}


def test_settling_on_traces_ends_when_each_has_a_span_and_otherwise_when_quiet() -> None:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
    span.span_id = bytes.fromhex("00f067aa0ba902b7")
    span.name = "GET /models"
    with OtlpReceiver() as receiver:
        receiver._ingest_traces(request, "grpc")
        after = AfterTeamPipeline(Path("team.yaml"), {"traces": ("filter",)}, receiver)
        assert after.settle(10.0, quiet=30.0, traces=["4BF92F3577B34DA6A3CE929D0E0E4736"]) == (
            "1 of 1 traces (1 spans) after the team's pipeline"
        )
        missing = ["4bf92f3577b34da6a3ce929d0e0e4736", "a" * 32]
        assert (
            after.settle(10.0, quiet=0.2, traces=missing)
            == "1 of 2 traces (1 spans) after the team's pipeline"
        )
        assert after.settle(0.3, quiet=30.0, traces=missing).startswith("still receiving after 0.3s: 1 of 2")
