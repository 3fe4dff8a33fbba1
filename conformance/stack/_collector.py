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

:func:`team_pipeline_config` turns the collector config a team runs in
production (profile key ``telemetry.collector_config``) into one the harness
can run: the team's processors and pipelines as written, its receivers
replaced by one OTLP receiver on harness ports, its exporters by exporters to
the stack. The harness's own collector fans the service's telemetry out to it
(``team_grpc_port`` of :func:`collector_config`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "AFTER_PIPELINE_EXPORTER",
    "COLLECTOR_HEALTH_PORT",
    "COLLECTOR_METRICS_EXPORTER_PORT",
    "COLLECTOR_OTLP_GRPC_PORT",
    "COLLECTOR_OTLP_HTTP_PORT",
    "COLLECTOR_TELEMETRY_PORT",
    "OUR_BUILD",
    "CollectorListen",
    "TeamConfigError",
    "collector_config",
    "collector_pipeline_counts",
    "collector_version",
    "render_collector_config",
    "team_pipeline_config",
    "team_pipeline_processors",
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


def _own_telemetry(listen: CollectorListen) -> dict[str, Any]:
    """``service.telemetry.metrics``: a pull reader on ``listen.telemetry``, or off."""
    if listen.telemetry is None:
        return {"level": "none"}
    return {
        "level": "basic",
        "readers": [{"pull": {"exporter": {"prometheus": {"host": listen.host, "port": listen.telemetry}}}}],
    }


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
    team_grpc_port: int | None = None,
    team_signals: frozenset[str] = frozenset(),
    team_host: str | None = None,
) -> dict[str, Any]:
    """The configuration as a mapping (see the module docstring).

    ``receiver_http_port`` sends to the receiver over OTLP/HTTP instead of gRPC;
    ``renamed_exporters`` uses the exporter names of v0.161.0 and later
    (``otlp_grpc``/``otlp_http``), which that release loads without a
    deprecation warning; ``metrics_to_receiver`` sends metric points to the
    receiver as well as to the ``prometheus`` exporter; ``team_grpc_port``
    also sends the signals in ``team_signals`` (``traces``, ``metrics``,
    ``logs``), as the service sent them, to the collector running the team's
    pipeline (:func:`team_pipeline_config`) on that port of ``team_host``
    (default ``listen.host``: 127.0.0.1 in local mode; its network alias in container mode).
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
    logs_exporters = [receiver_exporter, *debug_exporters]
    if team_grpc_port is not None:
        team_exporter = f"{grpc_exporter}/team"
        exporters[team_exporter] = {
            "endpoint": f"{team_host or listen.host}:{team_grpc_port}",
            "tls": {"insecure": True},
        }
        for signal, names in (
            ("traces", trace_exporters),
            ("metrics", metrics_exporters),
            ("logs", logs_exporters),
        ):
            if signal in team_signals:
                names.append(team_exporter)
    telemetry = _own_telemetry(listen)
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
                "logs": {"receivers": ["otlp"], "processors": ["batch"], "exporters": logs_exporters},
            },
            "telemetry": {"metrics": telemetry},
        },
    }


def render_collector_config(
    *,
    receiver_host: str,
    receiver_grpc_port: int,
    jaeger_host: str | None,
    metrics_to_receiver: bool = False,
    team_host: str | None = None,
    team_signals: frozenset[str] = frozenset(),
) -> str:
    """The configuration as YAML text, for the collector's ``--config`` file (container mode;
    ``team_host``: the network alias of the collector running the team's pipeline)."""
    config = collector_config(
        receiver_host=receiver_host,
        receiver_grpc_port=receiver_grpc_port,
        jaeger_host=jaeger_host,
        metrics_to_receiver=metrics_to_receiver,
        team_grpc_port=COLLECTOR_OTLP_GRPC_PORT if team_host else None,
        team_signals=team_signals,
        team_host=team_host,
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


# --------------------------------------------------------------------------- the team's pipeline

#: The component types our collector distribution carries (``tools/otelcol/components.go``),
#: by kind; ``otlp_grpc``/``otlp_http`` are v0.161.0's names of ``otlp``/``otlphttp``.
OUR_BUILD: dict[str, tuple[str, ...]] = {
    "receivers": ("otlp",),
    "processors": ("attributes", "batch", "filter", "memory_limiter", "redaction", "transform"),
    "exporters": ("debug", "file", "otlp", "otlp_grpc", "otlp_http", "otlphttp", "prometheus"),
    "connectors": ("span_metrics", "spanmetrics"),
    "extensions": ("health_check",),
}
_SIGNALS = ("traces", "metrics", "logs")
#: A batch processor's ``timeout`` is capped at this: batching changes when telemetry
#: leaves, not what, and the harness waits for the pipeline's output.
_TEAM_BATCH_TIMEOUT = "200ms"
_TEAM_RECEIVER = "otlp"
#: Ids of the exporters the harness puts in place of the team's (a ``/name`` no team config uses).
AFTER_PIPELINE_EXPORTER = "otlp_grpc/obsconform_after_pipeline"
_JAEGER_EXPORTER = "otlp_grpc/obsconform_jaeger"
_PROMETHEUS_EXPORTER = "prometheus/obsconform"


class TeamConfigError(ValueError):
    """A team collector config the harness cannot run: ``path`` is where in the file
    (``service.pipelines.traces.processors[1]``), ``problem`` what is wrong and the fix."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


def _component_type(component_id: str) -> str:
    return component_id.partition("/")[0]


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TeamConfigError(path, f"must be a mapping, got {type(value).__name__}")
    return value


def _id_list(value: Any, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TeamConfigError(path, "must be a list of component ids")
    return value


def _team_pipelines(team: Any) -> dict[str, dict[str, Any]]:
    """``service.pipelines``, checked for shape: pipeline id → its mapping."""
    if not isinstance(team, dict):
        raise TeamConfigError("", f"a collector config is a mapping, got {type(team).__name__}")
    service = _mapping(team.get("service"), "service")
    pipelines = _mapping(service.get("pipelines"), "service.pipelines")
    if not pipelines:
        raise TeamConfigError(
            "service.pipelines", "no pipeline: name at least one of traces, metrics, logs (e.g. traces/pii)"
        )
    out: dict[str, dict[str, Any]] = {}
    for pipeline_id, pipeline in pipelines.items():
        path = f"service.pipelines.{pipeline_id}"
        signal = _component_type(str(pipeline_id))
        if signal not in _SIGNALS:
            raise TeamConfigError(
                path, f"signal {signal!r} is not one the harness runs (traces, metrics, logs); remove it"
            )
        out[str(pipeline_id)] = _mapping(pipeline, path)
    return out


def _checked_component(team: dict[str, Any], kind: str, component_id: str, path: str, pipeline: str) -> Any:
    """The team's config of ``component_id`` (a ``kind``: processors, connectors), checked."""
    defined = _mapping(team.get(kind), kind)
    if component_id not in defined:
        raise TeamConfigError(
            path,
            f"pipeline {pipeline} names {kind[:-1]} {component_id!r}, which is not defined under {kind} "
            f"(defined: {', '.join(defined) or 'none'})",
        )
    component_type = _component_type(component_id)
    if component_type not in OUR_BUILD[kind]:
        raise TeamConfigError(
            path,
            f"pipeline {pipeline} uses {kind[:-1]} {component_type!r} ({component_id}), which the harness's "
            f"collector build does not contain; it has the {kind} {', '.join(OUR_BUILD[kind])} "
            "(add the component to tools/otelcol/builder-config.yaml and rebuild, or leave it out of the "
            "config given to the harness)",
        )
    return defined[component_id]


def _capped_batch(config: Any) -> Any:
    if not isinstance(config, dict):
        return {"timeout": _TEAM_BATCH_TIMEOUT}
    return {**config, "timeout": _TEAM_BATCH_TIMEOUT}


def team_pipeline_processors(team: Any) -> dict[str, list[str]]:
    """Each pipeline of a team config with its processor ids in order (shape-checked, pure)."""
    return {
        pipeline_id: _id_list(pipeline.get("processors"), f"service.pipelines.{pipeline_id}.processors")
        for pipeline_id, pipeline in _team_pipelines(team).items()
    }


def team_pipeline_config(
    team: Any,
    *,
    listen: CollectorListen,
    to_receiver: str,
    jaeger: str | None,
    prometheus: bool = False,
) -> dict[str, Any]:
    """The collector config a team runs in production, made runnable by the harness (pure).

    Kept as written: every pipeline, its processors (in order, with their
    config) and the connectors between pipelines (``spanmetrics``). Replaced:
    every receiver of a pipeline by one ``otlp`` receiver on ``listen``'s
    ports (a pipeline fed by a connector only stays so); every exporter by
    an OTLP/gRPC exporter to ``to_receiver`` (``host:port`` of the harness
    receiver keeping the view "after the team's pipeline"), plus Jaeger
    (``host:port``, OTLP/gRPC) for traces when ``jaeger`` is given and a
    ``prometheus`` exporter on ``listen.prometheus_exporter`` for metrics when
    ``prometheus``; a pipeline that only exports to connectors keeps doing
    only that. Dropped: extensions (the harness's ``health_check`` on
    ``listen.health`` replaces them) and the team's ``service.telemetry``.
    A ``batch`` processor's timeout is capped at 200 ms.

    Raises :class:`TeamConfigError` for a config of the wrong shape, a
    pipeline naming an undefined processor or connector, or a component type
    our build does not contain (which one, in which pipeline, what the build has).
    """
    pipelines = _team_pipelines(team)
    processors: dict[str, Any] = {}
    connectors: dict[str, Any] = {}
    defined_connectors = _mapping(team.get("connectors"), "connectors")
    out_pipelines: dict[str, Any] = {}
    used_exporters: set[str] = set()
    for pipeline_id, pipeline in pipelines.items():
        signal = _component_type(pipeline_id)
        base = f"service.pipelines.{pipeline_id}"
        names = _id_list(pipeline.get("processors"), f"{base}.processors")
        for i, name in enumerate(names):
            found = _checked_component(team, "processors", name, f"{base}.processors[{i}]", pipeline_id)
            processors[name] = _capped_batch(found) if _component_type(name) == "batch" else found
        receivers: list[str] = []
        for i, name in enumerate(_id_list(pipeline.get("receivers"), f"{base}.receivers")):
            if name in defined_connectors:
                connectors[name] = _checked_component(
                    team, "connectors", name, f"{base}.receivers[{i}]", pipeline_id
                )
                receivers.append(name)
            elif _TEAM_RECEIVER not in receivers:
                receivers.append(_TEAM_RECEIVER)
        if not receivers:
            raise TeamConfigError(f"{base}.receivers", f"pipeline {pipeline_id} has no receiver; name one")
        exporters: list[str] = []
        replaced = False
        for i, name in enumerate(_id_list(pipeline.get("exporters"), f"{base}.exporters")):
            if name in defined_connectors:
                connectors[name] = _checked_component(
                    team, "connectors", name, f"{base}.exporters[{i}]", pipeline_id
                )
                exporters.append(name)
            else:
                replaced = True
        if replaced or not exporters:
            ours = [AFTER_PIPELINE_EXPORTER]
            if signal == "traces" and jaeger:
                ours.append(_JAEGER_EXPORTER)
            if signal == "metrics" and prometheus:
                ours.append(_PROMETHEUS_EXPORTER)
            exporters += ours
            used_exporters.update(ours)
        out_pipelines[pipeline_id] = {"receivers": receivers, "processors": names, "exporters": exporters}
    exporter_configs: dict[str, Any] = {
        AFTER_PIPELINE_EXPORTER: {"endpoint": to_receiver, "tls": {"insecure": True}},
        _JAEGER_EXPORTER: {"endpoint": jaeger, "tls": {"insecure": True}},
        _PROMETHEUS_EXPORTER: {"endpoint": listen.endpoint(listen.prometheus_exporter)},
    }
    telemetry = _own_telemetry(listen)
    config: dict[str, Any] = {
        "receivers": {
            _TEAM_RECEIVER: {
                "protocols": {
                    "grpc": {"endpoint": listen.endpoint(listen.otlp_grpc)},
                    "http": {"endpoint": listen.endpoint(listen.otlp_http)},
                }
            }
        },
        "processors": processors,
        "exporters": {name: cfg for name, cfg in exporter_configs.items() if name in used_exporters},
        "extensions": {"health_check": {"endpoint": listen.endpoint(listen.health)}},
        "service": {
            "extensions": ["health_check"],
            "pipelines": out_pipelines,
            "telemetry": {"metrics": telemetry},
        },
    }
    if connectors:
        config["connectors"] = connectors
    if not processors:
        del config["processors"]
    return config
