"""The OpenTelemetry Collector's configuration, for container and local mode (pure).

Structure followed: the Collector's documented configuration
(opentelemetry.io/docs/collector/configuration): top-level ``receivers``,
``processors``, ``exporters``, ``extensions`` whose keys are component ids
``type[/name]``, and a ``service`` section that enables ``extensions`` and
``pipelines`` (``traces``, ``metrics``, ``logs``), each naming receivers,
processors and exporters defined above; internal metrics are served through
``service.telemetry.metrics.readers`` (a pull reader with a Prometheus
exporter, the form documented for current releases).

What the generated config does: OTLP in (gRPC 4317, HTTP 4318); traces to the
harness's receiver container (the trace store) and, when Jaeger runs, to Jaeger
over OTLP; metrics to a ``prometheus`` exporter (scraped by Prometheus as job
``otel-collector``); logs to the receiver; everything also to the ``debug``
exporter, whose output lands in the collector's captured log.

Local mode renders the same pipelines with :class:`CollectorListen` set to free
127.0.0.1 ports, the exporter names of the release it runs (``otlp_grpc``,
``otlp_http`` since v0.161.0; container mode keeps ``otlp``, which every
official image still loads), metrics also sent raw to the receiver, no debug
exporter, and its own metrics on a free port instead of the fixed 8888.

:func:`collector_pipeline_counts` reads those own metrics (accepted, refused,
sent, failed items): both modes put them in the report's stack section, so a
collector that refused or dropped telemetry is visible there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "COLLECTOR_HEALTH_PORT",
    "COLLECTOR_METRICS_EXPORTER_PORT",
    "COLLECTOR_OTLP_GRPC_PORT",
    "COLLECTOR_OTLP_HTTP_PORT",
    "COLLECTOR_TELEMETRY_PORT",
    "CollectorListen",
    "collector_config",
    "collector_pipeline_counts",
    "collector_version",
    "render_collector_config",
]

COLLECTOR_OTLP_GRPC_PORT = 4317
COLLECTOR_OTLP_HTTP_PORT = 4318
COLLECTOR_HEALTH_PORT = 13133
#: The ``prometheus`` exporter: metrics the service sent over OTLP.
COLLECTOR_METRICS_EXPORTER_PORT = 8889
#: The collector's own metrics.
COLLECTOR_TELEMETRY_PORT = 8888

_ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - inside the collector container's own network namespace


@dataclass(frozen=True, slots=True)
class CollectorListen:
    """Where the collector listens: its container's interfaces on the fixed ports
    (the defaults), or free loopback ports in local mode.

    ``telemetry`` is the port of the collector's own metrics; ``None`` switches
    them off (``service.telemetry.metrics.level: none``).
    """

    host: str = _ALL_INTERFACES
    otlp_grpc: int = COLLECTOR_OTLP_GRPC_PORT
    otlp_http: int = COLLECTOR_OTLP_HTTP_PORT
    health: int = COLLECTOR_HEALTH_PORT
    prometheus_exporter: int = COLLECTOR_METRICS_EXPORTER_PORT
    telemetry: int | None = COLLECTOR_TELEMETRY_PORT

    def endpoint(self, port: int) -> str:
        return f"{self.host}:{port}"


def collector_config(
    *,
    receiver_host: str,
    receiver_grpc_port: int,
    jaeger_host: str | None,
    jaeger_grpc_port: int = COLLECTOR_OTLP_GRPC_PORT,
    listen: CollectorListen | None = None,
    receiver_http_port: int | None = None,
    renamed_exporters: bool = False,
    metrics_to_receiver: bool = False,
    debug: bool = True,
) -> dict[str, Any]:
    """The configuration as a mapping (see the module docstring).

    ``receiver_http_port`` sends to the receiver over OTLP/HTTP instead of gRPC;
    ``renamed_exporters`` uses the exporter names of v0.161.0 and later
    (``otlp_grpc``/``otlp_http``), which that release loads without a
    deprecation warning; ``metrics_to_receiver`` sends metric points to the
    receiver as well as to the ``prometheus`` exporter.
    """
    listen = listen or CollectorListen()
    grpc_exporter, http_exporter = ("otlp_grpc", "otlp_http") if renamed_exporters else ("otlp", "otlphttp")
    to_receiver: dict[str, Any]
    if receiver_http_port is None:
        receiver_exporter = f"{grpc_exporter}/receiver"
        to_receiver = {"endpoint": f"{receiver_host}:{receiver_grpc_port}", "tls": {"insecure": True}}
    else:
        receiver_exporter = f"{http_exporter}/receiver"
        to_receiver = {"endpoint": f"http://{receiver_host}:{receiver_http_port}"}
    debug_exporters = ["debug"] if debug else []
    trace_exporters = [receiver_exporter, *debug_exporters]
    exporters: dict[str, Any] = {
        receiver_exporter: to_receiver,
        "prometheus": {"endpoint": listen.endpoint(listen.prometheus_exporter)},
    }
    if debug:
        exporters["debug"] = {"verbosity": "basic"}
    if jaeger_host:
        jaeger_exporter = f"{grpc_exporter}/jaeger"
        exporters[jaeger_exporter] = {
            "endpoint": f"{jaeger_host}:{jaeger_grpc_port}",
            "tls": {"insecure": True},
        }
        trace_exporters.insert(1, jaeger_exporter)
    metrics_exporters = [
        "prometheus",
        *([receiver_exporter] if metrics_to_receiver else []),
        *debug_exporters,
    ]
    telemetry: dict[str, Any] = (
        {"level": "none"}
        if listen.telemetry is None
        else {
            "level": "basic",
            "readers": [
                {"pull": {"exporter": {"prometheus": {"host": listen.host, "port": listen.telemetry}}}}
            ],
        }
    )
    return {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": listen.endpoint(listen.otlp_grpc)},
                    "http": {"endpoint": listen.endpoint(listen.otlp_http)},
                }
            }
        },
        # Short batches: the harness waits for spans, it should not wait for a full batch.
        "processors": {"batch": {"timeout": "200ms"}},
        "exporters": exporters,
        "extensions": {"health_check": {"endpoint": listen.endpoint(listen.health)}},
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": trace_exporters},
                "metrics": {"receivers": ["otlp"], "processors": ["batch"], "exporters": metrics_exporters},
                "logs": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": [receiver_exporter, *debug_exporters],
                },
            },
            "telemetry": {"metrics": telemetry},
        },
    }


def render_collector_config(
    *, receiver_host: str, receiver_grpc_port: int, jaeger_host: str | None, metrics_to_receiver: bool = False
) -> str:
    """The configuration as YAML text, for the collector's ``--config`` file."""
    config = collector_config(
        receiver_host=receiver_host,
        receiver_grpc_port=receiver_grpc_port,
        jaeger_host=jaeger_host,
        metrics_to_receiver=metrics_to_receiver,
    )
    header = "# Generated by obsconform for one run (container mode); edits are overwritten.\n"
    return header + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


# The collector's own counters (its ``service.telemetry`` metrics), as v0.161.0 names them
# (``otelcol_receiver_accepted_spans``, ``otelcol_exporter_send_failed_log_records``, ...);
# releases before v0.120 and some Prometheus translations add ``_total``, which is ignored.
_OWN_COUNTER = re.compile(
    r"^otelcol_(?P<kind>receiver|processor|exporter)_"
    r"(?P<what>accepted|refused|failed|sent|send_failed|enqueue_failed|dropped)_"
    r"(?P<signal>spans|metric_points|log_records)(?:_total)?$"
)
#: Counts that mean telemetry was lost or refused on its way through the collector.
_LOSS = ("refused", "failed", "send_failed", "enqueue_failed", "dropped")
_COMPONENT_LABEL = {"receiver": "receiver", "processor": "processor", "exporter": "exporter"}


def collector_pipeline_counts(exposition: str) -> dict[str, Any]:
    """What went through the collector, from its own metrics' exposition (pure).

    ``{"accepted": {"spans": 12, ...}, "sent": {...}, "refused": {...}, ...,
    "lost": 0, "problems": ["exporter otlp_grpc/jaeger failed to send 3 spans", ...]}``:
    each count summed over the components (``receiver``, ``exporter``, ...
    label) and transports; ``lost`` sums refused, failed, send-failed,
    enqueue-failed and dropped items, ``problems`` names each component with a
    non-zero loss. An exposition the parser refuses gives ``{"error": ...}``.
    """
    totals: dict[str, dict[str, float]] = {}
    per_component: dict[tuple[str, str, str, str], float] = {}
    try:
        for family in text_string_to_metric_families(exposition):
            for sample in family.samples:
                match = _OWN_COUNTER.match(sample.name)
                if match is None:
                    continue
                kind, what, signal = match["kind"], match["what"], match["signal"]
                key = "receiver_failed" if (kind, what) == ("receiver", "failed") else what
                bucket = totals.setdefault(key, {})
                bucket[signal] = bucket.get(signal, 0.0) + sample.value
                component = sample.labels.get(_COMPONENT_LABEL[kind], "?")
                index = (kind, component, what, signal)
                per_component[index] = per_component.get(index, 0.0) + sample.value
    except ValueError as exc:
        return {"error": f"the collector's own metrics could not be parsed: {exc}"}
    counts: dict[str, Any] = {k: {s: int(v) for s, v in sorted(b.items())} for k, b in sorted(totals.items())}
    lost = sum(v for key, b in counts.items() if key in _LOSS or key == "receiver_failed" for v in b.values())
    problems = [
        f"{kind} {component} {_VERB[what]} {int(value)} {signal.replace('_', ' ')}"
        for (kind, component, what, signal), value in sorted(per_component.items())
        if what in _LOSS and value > 0
    ]
    return {**counts, "lost": lost, "problems": problems}


_VERB = {
    "refused": "refused",
    "failed": "failed to process",
    "send_failed": "failed to send",
    "enqueue_failed": "failed to enqueue",
    "dropped": "dropped",
}


def collector_version(exposition: str) -> str:
    """The collector's release from its own metrics (``target_info{service_version=...}``), or ''."""
    try:
        for family in text_string_to_metric_families(exposition):
            for sample in family.samples:
                if sample.name == "target_info" and sample.labels.get("service_version"):
                    return sample.labels["service_version"]
    except ValueError:
        return ""
    return ""
