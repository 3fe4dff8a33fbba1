"""Container and external modes without an engine: the generated collector
config against the Collector's documented structure, the containers section,
the receiver's span JSON, its read-API client, the bounded engine probe and
mode selection."""

from __future__ import annotations

import gc
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conformance._exceptions import ProfileError, StackError, UsageError
from conformance._profile import load_profile
from conformance._sections.containers import (
    DEFAULT_COLLECTOR_IMAGE,
    DEFAULT_JAEGER_IMAGE,
    DEFAULT_PROMETHEUS_IMAGE,
    DEFAULT_RECEIVER_IMAGE,
    containers_section,
    with_image_overrides,
)
from conformance.collect._receiver_api import ReceiverApiTraceStore
from conformance.stack import MODES, Stack, make_stack, resolve_mode
from conformance.stack._collector import (
    collector_config,
    collector_pipeline_counts,
    collector_version,
    render_collector_config,
)
from conformance.stack._containers import ContainerStack
from conformance.stack._docker import probe_engine, run_labels
from conformance.stack._external import ExternalStack
from conformance.stack._local import LocalStack
from conformance.stack._receiver_server import record_from_json, record_to_json, span_from_json, span_to_json
from conformance.telemetry import OtlpLogRecord, OtlpMetricPoints, Span, SpanEvent

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "fixtures/reference_service/conformance.yaml"


# -- the collector's documented configuration structure ----------------------------------------
# opentelemetry.io/docs/collector/configuration: top-level sections of components keyed by
# "type[/name]"; service.pipelines keyed by "traces|metrics|logs[/name]", each with receivers
# and exporters (processors optional) that must be defined; service.extensions must be defined.

_SECTIONS = {"receivers", "processors", "exporters", "extensions", "connectors", "service"}
_COMPONENT_ID = re.compile(r"^[a-z][a-z0-9_]*(/[^/\s]+)?$")
_PIPELINE_ID = re.compile(r"^(traces|metrics|logs)(/[^/\s]+)?$")
_ENDPOINT = re.compile(r"^[a-z0-9.-]+:\d{1,5}$")


def collector_structure_problems(config: dict[str, Any]) -> list[str]:
    problems = [f"unknown top-level key {k!r}" for k in config if k not in _SECTIONS]
    for section in _SECTIONS - {"service"}:
        for component in config.get(section, {}) or {}:
            if not _COMPONENT_ID.match(component):
                problems.append(f"{section}: {component!r} is not a component id type[/name]")
    service = config.get("service", {})
    for ext in service.get("extensions", []):
        if ext not in (config.get("extensions") or {}):
            problems.append(f"service.extensions: {ext!r} is not defined under extensions")
    pipelines = service.get("pipelines", {})
    if not pipelines:
        problems.append("service.pipelines is empty")
    for name, pipeline in pipelines.items():
        if not _PIPELINE_ID.match(name):
            problems.append(f"service.pipelines: {name!r} is not traces|metrics|logs[/name]")
        unknown = set(pipeline) - {"receivers", "processors", "exporters"}
        if unknown:
            problems.append(f"service.pipelines.{name}: unknown keys {sorted(unknown)}")
        for role in ("receivers", "exporters"):
            if not pipeline.get(role):
                problems.append(f"service.pipelines.{name}.{role} must not be empty")
        for role in ("receivers", "processors", "exporters"):
            for component in pipeline.get(role, []):
                if component not in (config.get(role) or {}):
                    problems.append(f"service.pipelines.{name}.{role}: {component!r} is not defined")
    return problems


@pytest.mark.parametrize("jaeger", ["jaeger", None])
def test_collector_config_follows_the_documented_structure(jaeger: str | None) -> None:
    config = yaml.safe_load(
        render_collector_config(receiver_host="otlp-receiver", receiver_grpc_port=4317, jaeger_host=jaeger)
    )
    assert collector_structure_problems(config) == []
    assert config == collector_config(
        receiver_host="otlp-receiver", receiver_grpc_port=4317, jaeger_host=jaeger
    )


def test_collector_config_routes_each_signal() -> None:
    config = collector_config(receiver_host="otlp-receiver", receiver_grpc_port=4317, jaeger_host="jaeger")
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["otlp/receiver", "otlp/jaeger", "debug"]
    assert pipelines["metrics"]["exporters"] == ["prometheus", "debug"]
    assert config["exporters"]["otlp/jaeger"] == {"endpoint": "jaeger:4317", "tls": {"insecure": True}}
    assert config["exporters"]["otlp/receiver"]["endpoint"] == "otlp-receiver:4317"
    protocols = config["receivers"]["otlp"]["protocols"]
    # The service reaches the collector by name on the stack network: listen on all of its interfaces.
    assert protocols == {"grpc": {"endpoint": "0.0.0.0:4317"}, "http": {"endpoint": "0.0.0.0:4318"}}
    for exporter in ("otlp/receiver", "otlp/jaeger"):
        assert _ENDPOINT.match(config["exporters"][exporter]["endpoint"])
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert reader == {"host": "0.0.0.0", "port": 8888}


def test_collector_config_without_jaeger_has_no_jaeger_exporter() -> None:
    config = collector_config(receiver_host="otlp-receiver", receiver_grpc_port=4317, jaeger_host=None)
    assert "otlp/jaeger" not in config["exporters"]
    assert "otlp/jaeger" not in config["service"]["pipelines"]["traces"]["exporters"]


def test_structure_check_catches_an_undefined_exporter() -> None:
    """The structure check itself can fail (a check no test can fail is a defect)."""
    config = collector_config(receiver_host="r", receiver_grpc_port=4317, jaeger_host=None)
    config["service"]["pipelines"]["traces"]["exporters"].append("zipkin")
    config["service"]["pipelines"]["bogus"] = {"receivers": []}
    problems = collector_structure_problems(config)
    assert "service.pipelines.traces.exporters: 'zipkin' is not defined" in problems
    assert "service.pipelines: 'bogus' is not traces|metrics|logs[/name]" in problems


# -- the collector's own metrics --------------------------------------------------------------

#: As otelcol-obsconform v0.161.0 serves them (names without ``_total``), trimmed.
OWN_METRICS = """\
# HELP otelcol_exporter_send_failed_spans Number of spans in failed attempts to send to destination.
# TYPE otelcol_exporter_send_failed_spans counter
otelcol_exporter_send_failed_spans{exporter="otlp_grpc/jaeger",server_address="127.0.0.1",server_port="1"} 3
otelcol_exporter_send_failed_spans{exporter="otlp_grpc/receiver",server_address="127.0.0.1",server_port="2"} 0
# HELP otelcol_exporter_sent_spans Number of spans successfully sent to destination.
# TYPE otelcol_exporter_sent_spans counter
otelcol_exporter_sent_spans{exporter="otlp_grpc/jaeger",server_address="127.0.0.1",server_port="1"} 7
otelcol_exporter_sent_spans{exporter="otlp_grpc/receiver",server_address="127.0.0.1",server_port="2"} 10
# HELP otelcol_receiver_accepted_spans Number of spans successfully pushed into the pipeline.
# TYPE otelcol_receiver_accepted_spans counter
otelcol_receiver_accepted_spans{receiver="otlp",transport="grpc"} 4
otelcol_receiver_accepted_spans{receiver="otlp",transport="http"} 6
# HELP otelcol_receiver_refused_log_records Number of log records that could not be pushed into the pipeline.
# TYPE otelcol_receiver_refused_log_records counter
otelcol_receiver_refused_log_records{receiver="otlp",transport="http"} 2
# HELP otelcol_process_uptime Uptime of the process
# TYPE otelcol_process_uptime counter
otelcol_process_uptime 5.03
# HELP target_info Target metadata
# TYPE target_info gauge
target_info{service_name="otelcol-obsconform",service_version="0.161.0"} 1
"""


def test_collector_counts_sum_each_signal_and_name_every_loss() -> None:
    counts = collector_pipeline_counts(OWN_METRICS)
    assert counts["accepted"] == {"spans": 10}
    assert counts["sent"] == {"spans": 17}
    assert counts["send_failed"] == {"spans": 3}
    assert counts["refused"] == {"log_records": 2}
    assert counts["lost"] == 5
    assert counts["problems"] == [
        "exporter otlp_grpc/jaeger failed to send 3 spans",
        "receiver otlp refused 2 log records",
    ]
    assert collector_version(OWN_METRICS) == "0.161.0"


def test_collector_counts_of_older_releases_with_total_suffixes() -> None:
    older = "\n".join(
        [
            "# TYPE otelcol_receiver_accepted_spans_total counter",
            'otelcol_receiver_accepted_spans_total{receiver="otlp",transport="grpc"} 8',
            "# TYPE otelcol_processor_dropped_spans_total counter",
            'otelcol_processor_dropped_spans_total{processor="memory_limiter"} 1',
            "",
        ]
    )
    counts = collector_pipeline_counts(older)
    assert (counts["accepted"], counts["dropped"], counts["lost"]) == ({"spans": 8}, {"spans": 1}, 1)
    assert counts["problems"] == ["processor memory_limiter dropped 1 spans"]


def test_a_clean_run_has_no_loss_and_malformed_metrics_are_an_error_not_a_crash() -> None:
    clean = OWN_METRICS.replace("} 3\n", "} 0\n").replace("} 2\n", "} 0\n")
    counts = collector_pipeline_counts(clean)
    assert (counts["lost"], counts["problems"]) == (0, [])
    broken = collector_pipeline_counts('otelcol_receiver_accepted_spans{receiver="otlp" 1\n')
    assert broken.keys() == {"error"}
    assert "could not be parsed" in broken["error"]
    assert collector_version("not { an exposition") == ""


# -- the containers section ------------------------------------------------------------------


def _profile(tmp_path: Path, containers: dict[str, Any] | None = None, **service: Any) -> Path:
    data: dict[str, Any] = {"version": 1, "service": {"name": "svc", "command": ["x"], **service}}
    if containers is not None:
        data["containers"] = containers
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_default_collector_image_is_the_release_local_mode_builds() -> None:
    """One release for every collector module (tools/otelcol/go.mod) and the default image."""
    go_mod = (Path(__file__).resolve().parents[2] / "tools" / "otelcol" / "go.mod").read_text()
    release = re.search(r"go\.opentelemetry\.io/collector/otelcol v(\S+)", go_mod)
    assert release is not None
    assert f"otel/opentelemetry-collector-contrib:{release[1]}" == DEFAULT_COLLECTOR_IMAGE


def test_environment_replaces_the_default_images_but_not_the_profile_or_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSCONFORM_COLLECTOR_IMAGE", "obsconform/otel-collector:local")
    monkeypatch.setenv("OBSCONFORM_JAEGER_IMAGE", "obsconform/jaeger:local")
    section = containers_section(load_profile(_profile(tmp_path)))
    assert (section.collector.image, section.jaeger.image) == (
        "obsconform/otel-collector:local",
        "obsconform/jaeger:local",
    )
    profile = load_profile(_profile(tmp_path, {"jaeger": {"image": "mirror/jaegertracing/jaeger:2.12.0"}}))
    assert containers_section(profile).jaeger.image == "mirror/jaegertracing/jaeger:2.12.0"
    overridden = containers_section(with_image_overrides(profile, collector="mirror/contrib:0.161.0"))
    assert overridden.collector.image == "mirror/contrib:0.161.0"


def test_defaults_are_the_official_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OBSCONFORM_COLLECTOR_IMAGE", raising=False)
    monkeypatch.delenv("OBSCONFORM_JAEGER_IMAGE", raising=False)
    section = containers_section(load_profile(_profile(tmp_path)))
    assert section.prometheus_image == DEFAULT_PROMETHEUS_IMAGE == "prom/prometheus:v2.53.2"
    assert section.collector.image == DEFAULT_COLLECTOR_IMAGE
    assert DEFAULT_COLLECTOR_IMAGE.startswith("otel/opentelemetry-collector-contrib:")
    assert section.jaeger.image == DEFAULT_JAEGER_IMAGE
    assert DEFAULT_JAEGER_IMAGE.startswith("jaegertracing/jaeger:")  # Jaeger v2, as local mode runs
    assert section.receiver_image == DEFAULT_RECEIVER_IMAGE
    assert (section.collector.enabled, section.jaeger.enabled) == (None, None)
    assert section.service.image is None
    assert (section.service.port, section.service.scrape_port, section.service.ready_path) == (
        8000,
        8000,
        "/health",
    )
    assert (section.pull, section.startup_timeout, section.pull_timeout) == ("missing", 60.0, 300.0)


def test_section_values_and_service_image_fallback(tmp_path: Path) -> None:
    profile = load_profile(
        _profile(
            tmp_path,
            {
                "service": {
                    "port": 9000,
                    "metrics_port": 9100,
                    "command": ["--port", "{port}"],
                    "env": {"A": 1},
                },
                "prometheus": {"image": "mirror.example/prom/prometheus:v2.53.2"},
                "jaeger": {"enabled": False},
                "collector": {"enabled": True},
                "pull": "never",
            },
            image="registry.example/svc:1.2",
            ready={"path": "/ready"},
        )
    )
    section = containers_section(profile)
    assert section.service.image == "registry.example/svc:1.2"
    assert (section.service.port, section.service.scrape_port) == (9000, 9100)
    assert section.service.command == ("--port", "{port}")
    assert section.service.env == {"A": "1"}
    assert section.service.ready_path == "/ready"
    assert section.prometheus_image == "mirror.example/prom/prometheus:v2.53.2"
    assert (section.jaeger.enabled, section.collector.enabled, section.pull) == (False, True, "never")


def test_cli_image_overrides_win_only_when_given(tmp_path: Path) -> None:
    profile = load_profile(_profile(tmp_path, {"prometheus": {"image": "a/prom:1"}}, image="a/svc:1"))
    same = with_image_overrides(profile)
    assert containers_section(same) == containers_section(profile)
    changed = containers_section(
        with_image_overrides(
            profile,
            service="b/svc:2",
            prometheus="b/prom:2",
            receiver="b/rcv:2",
            collector="b/col:2",
            jaeger="b/jae:2",
            pull="never",
        )
    )
    assert changed.images() == {
        "service": "b/svc:2",
        "prometheus": "b/prom:2",
        "otlp-receiver": "b/rcv:2",
        "otel-collector": "b/col:2",
        "jaeger": "b/jae:2",
    }
    assert changed.pull == "never"


@pytest.mark.parametrize(
    ("kwargs", "expect"),
    [
        ({"prometheus": "prom prometheus"}, "--prometheus-image: must be an image reference"),
        ({"service": ""}, "--service-image: must be an image reference"),
        ({"pull": "always"}, "--pull: must be missing or never"),
    ],
)
def test_bad_cli_overrides_are_one_line(tmp_path: Path, kwargs: dict[str, str], expect: str) -> None:
    profile = load_profile(_profile(tmp_path))
    with pytest.raises(ProfileError, match=re.escape(expect)):
        with_image_overrides(profile, **kwargs)


def test_reference_profile_names_its_image() -> None:
    section = containers_section(load_profile(REFERENCE))
    assert section.service.image == "obsconform/reference-service:local"
    assert section.service.ready_path == "/health/ready"


# -- the receiver's span JSON --------------------------------------------------------------


def _span(**overrides: Any) -> Span:
    values: dict[str, Any] = {
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "parent_span_id": None,
        "name": "GET /users/{user_id}",
        "kind": "SERVER",
        "start_time_unix_nano": 1_700_000_000_123_456_789,
        "end_time_unix_nano": 1_700_000_000_223_456_789,
        "attributes": {
            "http.status_code": 200,
            "ratio": 0.5,
            "ok": True,
            "tags": ("a", "b"),
            "nested": {"k": (1, 2), "raw": b"\x00\xff"},
            "blob": b"bytes",
        },
        "resource_attributes": {"service.name": "reference-service"},
        "events": (SpanEvent("exception", 1_700_000_000_200_000_000, {"exception.type": "E"}),),
        "status_code": "ERROR",
        "status_message": "boom",
        "trace_state": "rojo=00f067aa0ba902b7",
        "scope_name": "opentelemetry.instrumentation.fastapi",
    }
    values.update(overrides)
    return Span(**values)


@pytest.mark.parametrize(
    "span", [_span(), _span(parent_span_id="b7ad6b7169203331", attributes={}, events=())]
)
def test_span_json_round_trips_exactly(span: Span) -> None:
    encoded = json.loads(json.dumps(span_to_json(span)))  # through real JSON text
    assert span_from_json(encoded) == span


@pytest.mark.parametrize(
    "broken", [{}, {"trace_id": "x"}, {**span_to_json(_span()), "start_time_unix_nano": None}]
)
def test_malformed_span_json_is_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a span document"):
        span_from_json(broken)


RECORDS = [
    OtlpLogRecord(1_700_000_000_000_000_000, "INFO", "user logged in",
                  {"user.email": "a@example.com", "tags": ("x", "y"), "raw": b"\x00\xff"},
                  {"service.name": "svc"}, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
    OtlpLogRecord(1, "", {"event": "login", "nested": {"ok": True}}),
    OtlpMetricPoints("http.server.request.duration", {"http.route": "/users/{id}"}, {"service.name": "s"}, 7),
]  # fmt: skip


@pytest.mark.parametrize("record", RECORDS, ids=["log-record", "map-body", "metric-points"])
def test_record_json_round_trips_exactly(record: OtlpLogRecord | OtlpMetricPoints) -> None:
    encoded = json.loads(json.dumps(record_to_json(record)))  # through real JSON text
    assert record_from_json(type(record), encoded) == record


@pytest.mark.parametrize("broken", [[], {"name": 3.5, "count": "x", "attributes": []}, {"attributes": {}}])
def test_malformed_record_json_is_refused(broken: Any) -> None:
    with pytest.raises(ValueError, match="not a OtlpMetricPoints document"):
        record_from_json(OtlpMetricPoints, broken)


# -- the read-API client -------------------------------------------------------------------


def _store(handler: Any) -> ReceiverApiTraceStore:
    return ReceiverApiTraceStore(
        "http://127.0.0.1:4319", client=httpx.Client(transport=httpx.MockTransport(handler)), where="test"
    )


def test_receiver_api_store_reads_spans_and_filters_by_trace() -> None:
    seen: list[httpx.Request] = []
    span = _span()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/spans":
            return httpx.Response(200, json=[span_to_json(span)])
        return httpx.Response(200, json={"spans": {"received": 1}})

    store = _store(handler)
    assert store.spans() == [span]
    assert store.spans(span.trace_id.upper()) == [span]
    assert seen[1].url.params["trace_id"] == span.trace_id
    assert store.stats() == {"spans": {"received": 1}}
    assert "read API at http://127.0.0.1:4319" in store.describe()


@pytest.mark.parametrize(
    ("response", "expect"),
    [
        (httpx.Response(500, text="kaput"), "answered 500"),
        (httpx.Response(200, text="not json"), "did not return JSON"),
        (httpx.Response(200, json={"spans": []}), "not a list"),
        (httpx.Response(200, json=[{"name": "half a span"}]), "malformed span"),
    ],
)
def test_receiver_api_problems_are_stack_errors(response: httpx.Response, expect: str) -> None:
    with pytest.raises(StackError, match=expect):
        _store(lambda request: response).spans()


def test_receiver_api_store_reads_log_records_and_metric_points() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        documents = {"/log_records": RECORDS[:2], "/metric_points": RECORDS[2:]}[request.url.path]
        return httpx.Response(200, json=[record_to_json(r) for r in documents])

    store = _store(handler)
    assert store.log_records() == RECORDS[:2]
    assert store.metric_points() == RECORDS[2:]


def test_malformed_records_from_the_api_are_stack_errors() -> None:
    store = _store(lambda request: httpx.Response(200, json=[{"time_unix_nano": "soon"}]))
    with pytest.raises(StackError, match="malformed record"):
        store.log_records()
    with pytest.raises(StackError, match="malformed points"):
        store.metric_points()


def test_receiver_api_unreachable_is_a_stack_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(StackError, match="did not answer"):
        _store(refuse).spans()


# -- engine probe and mode selection -------------------------------------------------------


def test_auto_mode_is_local_when_no_engine_answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    started = time.monotonic()
    mode, why = resolve_mode("auto", probe_timeout=2.0)
    assert (mode, time.monotonic() - started < 2.5) == ("local", True)
    assert why.startswith("auto: ")


@pytest.fixture
def silent_socket(tmp_path: Path) -> Iterator[Path]:
    """A unix socket that accepts connections and never answers: a hung engine."""
    path = tmp_path / "hung.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue
        for conn in accepted:
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join(2)
    server.close()


# docker-py's unix-socket connection is not closed when a request times out; the probe's
# thread leaves it to the garbage collector, which is collected (and its warning muted) here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_engine_probe_is_bounded_when_the_engine_hangs(
    monkeypatch: pytest.MonkeyPatch, silent_socket: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{silent_socket}")
    started = time.monotonic()
    status = probe_engine(1.0)
    elapsed = time.monotonic() - started
    assert not status.available
    assert elapsed < 1.8, elapsed
    assert "did not answer" in status.reason or "no Docker engine answers" in status.reason
    # The abandoned probe thread ends at its client timeout; wait for it, so its socket is closed here.
    for thread in threading.enumerate():
        if thread.name == "docker-probe":
            thread.join(5)
    gc.collect()


def test_explicit_modes_need_no_probe() -> None:
    assert [resolve_mode(m)[0] for m in MODES[1:]] == ["containers", "local", "external"]


@pytest.mark.parametrize(
    ("mode", "cls"), [("local", LocalStack), ("containers", ContainerStack), ("external", ExternalStack)]
)
def test_each_mode_has_a_stack_offering_the_protocol(mode: str, cls: type, tmp_path: Path) -> None:
    stack = make_stack(mode, load_profile(REFERENCE), tmp_path)
    assert type(stack) is cls and stack.mode == mode
    members = [name for name in dir(Stack) if not name.startswith("_")] + ["mode"]
    for name in members:
        assert hasattr(cls, name) or name == "mode", f"{cls.__name__} lacks {name}"


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown stack mode"):
        make_stack("kubernetes", load_profile(REFERENCE), tmp_path)


def test_container_mode_without_an_image_is_a_usage_error(tmp_path: Path) -> None:
    stack = ContainerStack(load_profile(_profile(tmp_path)), tmp_path / "work")
    with pytest.raises(UsageError, match="container mode needs the service's image"):
        stack.start()


def test_external_mode_needs_a_service_url(tmp_path: Path) -> None:
    stack = ExternalStack(load_profile(_profile(tmp_path)), tmp_path)
    with pytest.raises(UsageError, match=r"containers\.external\.service_url"):
        stack.start()
    for reader in (lambda: stack.trace_store, lambda: stack.log_path("stdout")):
        with pytest.raises(StackError, match="is not set"):
            reader()


def test_run_labels_name_the_run_and_the_harness() -> None:
    labels = run_labels("service")
    assert labels["obsconform.component"] == "service"
    assert re.fullmatch(r"[0-9a-f]{12}", labels["obsconform.run-id"])
    assert re.fullmatch(r"\d+:\d+", labels["obsconform.harness"])


# -- the CLI's --mode (no engine needed) -----------------------------------------------------


def _cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance.cli",
            "run",
            "--profile",
            str(REFERENCE),
            "--report-dir",
            str(tmp_path / "report"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=tmp_path,
    )


def test_cli_external_mode_without_urls_is_a_usage_error(tmp_path: Path) -> None:
    run = _cli(tmp_path, "--mode", "external")
    assert run.returncode == 2, run.stderr
    assert "(external mode; requested)" in run.stderr.splitlines()[0]
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .endswith("external mode needs containers.external.service_url (the running service's base URL)")
    )


def test_cli_container_mode_without_engine_is_a_harness_error(tmp_path: Path) -> None:
    run = _cli(tmp_path, "--mode", "containers", env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert run.returncode == 3, run.stderr
    assert "no Docker engine answers" in run.stderr.strip().splitlines()[-1]
    report = json.loads((tmp_path / "report" / "conformance-report.json").read_text())
    assert report["stack"]["mode"] == "containers"
    # Everything errors but what the profile declares not applicable (skipped, with its reason).
    assert {r["id"] for r in report["results"] if r["status"] != "error"} == {"TRC-013", "MET-011", "SEM-004"}


def test_cli_rejects_an_unknown_mode(tmp_path: Path) -> None:
    run = _cli(tmp_path, "--mode", "kubernetes")
    assert run.returncode == 2
    assert "invalid choice: 'kubernetes'" in run.stderr
