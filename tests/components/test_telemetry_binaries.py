"""The real telemetry stack's binaries: the obsconform Collector distribution and Jaeger v2.

Both come from ``scripts/build-telemetry`` (pinned Go modules in ``tools/``); the
tests ask it for the paths with ``--print-paths`` and fail, not skip, when they
are not built. Every process listens on free 127.0.0.1 ports only, with its own
telemetry endpoints (which default to fixed ports such as 8888) switched off.

One span goes the whole way a run's spans will: OTLP/HTTP from the OTel SDK into
the collector, through ``batch`` to ``otlp_http``, into Jaeger's OTLP receiver and
memory store, and back out of Jaeger's query API; on the way the ``span_metrics``
connector turns it into a call count on the collector's Prometheus exporter.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from conformance._ports import LOOPBACK, free_port
from conformance._process import ManagedProcess
from conformance._readiness import wait_answering
from conformance._wait import wait_until

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-telemetry"
START_TIMEOUT = 60.0
ARRIVAL_TIMEOUT = 30.0

#: What ``otelcol-obsconform components`` must list, kind by kind (tools/otelcol/builder-config.yaml).
#: Since v0.161.0 the OTLP exporters are ``otlp_grpc``/``otlp_http`` and the span metrics connector
#: ``span_metrics``; the old names (``otlp``, ``otlphttp``, ``spanmetrics``) still load, with a
#: deprecation warning in the collector's log.
EXPECTED_COMPONENTS = {
    "receivers": {"otlp"},
    "processors": {"batch", "memory_limiter", "attributes", "redaction", "transform", "filter"},
    "connectors": {"span_metrics"},
    "exporters": {"prometheus", "otlp_grpc", "otlp_http", "file", "debug"},
    "extensions": {"health_check"},
}

#: The internal telemetry of both binaries: no metrics endpoint (8888 by default).
QUIET_TELEMETRY = {"metrics": {"level": "none"}, "logs": {"level": "info"}}


@dataclass(frozen=True, slots=True)
class TelemetryBinaries:
    otelcol: Path
    jaeger: Path


@pytest.fixture(scope="module")
def binaries() -> TelemetryBinaries:
    proc = subprocess.run(
        [str(BUILD_SCRIPT), "--print-paths"], capture_output=True, text=True, timeout=60, check=False
    )
    paths = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    if proc.returncode != 0 or not {"otelcol", "jaeger"} <= paths.keys():
        pytest.fail(
            f"the telemetry binaries are not built; run scripts/build-telemetry "
            f"({proc.stderr.strip() or proc.stdout.strip()})",
            pytrace=False,
        )
    return TelemetryBinaries(otelcol=Path(paths["otelcol"]), jaeger=Path(paths["jaeger"]))


def _endpoint(port: int) -> str:
    return f"{LOOPBACK}:{port}"


@contextlib.contextmanager
def _serving(
    name: str, binary: Path, config: dict[str, Any], tmp_path: Path, *, ready_url: str
) -> Iterator[ManagedProcess]:
    """``binary --config`` with ``config``, until ``ready_url`` answers 200; stopped on leaving."""
    config_path = tmp_path / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = ManagedProcess(
        name,
        [str(binary), f"--config={config_path}"],
        stdout_path=tmp_path / f"{name}.stdout",
        stderr_path=tmp_path / f"{name}.stderr",
    )
    try:
        proc.start()
        wait_answering(
            ready_url,
            what=name,
            exited=lambda: (proc.poll(), proc.stderr_tail()),
            timeout=START_TIMEOUT,
            accept=lambda status: status == 200,
            expected="200",
            hint=f"its log is {proc.stderr_path}; its config {config_path}",
        )
        yield proc
    finally:
        proc.stop()


def jaeger_config(*, otlp_grpc: int, otlp_http: int, query_http: int, query_grpc: int) -> dict[str, Any]:
    """Jaeger v2 all-in-one (cmd/jaeger/internal/all-in-one.yaml) cut to OTLP in, memory store, query.

    ``jaeger_query`` traces its own requests by default in v2 and exports them over
    OTLP/gRPC to localhost:4317, whoever listens there; at shutdown it then spends
    ~10 s retrying. ``enable_tracing: false`` keeps it to itself.
    """
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            "telemetry": QUIET_TELEMETRY,
        },
        "extensions": {
            "jaeger_storage": {"backends": {"memstore": {"memory": {"max_traces": 1000}}}},
            "jaeger_query": {
                "storage": {"traces": "memstore"},
                "enable_tracing": False,
                "http": {"endpoint": _endpoint(query_http)},
                "grpc": {"endpoint": _endpoint(query_grpc)},
            },
        },
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": _endpoint(otlp_grpc)},
                    "http": {"endpoint": _endpoint(otlp_http)},
                }
            }
        },
        "processors": {"batch": {"timeout": "100ms"}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memstore"}},
    }


def collector_config(
    *, otlp_grpc: int, otlp_http: int, health: int, prometheus: int, jaeger_otlp_http: int
) -> dict[str, Any]:
    """OTLP in → batch → otlp_http to Jaeger, and span_metrics → the Prometheus exporter."""
    return {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": _endpoint(otlp_grpc)},
                    "http": {"endpoint": _endpoint(otlp_http)},
                }
            }
        },
        "processors": {"batch": {"timeout": "100ms"}},
        "connectors": {"span_metrics": {"metrics_flush_interval": "1s"}},
        "exporters": {
            "otlp_http/jaeger": {"endpoint": f"http://{_endpoint(jaeger_otlp_http)}"},
            "prometheus": {"endpoint": _endpoint(prometheus)},
        },
        "extensions": {"health_check": {"endpoint": _endpoint(health)}},
        "service": {
            "extensions": ["health_check"],
            "telemetry": QUIET_TELEMETRY,
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["otlp_http/jaeger", "span_metrics"],
                },
                "metrics": {"receivers": ["span_metrics"], "exporters": ["prometheus"]},
            },
        },
    }


def every_component_config(tmp_path: Path) -> dict[str, Any]:
    """A config that names every component of the distribution once (for ``validate``)."""
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": _endpoint(free_port())}}}},
        "processors": {
            "memory_limiter": {"check_interval": "1s", "limit_mib": 256},
            "batch": {},
            "attributes": {"actions": [{"key": "obsconform", "value": "yes", "action": "upsert"}]},
            "redaction": {"allow_all_keys": True, "blocked_values": ["4[0-9]{12}(?:[0-9]{3})?"]},
            "transform": {"trace_statements": ['set(span.attributes["seen"], true)']},
            "filter": {"traces": {"span": ['attributes["drop"] == true']}},
        },
        "connectors": {"span_metrics": {}},
        "exporters": {
            "otlp_grpc": {"endpoint": _endpoint(free_port()), "tls": {"insecure": True}},
            "otlp_http": {"endpoint": f"http://{_endpoint(free_port())}"},
            "file": {"path": str(tmp_path / "spans.jsonl")},
            "debug": {},
            "prometheus": {"endpoint": _endpoint(free_port())},
        },
        "extensions": {"health_check": {"endpoint": _endpoint(free_port())}},
        "service": {
            "extensions": ["health_check"],
            "telemetry": QUIET_TELEMETRY,
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": [
                        "memory_limiter",
                        "attributes",
                        "redaction",
                        "transform",
                        "filter",
                        "batch",
                    ],
                    "exporters": ["otlp_grpc", "otlp_http", "file", "debug", "span_metrics"],
                },
                "metrics": {"receivers": ["span_metrics"], "exporters": ["prometheus"]},
            },
        },
    }


def send_one_span(otlp_http: int, service: str) -> tuple[str, str]:
    """One SERVER span from the OTel SDK over OTLP/HTTP; its (trace id, span id) in hex."""
    finished = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(finished))
    with provider.get_tracer("obsconform.smoke").start_as_current_span("GET /smoke", kind=SpanKind.SERVER):
        pass
    provider.shutdown()
    (span,) = finished.get_finished_spans()
    exporter = OTLPSpanExporter(endpoint=f"http://{_endpoint(otlp_http)}/v1/traces", timeout=10)
    try:
        assert exporter.export([span]) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    return format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")


def wait_for_jaeger_span(query_http: int, service: str, trace_id: str, span_id: str) -> dict[str, Any]:
    """The span as Jaeger's query API (``/api/traces?service=``) returns it, its process inlined."""
    url = f"http://{_endpoint(query_http)}/api/traces"

    def probe() -> tuple[dict[str, Any] | None, str]:
        try:
            resp = httpx.get(url, params={"service": service}, timeout=5)
        except httpx.HTTPError as exc:
            return None, f"GET {url}: {type(exc).__name__}"
        if resp.status_code != 200:
            return None, f"GET {url} answered {resp.status_code}: {resp.text[:200]}"
        traces = resp.json().get("data") or []
        for trace in traces:
            for span in trace.get("spans", []):
                if span.get("traceID") == trace_id and span.get("spanID") == span_id:
                    return {**span, "process": trace["processes"][span["processID"]]}, "found"
        return None, f"{len(traces)} trace(s) for service {service}, none with span {span_id}"

    return wait_until(
        probe,
        awaited=f"span {span_id} of trace {trace_id} in Jaeger",
        timeout=ARRIVAL_TIMEOUT,
        hint="the collector's log says whether otlp_http/jaeger failed to export",
    )


def wait_for_calls_metric(prometheus: int, service: str) -> str:
    """The span_metrics call-count sample line for ``service`` once it counts a call.

    A new series is first exposed with the value 0 and counts from the next flush on.
    """
    url = f"http://{_endpoint(prometheus)}/metrics"

    def probe() -> tuple[str | None, str]:
        try:
            text = httpx.get(url, timeout=5).text
        except httpx.HTTPError as exc:
            return None, f"GET {url}: {type(exc).__name__}"
        for line in text.splitlines():
            if line.startswith("traces_span_metrics_calls") and f'service_name="{service}"' in line:
                return (None if line.endswith(" 0") else line), line
        names = sorted({line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1].isalpha()})
        return None, f"metric names: {', '.join(names) or '(none)'}"

    return wait_until(probe, awaited=f"spanmetrics calls for {service} on {url}", timeout=ARRIVAL_TIMEOUT)


def test_collector_lists_the_components_of_its_manifest(binaries: TelemetryBinaries) -> None:
    proc = subprocess.run(
        [str(binaries.otelcol), "components"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    listed = yaml.safe_load(proc.stdout)
    assert listed["buildinfo"]["command"] == "otelcol-obsconform"
    for kind, expected in EXPECTED_COMPONENTS.items():
        assert {entry["name"] for entry in listed[kind] or []} == expected, kind


def test_collector_validates_a_config_naming_every_component(
    binaries: TelemetryBinaries, tmp_path: Path
) -> None:
    config_path = tmp_path / "every-component.yaml"
    config_path.write_text(yaml.safe_dump(every_component_config(tmp_path), sort_keys=False))
    proc = subprocess.run(
        [str(binaries.otelcol), "validate", f"--config={config_path}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_jaeger_reports_its_pinned_version(binaries: TelemetryBinaries) -> None:
    proc = subprocess.run(
        [str(binaries.jaeger), "version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["gitVersion"] == binaries.jaeger.parent.name.split("-")[1]


def test_span_goes_through_the_collector_into_jaeger(binaries: TelemetryBinaries, tmp_path: Path) -> None:
    jaeger_ports = {name: free_port() for name in ("otlp_grpc", "otlp_http", "query_http", "query_grpc")}
    collector_ports = {name: free_port() for name in ("otlp_grpc", "otlp_http", "health", "prometheus")}
    service = f"obsconform-smoke-{uuid.uuid4().hex[:8]}"
    query = _endpoint(jaeger_ports["query_http"])

    with (
        _serving(
            "jaeger",
            binaries.jaeger,
            jaeger_config(**jaeger_ports),
            tmp_path,
            ready_url=f"http://{query}/api/services",
        ),
        _serving(
            "otelcol",
            binaries.otelcol,
            collector_config(**collector_ports, jaeger_otlp_http=jaeger_ports["otlp_http"]),
            tmp_path,
            ready_url=f"http://{_endpoint(collector_ports['health'])}/",
        ) as collector,
    ):
        # The collector warns at start-up about renamed components (validate does not).
        assert "deprecated" not in collector.stderr_tail(100_000), collector.stderr_path
        trace_id, span_id = send_one_span(collector_ports["otlp_http"], service)

        span = wait_for_jaeger_span(jaeger_ports["query_http"], service, trace_id, span_id)
        assert span["operationName"] == "GET /smoke"
        assert span["process"]["serviceName"] == service
        assert {"key": "span.kind", "type": "string", "value": "server"} in span["tags"]

        services = httpx.get(f"http://{query}/api/services", timeout=5).json()["data"]
        assert service in services

        calls = wait_for_calls_metric(collector_ports["prometheus"], service)
        assert calls.rsplit(" ", 1)[-1] == "1", calls


def test_missing_binaries_fail_with_the_build_hint(tmp_path: Path) -> None:
    """``--print-paths`` against an empty cache: exit 1 and the hint the fixture passes on."""
    proc = subprocess.run(
        [str(BUILD_SCRIPT), "--print-paths"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "OBSCONFORM_BIN_CACHE": str(tmp_path)},
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "run scripts/build-telemetry" in proc.stderr


def test_container_mode_configs_validate_with_the_binaries_the_images_hold(
    binaries: TelemetryBinaries, tmp_path: Path
) -> None:
    """The configs container mode mounts: the collector's names only core and contrib components
    (otelcol-obsconform carries nothing else, so the official contrib image loads it too), in the
    names every release since v0.111 knows (``otlp``, ``otlphttp``); Jaeger's is its own
    all-in-one cut down, which the official jaegertracing/jaeger image runs unchanged."""
    from conformance.stack._collector import render_collector_config
    from conformance.stack._telemetry import jaeger_config

    collector = tmp_path / "collector.yaml"
    collector.write_text(
        render_collector_config(
            receiver_host="otlp-receiver",
            receiver_grpc_port=4317,
            jaeger_host="jaeger",
            metrics_to_receiver=True,
        )
    )
    jaeger = tmp_path / "jaeger.yaml"
    jaeger.write_text(
        yaml.safe_dump(jaeger_config(otlp_grpc=4317, query_http=16686, query_grpc=16685, host="0.0.0.0"))
    )
    for binary, config in ((binaries.otelcol, collector), (binaries.jaeger, jaeger)):
        proc = subprocess.run(
            [str(binary), "validate", f"--config={config}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, f"{binary.name}: {proc.stderr[-2000:]}"


def _without_go(**extra: str) -> dict[str, str]:
    """The environment minus any Go: PATH without it, and no official tarball where it is looked for."""
    path = ":".join(p for p in os.environ["PATH"].split(":") if not (Path(p) / "go").exists())
    return {**os.environ, "PATH": path, "OBSCONFORM_GOROOT": "/nonexistent/go", **extra}


def test_without_go_a_build_is_a_clear_error_saying_how_to_get_it(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(BUILD_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_without_go(OBSCONFORM_BIN_CACHE=str(tmp_path)),
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "build-telemetry: needs the Go toolchain (go 1.26" in proc.stderr
    assert "https://go.dev/doc/install" in proc.stderr and "GOTOOLCHAIN=auto" in proc.stderr
    assert not (tmp_path / "current").exists()


def test_with_both_binaries_cached_no_go_is_needed(binaries: TelemetryBinaries) -> None:
    proc = subprocess.run(
        [str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=60, check=False, env=_without_go()
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"otelcol={binaries.otelcol}", f"jaeger={binaries.jaeger}"]
