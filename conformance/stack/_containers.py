"""Container mode: the service's image and its backends on one Docker network.

:class:`ContainerStack` starts, with testcontainers (``DockerContainer``,
``Network``), on a user-defined network created for the run:

* ``otlp-receiver`` — the harness's own OTLP receiver (image built from the
  harness's wheel): what left the collector, raw, read through an API
  published on 127.0.0.1 (:class:`~conformance.collect._receiver_api.ReceiverApiTraceStore`);
  the trace store when Jaeger or the collector does not run;
* ``jaeger`` and ``otel-collector`` — when their images are available (or
  required by the profile): the service then exports to the collector, which
  sends traces to Jaeger and the receiver, metrics to a Prometheus exporter
  and the receiver, logs to the receiver; Jaeger's query API is then the trace
  store, as in local mode. Both get their configs from the harness
  (:func:`~conformance.stack._collector.render_collector_config`,
  :func:`~conformance.stack._telemetry.jaeger_config`), mounted read-only and
  passed as ``--config``, so the images ``scripts/build-images`` builds from
  the local-mode binaries and the official ``otel/opentelemetry-collector-contrib``
  and ``jaegertracing/jaeger`` images run the same way;
* ``prometheus`` — scraping the service (job ``service``) and the collector,
  with the profile's rule files mounted read-only;
* ``service`` — the service's image, ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointed at
  the collector (else the receiver) by name; its stdout/stderr are followed
  into files (``log_path``), so the log suites read them as in local mode.

The harness reaches every container only through ports published on
127.0.0.1. Each wait is an HTTP readiness probe (a testcontainers
``WaitStrategy`` driven by :func:`~conformance._wait.wait_until`) that also
notices a container that exited. Everything carries the run's labels
(:func:`~conformance.stack._docker.run_labels`) and is removed in :meth:`stop`,
which runs on failure, Ctrl-C and SIGTERM too; leftovers of SIGKILLed runs are
reaped by the next run and ``conformance clean``.

A component whose image is neither present nor pullable is reported as
``not available`` when it is optional (collector, Jaeger with ``enabled: auto``),
and is a :class:`~conformance._exceptions.StackError` when it is required.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import httpx
import yaml

from conformance._exceptions import ServiceStartError, StackError, UsageError
from conformance._mask import excerpt, mask_secrets
from conformance._ports import LOOPBACK
from conformance._process import RUN_ID, RUN_ID_ENV, CappedSink, CaptureOverflow
from conformance._profile import Profile
from conformance._sections.containers import ContainersSection, OptionalBackend, containers_section
from conformance._wait import wait_until
from conformance.collect._jaeger import JaegerTraceStore
from conformance.collect._otlp_metrics import OtlpMetricsSource, received_metric_points
from conformance.collect._prometheus_api import PrometheusClient
from conformance.collect._receiver_api import ReceiverApiTraceStore
from conformance.collect._traces import TraceStore
from conformance.stack._collector import (
    COLLECTOR_HEALTH_PORT,
    COLLECTOR_METRICS_EXPORTER_PORT,
    COLLECTOR_OTLP_GRPC_PORT,
    COLLECTOR_OTLP_HTTP_PORT,
    COLLECTOR_TELEMETRY_PORT,
    CollectorListen,
    collector_pipeline_counts,
    collector_version,
    render_collector_config,
    team_pipeline_config,
)
from conformance.stack._docker import docker_client, image_present, reap_container_leftovers, run_labels
from conformance.stack._local import _FAST_EXPORT_ENV
from conformance.stack._prometheus import ScrapeTarget, render_config
from conformance.stack._receiver_server import API_PORT, GRPC_PORT, HTTP_PORT
from conformance.stack._telemetry import AfterTeamPipeline, jaeger_config, jaeger_serves_its_ui
from conformance.telemetry import OtlpLogRecord, OtlpMetricPoints, Span

__all__ = ["COLLECTOR_JOBS", "NOT_AVAILABLE", "ContainerStack"]

#: Status of an optional component whose image could not be had.
NOT_AVAILABLE = "not available"

#: Prometheus jobs for the collector (its OTLP-received metrics, its own telemetry).
COLLECTOR_JOBS = ("otel-collector", "otel-collector-internal")

_PROMETHEUS_PORT = 9090
_JAEGER_OTLP_GRPC_PORT = 4317
_JAEGER_QUERY_PORT = 16686
_JAEGER_QUERY_GRPC_PORT = 16685
_ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - inside a container's own network namespace
#: The OCI label that names an image's version (our images carry it; else the tag is used).
_VERSION_LABEL = "org.opencontainers.image.version"
#: Where host files are mounted inside containers: /obsconform/host/<absolute host path>.
_HOST_MOUNT = "/obsconform/host"
_LOG_SYNC_TIMEOUT = 5.0
_LOG_LINES_SHOWN = 6

#: The containers of the team's pipeline (telemetry.collector_config), by network alias.
_TEAM_COLLECTOR = "otel-collector-team"
_AFTER_RECEIVER = "otlp-receiver-after-pipeline"
_TEAM_HEADER = (
    "# Generated by obsconform for one run (container mode) from the team's collector config: its\n"
    "# processors and pipelines as written, receivers and exporters replaced by the harness's.\n"
)


def _container_classes() -> tuple[Any, Any, Any]:
    """testcontainers' classes, imported on first use (the ``containers`` extra).

    Ryuk (testcontainers' reaper container) is switched off: its image cannot be
    assumed to exist, and our own labels and :meth:`ContainerStack.stop` do its job.
    """
    try:
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.network import Network
        from testcontainers.core.waiting_utils import WaitStrategy
    except ImportError:
        raise StackError(
            "container mode needs testcontainers", hint="pip install 'obsconform[containers]'"
        ) from None
    testcontainers_config.ryuk_disabled = True
    return DockerContainer, Network, WaitStrategy


def _published_port(container: Any, port: int) -> int | None:
    """The 127.0.0.1 port Docker published for ``port``, or None (not published, or not running)."""
    wrapped = container.get_wrapped_container()
    wrapped.reload()
    bindings = (wrapped.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp") or []
    for binding in bindings:
        if binding.get("HostIp") in (LOOPBACK, "") and binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


def _exit_state(container: Any) -> tuple[str, int | None]:
    wrapped = container.get_wrapped_container()
    wrapped.reload()
    state = wrapped.attrs.get("State", {})
    status = str(state.get("Status", "?"))
    return status, int(state.get("ExitCode", 0)) if status in ("exited", "dead") else None


def _logs_tail(container: Any, max_bytes: int = 2000) -> str:
    try:
        out, err = container.get_logs()
    except Exception:  # the container may be gone already
        return ""
    text = (err or out or b"")[-max_bytes:]
    return bytes(text).decode("utf-8", errors="replace").strip()


class _LogFollower:
    """Copies one stream of a container's log into a file, in a thread, as it is written.

    At most ``limit`` bytes are kept (``logs.max_bytes``, as local mode caps its pipes), the
    rest read and counted: :meth:`overflow`. :meth:`sync` waits (bounded) until the file
    holds everything the engine has logged so far, so a reader right after a request sees
    its log lines.
    """

    def __init__(self, container: Any, stream: str, path: Path, limit: int) -> None:
        self.container = container
        self.stream = stream
        self.path = path
        self.limit = limit
        self.written = 0
        self.error = ""
        self._sink: CappedSink | None = None
        self._thread = threading.Thread(target=self._follow, name=f"logs-{stream}", daemon=True)

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(b"")
        self._thread.start()

    def _selector(self) -> dict[str, bool]:
        return {"stdout": self.stream == "stdout", "stderr": self.stream == "stderr"}

    def _follow(self) -> None:
        try:
            chunks = self.container.get_wrapped_container().logs(stream=True, follow=True, **self._selector())
            with self.path.open("ab") as out:
                self._sink = CappedSink(self.stream, out, self.limit)
                for chunk in chunks:
                    self._sink.write(chunk)
                    self.written += len(chunk)
        except Exception as exc:  # the container was removed under us: the stream just ends
            self.error = f"{type(exc).__name__}: {exc}"

    def overflow(self) -> CaptureOverflow | None:
        return self._sink.overflow() if self._sink is not None else None

    def sync(self, timeout: float = _LOG_SYNC_TIMEOUT) -> None:
        try:
            logged = len(
                self.container.get_wrapped_container().logs(stream=False, follow=False, **self._selector())
            )
        except Exception:
            return  # container gone: the file has all there will be

        def caught_up() -> tuple[bool | None, str]:
            done = self.written >= logged or not self._thread.is_alive()
            return (True if done else None), f"{self.written} of {logged} bytes copied"

        wait_until(caught_up, awaited=f"the service's {self.stream} to reach {self.path}", timeout=timeout)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class ContainerStack:
    """Service, Prometheus, OTLP receiver (+ collector, Jaeger) as containers on one network."""

    mode = "containers"

    def __init__(self, profile: Profile, workdir: Path) -> None:
        self.profile = profile
        self.workdir = workdir
        self.section: ContainersSection = containers_section(profile)
        self.network_name = f"obsconform-{RUN_ID}-{uuid.uuid4().hex[:6]}"
        self._client: Any = None
        self._network: Any = None
        self._rejected_rule_files: dict[str, str] = {}
        self._containers: dict[str, Any] = {}
        self._ports: dict[tuple[str, int], int] = {}
        self._followers: dict[str, _LogFollower] = {}
        self._status: dict[str, dict[str, Any]] = {}
        self._launched_at: dict[str, float] = {}
        self._startup: dict[str, float] = {}
        self._images: dict[str, str] = {}
        self._store: ReceiverApiTraceStore | None = None
        self._jaeger_store: JaegerTraceStore | None = None
        self._pipeline: dict[str, Any] | None = None
        # telemetry.collector_config: the team's pipeline in a collector container of its own,
        # fed by ours, and a second receiver container keeping what leaves it.
        section = profile.sections.get("telemetry")
        self._team = section.collector_config if section is not None else None
        self._after_store: ReceiverApiTraceStore | None = None
        self._team_pipeline: dict[str, Any] | None = None
        self._team_reason = ""
        self._collector_version = ""
        #: Whether its Jaeger serves the UI (asked once, while it runs; see jaeger_serves_its_ui).
        self._jaeger_ui: bool | None = None
        self._http = httpx.Client(timeout=2.0, trust_env=False)
        self._jaeger_http = httpx.Client(timeout=5.0, trust_env=False)
        self._stopped = False
        self._exit_code: int | None = None
        self.startup_seconds: float | None = None

    # -- addresses -------------------------------------------------------
    def _url(self, component: str, port: int) -> str:
        published = self._ports.get((component, port))
        if published is None:
            raise StackError(f"{component} is not running (no port published for {port})")
        return f"http://{LOOPBACK}:{published}"

    @property
    def service_url(self) -> str:
        return self._url("service", self.section.service.port)

    @property
    def metrics_url(self) -> str:
        return self._url("service", self.section.service.scrape_port) + self.profile.metrics.path

    def otlp_metrics_source(self) -> OtlpMetricsSource:
        """The collector's prometheus exporter of the service's OTLP metrics, or why there is none."""
        if "otel-collector" not in self._containers:
            reason = self._status.get("otel-collector", {}).get("reason", "not started")
            return OtlpMetricsSource(
                "",
                COLLECTOR_JOBS[0],
                unavailable=f"the otel-collector container is not running ({reason})",
                fix="build its image (scripts/build-images) or name one in containers.collector.image",
            )
        url = self._url("otel-collector", COLLECTOR_METRICS_EXPORTER_PORT) + "/metrics"
        store = self._store
        pushes = None if store is None else (lambda: received_metric_points(store.stats()))
        return OtlpMetricsSource(url, COLLECTOR_JOBS[0], pushes=pushes)

    @property
    def rejected_rule_files(self) -> Mapping[str, str]:
        """Rule files Prometheus was not given because promtool rejects them: file → first error."""
        return self._rejected_rule_files

    @property
    def trace_store(self) -> TraceStore:
        """Jaeger's query API when the collector feeds Jaeger (as in local mode), else the receiver."""
        if self._jaeger_store is not None:
            return self._jaeger_store
        if self._store is None:
            raise StackError("the OTLP receiver container is not running")
        return self._store

    def prometheus_client(self, client: httpx.Client) -> PrometheusClient:
        return PrometheusClient(self._url("prometheus", _PROMETHEUS_PORT), client=client)

    def log_path(self, stream: str) -> Path:
        follower = self._followers.get(stream)
        if follower is None:
            raise StackError("the service container was never started")
        follower.sync()
        return follower.path

    def log_overflow(self, stream: str) -> CaptureOverflow | None:
        """How the service container's ``stream`` passed ``logs.max_bytes``, or None."""
        follower = self._followers.get(stream)
        return follower.overflow() if follower is not None else None

    def service_exit_code(self) -> int | None:
        if self._exit_code is not None:
            return self._exit_code
        service = self._containers.get("service")
        if service is None:
            return None
        try:
            _, code = _exit_state(service)
        except Exception:
            return None
        return code

    # -- lifecycle -------------------------------------------------------
    def __enter__(self) -> ContainerStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bring everything up; on any failure (or Ctrl-C), remove what started and raise."""
        docker_container, network_class, _ = _container_classes()
        service_image = self.section.service.image
        if not service_image:
            raise UsageError(
                f"{self.profile.path.name}: container mode needs the service's image: set "
                "containers.service.image (or service.image), or pass --service-image"
            )
        started = time.monotonic()
        atexit.register(self.stop)
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            try:
                self._client = docker_client()
            except Exception as exc:
                raise StackError(
                    f"no Docker engine answers: {str(exc).splitlines()[0] if str(exc) else exc}",
                    hint="start one (scripts/docker-engine start), or run with --mode local",
                ) from None
            for item in reap_container_leftovers():
                print(
                    f"conformance: removed leftover {item.kind} {item.name} of dead run {item.run_id}",
                    file=sys.stderr,
                )
            self._require_image("service", service_image)
            self._require_image("prometheus", self.section.prometheus_image)
            self._require_image("otlp-receiver", self.section.receiver_image)
            jaeger = self._optional("jaeger", self.section.jaeger)
            collector = self._optional("otel-collector", self.section.collector)

            self._network = network_class(
                docker_network_kw={"labels": run_labels("network"), "driver": "bridge"}
            )
            self._network.name = self.network_name
            self._network.create()

            self._launch(
                "otlp-receiver",
                self.section.receiver_image,
                ports=(API_PORT,),
                docker_container=docker_container,
            )
            if jaeger:
                self._launch_jaeger(docker_container)
            self._launch_prometheus(collector, docker_container)
            team = bool(self._team) and collector
            if self._team is not None and not collector:
                self._team_reason = (
                    "the team's collector pipeline did not run: the collector is not running "
                    f"({self._status.get('otel-collector', {}).get('reason', 'not available')})"
                )
            if team:
                self._launch_team_pipeline(docker_container)
            if collector:
                if jaeger:
                    # As in local mode: a collector whose first connection to Jaeger is refused
                    # retries only after seconds (gRPC back-off), and the first spans would wait.
                    self._wait_jaeger()
                if team:
                    # Before ours, whose first export to it would otherwise be refused.
                    self._wait_http(
                        _TEAM_COLLECTOR, COLLECTOR_HEALTH_PORT, "/", 200, self.section.startup_timeout
                    )
                self._launch_collector(jaeger, docker_container)
            self._launch_service(collector, docker_container)

            self._wait_http("otlp-receiver", API_PORT, "/ready", 200, self.section.startup_timeout)
            self._store = ReceiverApiTraceStore(
                self._url("otlp-receiver", API_PORT),
                where=f"{self.section.receiver_image} on {self.network_name}",
            )
            if team:
                self._wait_http(_AFTER_RECEIVER, API_PORT, "/ready", 200, self.section.startup_timeout)
                self._after_store = ReceiverApiTraceStore(
                    self._url(_AFTER_RECEIVER, API_PORT),
                    where=f"{_AFTER_RECEIVER}, {self.section.receiver_image} on {self.network_name}",
                )
            if jaeger and not collector:
                self._wait_jaeger()
            if collector:
                self._wait_http(
                    "otel-collector", COLLECTOR_HEALTH_PORT, "/", 200, self.section.startup_timeout
                )
                if jaeger:
                    # Jaeger holds this run's traces only: every service it lists is the service's.
                    self._jaeger_store = JaegerTraceStore(
                        self._url("jaeger", _JAEGER_QUERY_PORT),
                        client=self._jaeger_http,
                        all_services=True,
                        limit=20_000,
                        raw=True,
                    )
            self._wait_http("prometheus", _PROMETHEUS_PORT, "/-/ready", 200, self.section.startup_timeout)
            ready = self.profile.service.ready
            self._wait_http(
                "service",
                self.section.service.port,
                self.section.service.ready_path,
                ready.status,
                ready.timeout,
            )
            self.startup_seconds = time.monotonic() - started
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the service gracefully (so it flushes its spans), then remove every container
        and the network; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        errors: list[str] = []
        service = self._containers.get("service")
        if service is not None:
            try:
                service.get_wrapped_container().stop(
                    timeout=max(1, round(self.profile.service.shutdown_timeout))
                )
                _, self._exit_code = _exit_state(service)
            except Exception as exc:
                errors.append(f"service: {exc}")
        for follower in self._followers.values():
            follower.join(5.0)
        collector = self._containers.get("otel-collector")
        if collector is not None:
            self._read_pipeline()  # the last counts, while it still runs
            try:
                # SIGTERM: it exports its last batch to Jaeger and the receiver before it exits.
                collector.get_wrapped_container().stop(timeout=5)
            except Exception as exc:
                errors.append(f"otel-collector: {exc}")
        team = self._containers.get(_TEAM_COLLECTOR)
        if team is not None:
            self._read_team_pipeline()
            try:
                # After ours: it has what ours flushed, and exports it before it exits.
                team.get_wrapped_container().stop(timeout=5)
            except Exception as exc:
                errors.append(f"{_TEAM_COLLECTOR}: {exc}")
        self._describe_receiver()  # last statistics, while the receivers still run
        for name in reversed(list(self._containers)):
            try:
                self._containers[name].get_wrapped_container().remove(force=True, v=True)
            except Exception as exc:
                if "No such container" not in str(exc) and "404" not in str(exc):
                    errors.append(f"{name}: {exc}")
        self._containers.clear()
        if self._network is not None and getattr(self._network, "_network", None) is not None:
            try:
                self._network.remove()
            except Exception as exc:
                errors.append(f"network {self.network_name}: {exc}")
        for store in (self._store, self._after_store):
            if store is not None:
                store.close()
        self._http.close()
        self._jaeger_http.close()
        if self._client is not None:
            self._client.close()
        if errors:
            raise StackError("clean-up failed: " + "; ".join(errors), hint="run `conformance clean`")

    # -- images ----------------------------------------------------------
    def _obtain(self, image: str) -> str:
        """'' when ``image`` is present (pulled if allowed and missing), else why not."""
        if image_present(self._client, image):
            return ""
        if self.section.pull == "never":
            return f"image {image} is not present locally and containers.pull is never"
        failure: list[str] = []

        def pull() -> None:
            try:
                self._client.images.pull(image)
            except Exception as exc:
                failure.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

        thread = threading.Thread(target=pull, name=f"pull-{image}", daemon=True)
        thread.start()
        thread.join(self.section.pull_timeout)
        if thread.is_alive():
            return f"pulling {image} took longer than {self.section.pull_timeout:g}s"
        if failure:
            return f"image {image} is not present locally and could not be pulled: {excerpt(failure[0], 200)}"
        return ""

    def _require_image(self, component: str, image: str) -> None:
        problem = self._obtain(image)
        if problem:
            raise StackError(
                f"{component}: {problem}",
                hint="pull or build it (scripts/build-images builds the CI images), point the profile's "
                "containers section or --<component>-image at your registry, or run with --mode local",
            )
        self._images[component] = image

    def _optional(self, component: str, backend: OptionalBackend) -> bool:
        if backend.enabled is False:
            self._status[component] = {
                "name": component,
                "kind": "container",
                "image": backend.image,
                "status": "disabled",
                "reason": "disabled in the profile",
            }
            return False
        problem = self._obtain(backend.image)
        if not problem:
            self._images[component] = backend.image
            return True
        if backend.enabled:
            raise StackError(
                f"{component}: {problem}", hint=f"the profile requires it (containers.{component}.enabled)"
            )
        self._status[component] = {
            "name": component,
            "kind": "container",
            "image": backend.image,
            "status": NOT_AVAILABLE,
            "reason": problem,
        }
        return False

    # -- containers ------------------------------------------------------
    def _in_container(self, host_path: Path) -> str:
        return f"{_HOST_MOUNT}{host_path.resolve()}"

    def _config_file(self, component: str, text: str) -> Path:
        config = self.workdir / component / "config.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(text, encoding="utf-8")
        config.chmod(0o644)
        return config

    def _launch_jaeger(self, docker_container: Any) -> None:
        config = self._config_file(
            "jaeger",
            "# Generated by obsconform for one run (container mode); edits are overwritten.\n"
            + yaml.safe_dump(
                jaeger_config(
                    otlp_grpc=_JAEGER_OTLP_GRPC_PORT,
                    query_http=_JAEGER_QUERY_PORT,
                    query_grpc=_JAEGER_QUERY_GRPC_PORT,
                    host=_ALL_INTERFACES,
                ),
                sort_keys=False,
            ),
        )
        self._launch(
            "jaeger",
            self.section.jaeger.image,
            ports=(_JAEGER_QUERY_PORT,),
            command=[f"--config={self._in_container(config)}"],
            mounts=[config.parent],
            # The host's uid reads the mounted config whatever the image's user.
            user=f"{os.getuid()}:{os.getgid()}",
            docker_container=docker_container,
        )

    def _wait_jaeger(self) -> None:
        self._wait_http("jaeger", _JAEGER_QUERY_PORT, "/api/services", 200, self.section.startup_timeout)

    def _launch_collector(self, jaeger: bool, docker_container: Any) -> None:
        config = self._config_file(
            "otel-collector",
            render_collector_config(
                receiver_host="otlp-receiver",
                receiver_grpc_port=GRPC_PORT,
                jaeger_host="jaeger" if jaeger else None,
                metrics_to_receiver=True,
                team_host=_TEAM_COLLECTOR if _TEAM_COLLECTOR in self._containers else None,
                team_signals=self._team.signals if self._team is not None else frozenset(),
            ),
        )
        self._launch(
            "otel-collector",
            self.section.collector.image,
            ports=(COLLECTOR_HEALTH_PORT, COLLECTOR_TELEMETRY_PORT, COLLECTOR_METRICS_EXPORTER_PORT),
            command=[f"--config={self._in_container(config)}"],
            mounts=[config.parent],
            user=f"{os.getuid()}:{os.getgid()}",
            docker_container=docker_container,
        )

    def _launch_team_pipeline(self, docker_container: Any) -> None:
        """The receiver of what leaves the team's pipeline, and the collector running it (the
        collector image: a team with a registry names the official contrib image)."""
        assert self._team is not None
        self._images[_AFTER_RECEIVER] = self.section.receiver_image
        self._images[_TEAM_COLLECTOR] = self.section.collector.image
        self._launch(_AFTER_RECEIVER, self.section.receiver_image, ports=(API_PORT,),
                     docker_container=docker_container)  # fmt: skip
        config = team_pipeline_config(
            self._team.config,
            listen=CollectorListen(),
            to_receiver=f"{_AFTER_RECEIVER}:{GRPC_PORT}",
            jaeger=None,
        )
        path = self._config_file(_TEAM_COLLECTOR, _TEAM_HEADER + yaml.safe_dump(config, sort_keys=False))
        self._launch(
            _TEAM_COLLECTOR,
            self.section.collector.image,
            ports=(COLLECTOR_HEALTH_PORT, COLLECTOR_TELEMETRY_PORT),
            command=[f"--config={self._in_container(path)}"],
            mounts=[path.parent],
            user=f"{os.getuid()}:{os.getgid()}",
            docker_container=docker_container,
        )

    def _read_team_pipeline(self) -> dict[str, Any]:
        """The team's collector's own counts, like :meth:`_read_pipeline`."""
        if _TEAM_COLLECTOR not in self._containers:
            return self._team_pipeline or {"error": "the team's collector's metrics were never read"}
        try:
            url = self._url(_TEAM_COLLECTOR, COLLECTOR_TELEMETRY_PORT) + "/metrics"
            response = self._http.get(url, timeout=3.0)
            response.raise_for_status()
        except (httpx.HTTPError, StackError) as exc:
            return self._team_pipeline or {
                "error": f"the team's collector's own metrics: {excerpt(str(exc), 200)}"
            }
        self._team_pipeline = collector_pipeline_counts(response.text)
        return self._team_pipeline

    @property
    def team_pipeline(self) -> AfterTeamPipeline | None:
        """What left the team's collector pipeline (``telemetry.collector_config``); ``None``
        when the profile names none. Without the collector it says why it did not run."""
        if self._team is None:
            return None
        if self._after_store is None:
            return AfterTeamPipeline(
                self._team.path,
                self._team.processors,
                reason=self._team_reason
                or "the team's collector pipeline did not run: the stack did not start",
            )
        return AfterTeamPipeline(self._team.path, self._team.processors, self._after_store)

    def sent_spans(self) -> list[Span]:
        """The spans as the service sent them (the receiver container's raw copy)."""
        if self._store is None:
            raise StackError("the OTLP receiver container is not running")
        return self._store.spans()

    def otlp_log_records(self) -> list[OtlpLogRecord]:
        """The OTLP log records the service exported, as the receiver container holds them."""
        if self._store is None:
            raise StackError("the OTLP receiver container is not running")
        return self._store.log_records()

    def otlp_metric_points(self) -> list[OtlpMetricPoints]:
        """The distinct metric points the service exported over OTLP (receiver container)."""
        if self._store is None:
            raise StackError("the OTLP receiver container is not running")
        return self._store.metric_points()

    def _read_pipeline(self) -> dict[str, Any]:
        """The collector's own counts (accepted, refused, sent, failed), read from its metrics
        while it runs; afterwards the last ones read."""
        if "otel-collector" not in self._containers:  # not started, or removed already
            return self._pipeline or {"error": "the collector's metrics were never read"}
        try:
            url = self._url("otel-collector", COLLECTOR_TELEMETRY_PORT) + "/metrics"
            response = self._http.get(url, timeout=3.0)
            response.raise_for_status()
        except (httpx.HTTPError, StackError) as exc:
            return self._pipeline or {"error": f"the collector's own metrics: {excerpt(str(exc), 200)}"}
        self._pipeline = collector_pipeline_counts(response.text)
        version = collector_version(response.text)  # "0.161.0"; local mode says "v0.161.0"
        if version:
            self._collector_version = version if version.startswith("v") else f"v{version}"
        return self._pipeline

    def _launch(
        self,
        component: str,
        image: str,
        *,
        ports: tuple[int, ...],
        docker_container: Any,
        env: Mapping[str, str] | None = None,
        command: list[str] | None = None,
        mounts: list[Path] | None = None,
        user: str | None = None,
        tmpfs: str | None = None,
    ) -> Any:
        kwargs: dict[str, Any] = {"labels": run_labels(component), "name": f"{self.network_name}-{component}"}
        if user:
            kwargs["user"] = user
        container = docker_container(
            image,
            env=dict(env or {}),
            command=command,
            network=self._network,
            network_aliases=[component],
            **kwargs,
        )
        for port in ports:
            cast(dict[str, Any], container.ports)[f"{port}/tcp"] = (LOOPBACK,)
        for directory in mounts or []:
            container.with_volume_mapping(str(directory.resolve()), self._in_container(directory), "ro")
        if tmpfs:
            container.with_tmpfs_mount(tmpfs)
        self._containers[component] = container
        self._launched_at[component] = time.monotonic()
        try:
            container.start()
        except Exception as exc:
            raise StackError(
                f"{component}: the container would not start: {excerpt(str(exc), 300)}"
            ) from None
        for port in ports:
            published = _published_port(container, port)
            if published is None:
                status, code = _exit_state(container)
                raise self._exited(component, status, code)
            self._ports[(component, port)] = published
        return container

    def _exited(self, component: str, status: str, code: int | None) -> StackError:
        container = self._containers[component]
        tail = _logs_tail(container)
        if component == "service":
            svc = self.profile.service
            tail = mask_secrets(tail, [svc.env[k] for k in svc.secret_env])
            return ServiceStartError(
                f"the service container exited with code {code} during start-up; "
                f"last output: {excerpt(tail, 300) or '(none)'}",
                hint=f"full output in {self.workdir / 'service'}",
            )
        # A backend's own complaint is in its last lines (a collector's config error is the last).
        lines = [line for line in tail.splitlines() if line.strip()][-_LOG_LINES_SHOWN:]
        config = self.workdir / component / "config.yaml"
        return StackError(
            f"the {component} container is {status} (exit code {code}) during start-up; "
            f"last log lines: {excerpt(' | '.join(lines), 1500) or '(none)'}",
            hint=f"check the image ({self._images.get(component, '?')})"
            + (f" and the config it was given ({config})" if config.is_file() else ""),
        )

    def _wait_http(self, component: str, port: int, path: str, status: int, timeout: float) -> None:
        """An HTTP readiness probe through the published port, as a testcontainers wait strategy."""
        _, _, wait_strategy = _container_classes()
        stack = self
        url = self._url(component, port) + path

        class HttpReady(wait_strategy):  # type: ignore[misc,valid-type]
            """Ready when GET ``url`` answers ``status``; fails at once if the container exits."""

            def wait_until_ready(self, container: Any) -> None:
                def probe() -> tuple[bool | None, str]:
                    state, code = _exit_state(container)
                    if code is not None or state in ("exited", "dead"):
                        raise stack._exited(component, state, code)
                    try:
                        response = stack._http.get(url)
                    except httpx.HTTPError as exc:
                        return None, f"GET {url}: {type(exc).__name__}"
                    if response.status_code == status:
                        return True, ""
                    return None, f"GET {url} answered {response.status_code}"

                wait_until(probe, awaited=f"{component} to answer {status} on {url}", timeout=timeout)

        try:
            HttpReady().wait_until_ready(self._containers[component])
        except StackError:
            raise
        except Exception as exc:
            if component == "service" and type(exc).__name__ == "WaitTimeout":
                raise ServiceStartError(
                    f"the service never became ready: {getattr(exc, 'last_seen', exc)} after {timeout:g}s",
                    hint="raise service.ready.timeout, or check containers.service.ready_path and port",
                ) from None
            raise
        self._startup[component] = time.monotonic() - self._launched_at[component]

    def _launch_prometheus(self, collector: bool, docker_container: Any) -> None:
        svc = self.section.service
        targets = [
            ScrapeTarget(
                job=self.profile.prometheus.job,
                address=f"service:{svc.scrape_port}",
                metrics_path=self.profile.metrics.path,
                sample_limit=self.profile.prometheus.sample_limit,
                body_size_limit=self.profile.prometheus.body_size_limit,
                scrape_timeout=self.profile.prometheus.scrape_timeout,
            )
        ] if self.profile.metrics.scraped_from_service else []  # fmt: skip
        if collector:
            targets.append(
                ScrapeTarget(
                    job=COLLECTOR_JOBS[0], address=f"otel-collector:{COLLECTOR_METRICS_EXPORTER_PORT}"
                )
            )
            targets.append(
                ScrapeTarget(job=COLLECTOR_JOBS[1], address=f"otel-collector:{COLLECTOR_TELEMETRY_PORT}")
            )
        rule_files = list(self._loadable_rule_files())
        directory = self.workdir / "prometheus"
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "prometheus.yml"
        config.write_text(
            render_config(
                targets,
                scrape_interval=self.profile.prometheus.scrape_interval,
                evaluation_interval=self.profile.prometheus.evaluation_interval,
                rule_files=[self._in_container(f) for f in rule_files],
            ),
            encoding="utf-8",
        )
        mounts = [directory, *sorted({f.parent for f in rule_files})]
        self._launch(
            "prometheus",
            self.section.prometheus_image,
            ports=(_PROMETHEUS_PORT,),
            command=[
                f"--config.file={self._in_container(config)}",
                "--storage.tsdb.path=/prometheus",
                f"--web.listen-address=0.0.0.0:{_PROMETHEUS_PORT}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            mounts=mounts,
            # The host's uid reads the mounted config (0600, it may hold credentials); data on tmpfs.
            user=f"{os.getuid()}:{os.getgid()}",
            tmpfs="/prometheus",
            docker_container=docker_container,
        )

    def service_env(self, *, collector: bool) -> dict[str, str]:
        """The service container's environment: fast export settings, the stack's OTLP
        endpoint (by name on the network), the profile's service.env, then containers.service.env."""
        svc = self.section.service
        values = {"port": str(svc.port), "metrics_port": str(svc.scrape_port)}
        protocol = self.profile.telemetry.otlp_protocol
        host = "otel-collector" if collector else "otlp-receiver"
        if collector:
            port = COLLECTOR_OTLP_GRPC_PORT if protocol == "grpc" else COLLECTOR_OTLP_HTTP_PORT
        else:
            port = GRPC_PORT if protocol == "grpc" else HTTP_PORT
        # service.env placeholders for services that read other variables than OTEL_EXPORTER_OTLP_*.
        values["otlp_grpc_endpoint"] = f"http://{host}:{COLLECTOR_OTLP_GRPC_PORT if collector else GRPC_PORT}"
        values["otlp_http_endpoint"] = f"http://{host}:{COLLECTOR_OTLP_HTTP_PORT if collector else HTTP_PORT}"
        env = dict(_FAST_EXPORT_ENV)
        env.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{host}:{port}",
                "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
                "OTEL_SERVICE_NAME": self.profile.telemetry.service_name,
                "PYTHONUNBUFFERED": "1",
                RUN_ID_ENV: RUN_ID,
            }
        )
        env.update({k: _fill(v, values) for k, v in self.profile.service.env.items()})
        env.update({k: _fill(v, values) for k, v in svc.env.items()})
        return env

    def _launch_service(self, collector: bool, docker_container: Any) -> None:
        svc = self.section.service
        values = {"port": str(svc.port), "metrics_port": str(svc.scrape_port)}
        ports = (svc.port,) if svc.metrics_port is None else (svc.port, svc.metrics_port)
        service = self._launch(
            "service",
            str(svc.image),
            ports=ports,
            env=self.service_env(collector=collector),
            command=[_fill(part, values) for part in svc.command] or None,
            docker_container=docker_container,
        )
        logs = self.workdir / "service"
        for stream in ("stdout", "stderr"):
            follower = _LogFollower(service, stream, logs / f"{stream}.log", self.profile.logs.max_bytes)
            follower.start()
            self._followers[stream] = follower

    def _loadable_rule_files(self) -> tuple[Path, ...]:
        """The profile's rule files promtool (from the Prometheus image) accepts; see
        :func:`~conformance.collect._promtool.loadable_rule_files`."""
        files = self.profile.prometheus.rule_files
        if not files:
            return ()
        from conformance.collect._promtool import loadable_rule_files
        from conformance.collect._promtool_container import ContainerPromtool

        runner = ContainerPromtool(self.section.prometheus_image, client=self._client)
        accepted, self._rejected_rule_files = loadable_rule_files(runner, files)
        return accepted

    def start_service_instance(self, name: str, extra_env: Mapping[str, str]) -> str:
        """Another container of the service image on the stack's network, with ``extra_env`` on top
        of the service's environment (HLT's dependency-failure instance). It is labelled with the
        run id like every other container and removed by ``remove_instance`` or ``stop``.
        Returns its published base URL; readiness is the caller's business."""
        docker_container, _, _ = _container_classes()
        svc = self.section.service
        values = {"port": str(svc.port), "metrics_port": str(svc.scrape_port)}
        env = {**self.service_env(collector="otel-collector" in self._containers), **extra_env}
        self._launch(
            name,
            str(svc.image),
            ports=(svc.port,),
            env=env,
            command=[_fill(part, values) for part in svc.command] or None,
            docker_container=docker_container,
        )
        return self._url(name, svc.port)

    def instance_exit_code(self, name: str) -> int | None:
        """The exit code of an instance started by ``start_service_instance``, None while it runs."""
        container = self._containers.get(name)
        if container is None:
            return None
        status, code = _exit_state(container)
        return code if status in ("exited", "dead") else None

    def instance_logs(self, name: str, max_bytes: int = 2000) -> str:
        """The last ``max_bytes`` of an instance's output (stderr when it wrote any, else stdout)."""
        container = self._containers.get(name)
        return _logs_tail(container, max_bytes) if container is not None else ""

    def remove_instance(self, name: str) -> None:
        container = self._containers.pop(name, None)
        if container is not None:
            with contextlib.suppress(Exception):
                container.get_wrapped_container().remove(force=True, v=True)

    # -- report ----------------------------------------------------------
    def _image_id(self, image: str) -> str:
        try:
            return str(self._client.images.get(image).id)
        except Exception:
            return ""

    def _describe_receiver(self) -> None:
        for name, store in (("otlp-receiver", self._store), (_AFTER_RECEIVER, self._after_store)):
            if store is None or name not in self._containers:
                continue
            with contextlib.suppress(StackError):
                self._status.setdefault(name, {})["stats"] = store.stats()

    def _image_version(self, image: str) -> str:
        """The image's version label, else its tag ('' when neither says)."""
        try:
            labels = self._client.images.get(image).labels or {}
        except Exception:
            labels = {}
        if labels.get(_VERSION_LABEL):
            return str(labels[_VERSION_LABEL])
        name = image.rsplit("/", 1)[-1]
        return name.split(":", 1)[1] if ":" in name and "@" not in name else ""

    def _prometheus_version(self) -> str:
        try:
            response = self._http.get(self._url("prometheus", _PROMETHEUS_PORT) + "/api/v1/status/buildinfo")
            return str(response.json().get("data", {}).get("version", ""))
        except Exception:
            return ""

    def describe(self) -> dict[str, Any]:
        """The report's stack section: mode, network, every component with its image
        (and id), published URL and start-up time; unavailable ones say why."""
        running = not self._stopped
        if running:
            self._describe_receiver()
        components: list[dict[str, Any]] = []
        order = ("service", "prometheus", "otlp-receiver", "otel-collector", _TEAM_COLLECTOR, "jaeger",
                 _AFTER_RECEIVER)  # fmt: skip
        for name in order:
            if name in self._images:
                entry: dict[str, Any] = {
                    "name": name,
                    "kind": "container",
                    "image": self._images[name],
                    "image_id": self._image_id(self._images[name]) if self._client is not None else "",
                    "status": "running" if running and name in self._containers else "stopped",
                    "network_alias": name,
                }
                urls = {
                    port: published
                    for (component, port), published in self._ports.items()
                    if component == name
                }
                if urls:
                    entry["published"] = {
                        str(port): f"{LOOPBACK}:{published}" for port, published in urls.items()
                    }
                seconds = self._startup.get(name)
                if seconds is not None:
                    entry["startup_seconds"] = round(seconds, 3)
                if name == "service":
                    entry["url"] = (
                        self.service_url
                        if running and ("service", self.section.service.port) in self._ports
                        else ""
                    )
                    entry["otlp_endpoint"] = self.service_env(collector="otel-collector" in self._images)[
                        "OTEL_EXPORTER_OTLP_ENDPOINT"
                    ]
                    for stream, follower in self._followers.items():
                        overflow = follower.overflow()
                        if overflow is not None:  # logs.max_bytes kept, the rest counted (as local mode)
                            entry.setdefault("output_dropped", {})[stream] = {
                                "kept_bytes": overflow.limit,
                                "dropped_bytes": overflow.dropped,
                                "limit_hit_after_seconds": round(overflow.after, 1),
                            }
                if name == "prometheus" and running and ("prometheus", _PROMETHEUS_PORT) in self._ports:
                    entry["version"] = self._prometheus_version()
                if name == "otel-collector":
                    entry["pipeline"] = self._read_pipeline() if running else (self._pipeline or {})
                    entry["version"] = self._collector_version or self._image_version(self._images[name])
                    entry["config_file"] = str(self.workdir / name / "config.yaml")
                if name == _TEAM_COLLECTOR and self._team is not None:
                    entry["pipeline"] = self._read_team_pipeline() if running else (self._team_pipeline or {})
                    entry["config_file"] = str(self.workdir / name / "config.yaml")
                    entry["team_config_file"] = str(self._team.path)
                    entry["processors"] = {pipeline: list(n) for pipeline, n in self._team.processors.items()}
                    entry["fed_by"] = (
                        "otel-collector (every signal its pipelines carry, as the service sent it)"
                    )
                    entry["exports_to"] = {_AFTER_RECEIVER: "otlp_grpc"}
                if name == _AFTER_RECEIVER:
                    entry["fed_by"] = f"{_TEAM_COLLECTOR} (what leaves the team's pipeline)"
                if name == "jaeger":
                    entry["version"] = self._image_version(self._images[name])
                    entry["config_file"] = str(self.workdir / name / "config.yaml")
                    if ("jaeger", _JAEGER_QUERY_PORT) in self._ports:
                        entry["url"] = self._url("jaeger", _JAEGER_QUERY_PORT)
                        if running:  # the official image serves the UI; one of our binaries does not
                            if self._jaeger_ui is None:
                                self._jaeger_ui = jaeger_serves_its_ui(entry["url"])
                            entry["ui"] = self._jaeger_ui
                entry.update({k: v for k, v in self._status.get(name, {}).items() if k not in entry})
                components.append(entry)
            elif name in self._status:
                components.append(dict(self._status[name]))
        described: dict[str, Any] = {
            "mode": self.mode,
            "network": self.network_name,
            "startup_seconds": round(self.startup_seconds, 3) if self.startup_seconds is not None else None,
            "components": components,
        }
        if self._jaeger_store is not None or self._store is not None:
            described["trace_store"] = self.trace_store.describe()
        return described


def _fill(template: str, values: Mapping[str, str]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out
