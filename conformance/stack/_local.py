"""Local mode: the service as a local process, a real Prometheus server, the
harness's own OTLP receiver and, when their binaries are built, the
OpenTelemetry Collector and Jaeger (:mod:`conformance.stack._telemetry`), all
on 127.0.0.1.

This is the default when no Docker engine is reachable. With the collector and
Jaeger, the service exports to the collector, which sends traces to Jaeger and
everything raw to the receiver; the trace store is Jaeger's query API. Without
them (not built, or ``OBSCONFORM_TELEMETRY=embedded``) the service exports to
the receiver, which is also the trace store, and :meth:`LocalStack.describe`
says why they did not run.

Start order: receiver → Jaeger (launched) → Prometheus → collector (once
Jaeger is ready) → service, so the service's first export and Prometheus's
first scrape both find their peer; stop order is the reverse.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from conformance._exceptions import ServiceStartError, StackError
from conformance._mask import mask_secrets
from conformance._ports import LOOPBACK, free_port
from conformance._process import CaptureOverflow, ManagedProcess
from conformance._profile import Profile
from conformance._readiness import wait_answering
from conformance.collect._jaeger import JaegerTraceStore
from conformance.collect._otlp_metrics import OtlpMetricsSource, received_metric_points
from conformance.collect._prometheus_api import PrometheusClient
from conformance.collect._traces import TraceStore
from conformance.stack._otlp import OtlpReceiver
from conformance.stack._prometheus import LocalPrometheus, ScrapeTarget
from conformance.stack._telemetry import (
    COLLECTOR_JOB,
    AfterTeamPipeline,
    LocalTelemetry,
    TeamPipeline,
    TelemetryPlan,
    plan_local_telemetry,
)
from conformance.telemetry import OtlpLogRecord, OtlpMetricPoints, Span

__all__ = ["SERVICE_JOB", "LocalStack"]

#: Default Prometheus job name of the service under test (profile: prometheus.job).
SERVICE_JOB = "service"

# Export quickly in test stacks so waits end early (OTel SDK env names).
_FAST_EXPORT_ENV = {
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    "OTEL_BLRP_SCHEDULE_DELAY": "200",
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
}


class LocalStack:
    """Service process + Prometheus process + embedded OTLP receiver (+ collector and Jaeger processes).

    ``telemetry`` decides whether the collector and Jaeger run; by default
    :func:`~conformance.stack._telemetry.plan_local_telemetry` decides from
    ``OBSCONFORM_TELEMETRY`` and the built binaries when the stack is made.
    """

    mode = "local"

    def __init__(
        self,
        profile: Profile,
        workdir: Path,
        *,
        prometheus_binary: str | None = None,
        telemetry: TelemetryPlan | None = None,
    ) -> None:
        self.profile = profile
        self.workdir = workdir
        self.receiver = OtlpReceiver(max_request_bytes=profile.telemetry.max_request_body_size)
        self.service: ManagedProcess | None = None
        self.prometheus: LocalPrometheus | None = None
        self.telemetry_plan = telemetry if telemetry is not None else plan_local_telemetry()
        self.telemetry: LocalTelemetry | None = None
        self._jaeger_store: JaegerTraceStore | None = None
        self._jaeger_http: httpx.Client | None = None
        self._prometheus_binary = prometheus_binary
        self.service_port = 0
        self.metrics_port = 0
        self._rejected_rule_files: dict[str, str] = {}
        # telemetry.collector_config: the team's pipeline, and the receiver of what leaves it.
        section = profile.sections.get("telemetry")
        self._team = section.collector_config if section is not None else None
        self.after_pipeline_receiver: OtlpReceiver | None = None

    # -- addresses -------------------------------------------------------
    @property
    def service_url(self) -> str:
        return f"http://{LOOPBACK}:{self.service_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{LOOPBACK}:{self.metrics_port}{self.profile.metrics.path}"

    @property
    def _exporter_job(self) -> str:
        job = self.profile.prometheus.job
        return COLLECTOR_JOB if job != COLLECTOR_JOB else f"{COLLECTOR_JOB}-exporter"

    def otlp_metrics_source(self) -> OtlpMetricsSource:
        """The collector's prometheus exporter of the service's OTLP metrics, or why there is none."""
        if self.telemetry is None:
            return OtlpMetricsSource(
                "",
                self._exporter_job,
                unavailable=f"the OpenTelemetry Collector is not running ({self.telemetry_plan.reason})",
                fix="build the collector (scripts/build-telemetry) and leave OBSCONFORM_TELEMETRY unset (or "
                "'auto'), so the collector's prometheus exporter serves the service's OTLP metrics",
            )
        url = f"http://{self.telemetry.prometheus_exporter_address}/metrics"
        return OtlpMetricsSource(
            url, self._exporter_job, pushes=lambda: received_metric_points(self.receiver.stats())
        )

    @property
    def rejected_rule_files(self) -> Mapping[str, str]:
        """Rule files Prometheus was not given because promtool rejects them: file → first error."""
        return self._rejected_rule_files

    @property
    def trace_store(self) -> TraceStore:
        """Jaeger's query API when Jaeger runs (the path a user takes), else the embedded receiver."""
        return self.receiver if self._jaeger_store is None else self._jaeger_store

    def prometheus_client(self, client: httpx.Client) -> PrometheusClient:
        if self.prometheus is None:
            raise StackError("Prometheus is not running")
        return PrometheusClient(self.prometheus.url, client=client)

    def log_path(self, stream: str) -> Path:
        if self.service is None:
            raise StackError("the service was never started")
        return self.service.stdout_path if stream == "stdout" else self.service.stderr_path

    def log_overflow(self, stream: str) -> CaptureOverflow | None:
        """How the service's ``stream`` passed ``logs.max_bytes``, or None."""
        return self.service.overflow(stream) if self.service else None

    def _service_outcome(self) -> dict[str, Any]:
        """Whether the service exited on its own (asked before it is stopped), and what of its
        output was kept: ``logs.max_bytes`` per stream, the rest counted."""
        if self.service is None:
            return {}
        outcome: dict[str, Any] = {}
        code = self.service.poll()
        if code is not None:
            outcome["exited_during_run"] = code
        for stream in ("stdout", "stderr"):
            overflow = self.service.overflow(stream)
            if overflow is not None:
                outcome.setdefault("output_dropped", {})[stream] = {
                    "kept_bytes": overflow.limit,
                    "dropped_bytes": overflow.dropped,
                    "limit_hit_after_seconds": round(overflow.after, 1),
                }
        return outcome

    def service_exit_code(self) -> int | None:
        return self.service.poll() if self.service else None

    # -- lifecycle -------------------------------------------------------
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bring everything up; on any failure, tear down what started and raise."""
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.receiver.start()
            if self._team is not None and self.telemetry_plan.binaries is not None:
                self.after_pipeline_receiver = OtlpReceiver().start()
            self._pick_ports()
            self._launch_telemetry()
            # Prometheus before the service: it needs ~5 s to hand a new target to its scraper
            # (discovery ticks every 5 s), which then overlaps the service's start-up.
            self._start_prometheus()
            if self.telemetry is not None:
                self.telemetry.start_collector()
            self._start_service()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop everything that started; safe to call more than once."""
        errors: list[str] = []
        for name, stop in (
            ("prometheus", self.prometheus.stop if self.prometheus else None),
            ("service", self._stop_service),
            ("otel-collector and jaeger", self.telemetry.stop if self.telemetry else None),
            ("jaeger query client", self._jaeger_http.close if self._jaeger_http else None),
            ("otlp-receiver", self.receiver.stop),
            (
                "otlp-receiver-after-pipeline",
                self.after_pipeline_receiver.stop if self.after_pipeline_receiver else None,
            ),
        ):
            if stop is None:
                continue
            try:
                stop()
            except Exception as exc:  # keep stopping the rest
                errors.append(f"{name}: {exc}")
        if errors:
            raise StackError("clean-up failed: " + "; ".join(errors))

    def _stop_service(self) -> None:
        if self.service is not None:
            self.service.stop(timeout=self.profile.service.shutdown_timeout)

    def _placeholders(self) -> dict[str, str]:
        return {
            "port": str(self.service_port),
            "metrics_port": str(self.metrics_port),
            "python": sys.executable,
            "profile_dir": str(self.profile.directory),
            # Where the service's OTLP exporters go, for services that read other variables
            # than OTEL_EXPORTER_OTLP_ENDPOINT (README "service.env placeholders").
            "otlp_grpc_endpoint": self._otlp_endpoint_for("grpc"),
            "otlp_http_endpoint": self._otlp_endpoint_for("http/protobuf"),
        }

    def _otlp_endpoint_for(self, protocol: str) -> str:
        if self.telemetry is not None:
            grpc = self.telemetry.otlp_grpc_endpoint
            return grpc if protocol == "grpc" else self.telemetry.otlp_http_endpoint
        try:
            return self.receiver.grpc_endpoint if protocol == "grpc" else self.receiver.http_endpoint
        except StackError:  # not started yet (placeholders are also read before the receiver runs)
            return ""

    def _otlp_endpoint(self) -> str:
        grpc = self.profile.telemetry.otlp_protocol == "grpc"
        if self.telemetry is not None:
            return self.telemetry.otlp_grpc_endpoint if grpc else self.telemetry.otlp_http_endpoint
        return self.receiver.grpc_endpoint if grpc else self.receiver.http_endpoint

    def _launch_telemetry(self) -> None:
        """Launch Jaeger (the collector follows once it is ready, see :meth:`start`)."""
        binaries = self.telemetry_plan.binaries
        if binaries is None:
            return
        self.telemetry = LocalTelemetry(
            binaries,
            self.workdir / "telemetry",
            receiver_grpc_port=self.receiver.grpc_port,
            # The collector forwards to the receiver in the protocol the service uses.
            receiver_http_port=None
            if self.profile.telemetry.otlp_protocol == "grpc"
            else self.receiver.http_port,
            team=self._team_pipeline(),
        )
        self.telemetry.launch_jaeger()
        self._jaeger_http = httpx.Client(timeout=5.0, trust_env=False)
        # Jaeger holds this run's traces only: every service it lists is the service's.
        self._jaeger_store = JaegerTraceStore(
            self.telemetry.query_url, client=self._jaeger_http, all_services=True, limit=20_000, raw=True
        )

    def _team_pipeline(self) -> TeamPipeline | None:
        if self._team is None or self.after_pipeline_receiver is None:
            return None
        return TeamPipeline(
            config_file=self._team.path,
            config=self._team.config,
            processors=self._team.processors,
            signals=self._team.signals,
            receiver_grpc_port=self.after_pipeline_receiver.grpc_port,
        )

    def sent_spans(self) -> list[Span]:
        """The spans as the service sent them (the receiver's raw copy, not the trace store's)."""
        return self.receiver.spans()

    def otlp_log_records(self) -> list[OtlpLogRecord]:
        """The OTLP log records the service exported, as the receiver holds them (raw: the
        collector forwards them unchanged)."""
        return self.receiver.log_records()

    def otlp_metric_points(self) -> list[OtlpMetricPoints]:
        """The distinct attribute sets of the metric points the service exported over OTLP
        (raw, like :meth:`otlp_log_records`)."""
        return self.receiver.metric_points()

    @property
    def team_pipeline(self) -> AfterTeamPipeline | None:
        """What left the team's collector pipeline (``telemetry.collector_config``); ``None``
        when the profile names none. Without the collector it says why it did not run."""
        if self._team is None:
            return None
        if self.after_pipeline_receiver is None or self.telemetry is None:
            return AfterTeamPipeline(
                self._team.path,
                self._team.processors,
                reason="the team's collector pipeline did not run: the collector is not running "
                f"({self.telemetry_plan.reason or 'the stack did not start'})",
            )
        return AfterTeamPipeline(self._team.path, self._team.processors, self.after_pipeline_receiver)

    def service_env(self) -> dict[str, str]:
        """The service's environment: ours, minus OTEL_* we did not set, plus the
        stack's endpoints, plus the profile's env (which wins)."""
        values = self._placeholders()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(_FAST_EXPORT_ENV)
        env.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": self._otlp_endpoint(),
                "OTEL_EXPORTER_OTLP_PROTOCOL": self.profile.telemetry.otlp_protocol,
                "OTEL_SERVICE_NAME": self.profile.telemetry.service_name,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({k: _fill(v, values) for k, v in self.profile.service.env.items()})
        return env

    def _pick_ports(self) -> None:
        self.service_port = self.profile.service.port or free_port()
        if self.profile.metrics.separate_port:
            self.metrics_port = self.profile.metrics.port or free_port()
        else:
            self.metrics_port = self.service_port

    def _start_service(self) -> None:
        svc = self.profile.service
        if not svc.command:
            raise StackError(
                f"profile {self.profile.path.name} has no service.command, which local mode needs",
                hint="add service.command, or pass --service-command",
            )
        values = self._placeholders()
        argv = [_fill(part, values) for part in svc.command]
        logs = self.workdir / "service"
        self.service = ManagedProcess(
            "service",
            argv,
            stdout_path=logs / "stdout.log",
            stderr_path=logs / "stderr.log",
            env=self.service_env(),
            cwd=svc.cwd or self.profile.directory,
            max_output_bytes=self.profile.logs.max_bytes,
        )
        try:
            self.service.start()
        except OSError as exc:
            raise ServiceStartError(
                f"cannot start the service ({argv[0]}): {exc.strerror or exc}",
                hint="check service.command in the profile or --service-command",
            ) from None
        self._wait_ready()

    def _wait_ready(self) -> None:
        service = self.service
        assert service is not None
        svc = self.profile.service
        secrets = [svc.env[k] for k in svc.secret_env]

        def exited() -> tuple[int | None, str]:
            code = service.poll()
            tail = (
                "" if code is None else mask_secrets(service.stderr_tail() or service.stdout_tail(), secrets)
            )
            return code, tail

        wait_answering(
            f"{self.service_url}{svc.ready.path}",
            what="the service",
            exited=exited,
            timeout=svc.ready.timeout,
            accept=lambda status: status == svc.ready.status,
            expected=str(svc.ready.status),
            hint="raise service.ready.timeout, or check service.ready.path",
            output_hint=f"full output in {service.stderr_path.parent}",
        )

    def _start_prometheus(self) -> None:
        met = self.profile.metrics
        prom = self.profile.prometheus
        target = ScrapeTarget(
            job=prom.job,
            address=f"{LOOPBACK}:{self.metrics_port}",
            metrics_path=met.path,
            sample_limit=prom.sample_limit,
            body_size_limit=prom.body_size_limit,
            scrape_timeout=prom.scrape_timeout,
        )
        # A service without metrics, or one that pushes them over OTLP, is not scraped.
        targets = [target] if met.scraped_from_service else []
        if self.telemetry is not None:
            # Metrics the service pushes over OTLP, as the collector's prometheus exporter serves them.
            address = self.telemetry.prometheus_exporter_address
            targets.append(ScrapeTarget(job=self._exporter_job, address=address))
        self.prometheus = LocalPrometheus(
            self.workdir / "prometheus",
            targets,
            binary=self._prometheus_binary,
            scrape_interval=self.profile.prometheus.scrape_interval,
            evaluation_interval=self.profile.prometheus.evaluation_interval,
            rule_files=self._loadable_rule_files(),
        )
        self.prometheus.start()

    def _loadable_rule_files(self) -> tuple[Path, ...]:
        files = self.profile.prometheus.rule_files
        if not files:
            return ()
        from conformance.collect._promtool import LocalPromtool, loadable_rule_files

        try:
            promtool = LocalPromtool.discover()
        except StackError:
            return files  # no promtool: Prometheus itself refuses a file it cannot parse (exit 3)
        accepted, self._rejected_rule_files = loadable_rule_files(promtool, files)
        return accepted

    def describe(self) -> dict[str, Any]:
        """The report's stack section: what ran, where, which versions."""
        components: list[dict[str, Any]] = [
            {
                "name": "service",
                "kind": "process",
                "command": [mask_secrets(a, self.profile.service.env.values()) for a in self.service.argv]
                if self.service
                else [],
                "url": self.service_url,
                "metrics_url": self.metrics_url,
                # What the service was given (the profile's service.env may override it).
                "otlp_endpoint": self.service.env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
                if self.service
                else "",
                "otlp_protocol": self.profile.telemetry.otlp_protocol,
                **self._service_outcome(),
            },
        ]
        if self.prometheus is not None:
            components.append(self.prometheus.describe())
        protocol = self.profile.telemetry.otlp_protocol
        if self.telemetry is not None:
            components += self.telemetry.describe(service_protocol=protocol)
        else:
            components += [
                {
                    "name": name,
                    "kind": "process",
                    "status": "not running",
                    "reason": self.telemetry_plan.reason,
                }
                for name in ("otel-collector", *(("otel-collector-team",) if self._team else ()), "jaeger")
            ]
        receiver: dict[str, Any] = {
            "name": "otlp-receiver",
            "kind": "embedded",
            "description": self.receiver.describe(),
            "stats": self.receiver.stats(),
        }
        if self.telemetry is None:
            receiver["protocol_used_by_service"] = protocol
            receiver["trace_store"] = True
        else:
            receiver["fed_by"] = "otel-collector (every signal, raw)"
        components.append(receiver)
        if self.after_pipeline_receiver is not None:
            components.append(
                {
                    "name": "otlp-receiver-after-pipeline",
                    "kind": "embedded",
                    "description": self.after_pipeline_receiver.describe(),
                    "stats": self.after_pipeline_receiver.stats(),
                    "fed_by": "otel-collector-team (what leaves the team's pipeline)",
                }
            )
        return {
            "mode": self.mode,
            "components": components,
            "trace_store": self.trace_store.describe(),
            "telemetry": self.telemetry_plan.summary(),
        }


def _fill(template: str, values: Mapping[str, str]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out
